"""Draw the analytics Scene on a frame: zone outlines, lines (segments, polylines) with "in" arrows, track
trails, live counts.

Used by the annotator (annotate.py) before it draws boxes, so boxes and labels stay on top. Everything is
outlines and text (no full-frame blending), so the cost does not grow with the frame area.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from yolovino.inference.core.events import Scene
from yolovino.inference.draw.label import CAPTION, draw_label, label_size, text_size

ZONE_COLOR = (0, 200, 255)  # BGR amber
LINE_COLOR = (255, 0, 255)  # magenta


def track_color(track_id: int) -> tuple[int, int, int]:
    """A stable, well-spread BGR colour per track id (golden-ratio hues)."""
    r, g, b = colorsys.hsv_to_rgb(track_id * 0.618033988749895 % 1.0, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def _text(img: np.ndarray, text: str, org: tuple[int, int], fs: float, color, thickness: int) -> None:
    """A caption whose label starts at x = org[0] with the text's baseline just above y = org[1], moved as
    little as needed to stay in the image (1 px from the top, 2 px from the bottom)."""
    w, h = label_size(text, fs, thickness, CAPTION)
    th = text_size(text, fs, thickness)[1]
    x = int(min(max(org[0], 0), max(img.shape[1] - w, 0)))
    top = int(min(max(org[1] - 1 - th - CAPTION.pad[1], 1), img.shape[0] - h - 2))
    draw_label(img, text, (x, top), fs, thickness, color, (0, 0, 0), CAPTION)


def draw_scene(img: np.ndarray, scene: Scene, lw: int, fs: float) -> None:
    fs = max(fs * 0.9, 0.4)
    thick = max(lw - 1, 1)
    for name, pts in scene.zones:
        poly = np.array(pts, np.int32).reshape(-1, 1, 2)
        cv2.polylines(img, [poly], True, ZONE_COLOR, lw, cv2.LINE_AA)
        _text(img, name, (pts[0][0] + 4, pts[0][1] + 18), fs, ZONE_COLOR, thick)
    for name, pts in scene.lines:
        cv2.polylines(img, [np.array(pts, np.int32).reshape(-1, 1, 2)], False, LINE_COLOR, lw, cv2.LINE_AA)
        # an arrow from the middle of each segment towards the "in" side (right of the walking direction,
        # image y down; the same side all along a polyline), the name by the middle segment's
        for i, (a, b) in enumerate(zip(pts, pts[1:])):
            mx, my = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
            dx, dy = b[0] - a[0], b[1] - a[1]
            norm = max((dx * dx + dy * dy) ** 0.5, 1e-6)
            nx, ny = -dy / norm, dx / norm
            tip = (int(mx + nx * 6 * lw * 2), int(my + ny * 6 * lw * 2))
            cv2.arrowedLine(img, (int(mx), int(my)), tip, LINE_COLOR, max(lw - 1, 1), cv2.LINE_AA, tipLength=0.35)
            if i == (len(pts) - 2) // 2:
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
            tw, th, base = text_size(text, fs, thick)
            y += th + base + 6
            _text(img, text, (w - tw - 10, y), fs, ZONE_COLOR if c.kind == "zone" else LINE_COLOR, thick)
