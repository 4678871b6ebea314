"""Draw the analytics Scene on a frame: zone outlines, lines with their "in" arrow, track trails, live counts.

Used by the annotator (annotate.py) before it draws boxes, so boxes and labels stay on top. Everything is
outlines and text (no full-frame blending), so the cost does not grow with the frame area.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from yolovino.inference.core.events import Scene

ZONE_COLOR = (0, 200, 255)  # BGR amber
LINE_COLOR = (255, 0, 255)  # magenta


def track_color(track_id: int) -> tuple[int, int, int]:
    """A stable, well-spread BGR colour per track id (golden-ratio hues)."""
    r, g, b = colorsys.hsv_to_rgb(track_id * 0.618033988749895 % 1.0, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def _text(img: np.ndarray, text: str, org: tuple[int, int], fs: float, color, thickness: int) -> None:
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, thickness)
    x, y = org
    h, w = img.shape[:2]
    x = int(min(max(x, 0), max(w - tw - 4, 0)))
    y = int(min(max(y, th + 4), h - base - 2))
    cv2.rectangle(img, (x, y - th - 3), (x + tw + 4, y + base), (0, 0, 0), -1)
    cv2.putText(img, text, (x + 2, y - 1), cv2.FONT_HERSHEY_SIMPLEX, fs, color, thickness, cv2.LINE_AA)


def draw_scene(img: np.ndarray, scene: Scene, lw: int, fs: float) -> None:
    fs = max(fs * 0.9, 0.4)
    thick = max(lw - 1, 1)
    for name, pts in scene.zones:
        poly = np.array(pts, np.int32).reshape(-1, 1, 2)
        cv2.polylines(img, [poly], True, ZONE_COLOR, lw, cv2.LINE_AA)
        _text(img, name, (pts[0][0] + 4, pts[0][1] + 18), fs, ZONE_COLOR, thick)
    for name, a, b in scene.lines:
        cv2.line(img, a, b, LINE_COLOR, lw, cv2.LINE_AA)
        # arrow from the middle towards the "in" side (right of A->B, image y down)
        mx, my = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
        dx, dy = b[0] - a[0], b[1] - a[1]
        norm = max((dx * dx + dy * dy) ** 0.5, 1e-6)
        nx, ny = -dy / norm, dx / norm
        tip = (int(mx + nx * 6 * lw * 2), int(my + ny * 6 * lw * 2))
        cv2.arrowedLine(img, (int(mx), int(my)), tip, LINE_COLOR, max(lw - 1, 1), cv2.LINE_AA, tipLength=0.35)
        _text(img, f"{name} (in)", (tip[0] + 4, tip[1] + 4), fs, LINE_COLOR, thick)
    for tid, trail in scene.trails.items():
        if len(trail) >= 2:
            cv2.polylines(
                img, [np.array(trail, np.int32).reshape(-1, 1, 2)], False, track_color(tid), thick, cv2.LINE_AA
            )
    if scene.counts:
        h, w = img.shape[:2]
        y = 4
        for c in scene.counts:
            text = c.summary()
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, thick)
            y += th + base + 6
            _text(img, text, (w - tw - 10, y), fs, ZONE_COLOR if c.kind == "zone" else LINE_COLOR, thick)
