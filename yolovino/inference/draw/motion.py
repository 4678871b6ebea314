"""Draw what the motion gate saw on a frame: its motion regions, the motion masks, and whether the detector ran.

Used by the annotator (annotate.py) when a frame's Results carry a `MotionSnapshot` (the engine attaches one
only while a source's motion drawing is on: the UI's "Show motion", or `motion: {show: true}` in the YAML),
so a frame without one costs nothing here. The regions are the boxes of the gate's moving blobs, tinted
inside and outlined; the masks are hatched (motion there is ignored) and outlined; a caption in the
bottom-left corner says "detector ran" or "detector skipped (tracker carried)" and the share of the frame
that changed. The tint is blended only inside each region's box, so the cost follows the moving area.
"""

from __future__ import annotations

import cv2
import numpy as np

from yolovino.inference.core.motion import MotionSnapshot
from yolovino.inference.draw.label import CAPTION, draw_label, label_size

MOTION_COLOR = (0, 255, 0)  # BGR green: where something moved on this frame
MASK_COLOR = (255, 255, 0)  # BGR cyan: where motion is ignored
SKIP_COLOR = (160, 160, 160)  # caption when the detector did not run
HATCH_STEP = 16  # pixels between the mask's hatch lines (at 768 px wide; scaled with the frame)
TINT_ALPHA = 0.35


def draw_motion(img: np.ndarray, motion: MotionSnapshot, lw: int, fs: float) -> None:
    """Draw `motion` (normalised coordinates) on the BGR image in place; lw/fs: the annotator's line width
    and font scale."""
    h, w = img.shape[:2]
    scale = np.array([w - 1, h - 1], np.float64)
    thin = max(lw // 2, 1)
    step = max(round(HATCH_STEP * w / 768), 6)
    calibrating = motion.boxes == ((0.0, 0.0, 1.0, 1.0),)  # the whole frame: the background is being learnt
    corners = [
        ((round(x0 * (w - 1)), round(y0 * (h - 1))), (round(x1 * (w - 1)), round(y1 * (h - 1))))
        for x0, y0, x1, y1 in (() if calibrating else motion.boxes)
    ]
    for a, b in corners:  # every tint first, then every outline: overlapping regions keep their edges
        if b[0] > a[0] and b[1] > a[1]:
            roi = img[a[1] : b[1] + 1, a[0] : b[0] + 1]
            tint = np.empty_like(roi)
            tint[:] = MOTION_COLOR
            cv2.addWeighted(roi, 1.0 - TINT_ALPHA, tint, TINT_ALPHA, 0.0, dst=roi)
    for a, b in corners:
        cv2.rectangle(img, a, b, MOTION_COLOR, thin, cv2.LINE_8)
    for poly in motion.mask:
        pts = np.round(np.array(poly, np.float64) * scale).astype(np.int32)
        _hatch(img, pts, step, lw)  # as thick as the outlines: they survive a recording's H.264 and 4:2:0
        cv2.polylines(img, [pts.reshape(-1, 1, 2)], True, MASK_COLOR, lw, cv2.LINE_8)
    fs = max(fs * 0.9, 0.4)
    thick = max(lw - 1, 1)
    ran = "detector ran" if motion.detected else "detector skipped (tracker carried)"
    text = f"motion {'calibrating' if calibrating else f'{motion.changed * 100:.1f}%'} | {ran}"
    th = label_size(text, fs, thick, CAPTION)[1]
    color = MOTION_COLOR if motion.detected else SKIP_COLOR
    draw_label(img, text, (4, max(h - th - 4, 0)), fs, thick, color, (0, 0, 0), CAPTION)


def _hatch(img: np.ndarray, pts: np.ndarray, step: int, thickness: int) -> None:
    """Diagonal lines every `step` pixels, drawn only inside the polygon `pts` (clipped to its bounding box,
    so the cost follows the mask's area)."""
    h, w = img.shape[:2]
    x0, y0 = max(int(pts[:, 0].min()), 0), max(int(pts[:, 1].min()), 0)
    x1, y1 = min(int(pts[:, 0].max()), w - 1), min(int(pts[:, 1].max()), h - 1)
    if x1 <= x0 or y1 <= y0:
        return
    bw, bh = x1 - x0 + 1, y1 - y0 + 1
    lines = np.zeros((bh, bw), np.uint8)
    for k in range(-bh, bw, step):  # lines x - y = k, lower left to upper right
        cv2.line(lines, (k, 0), (k + bh, bh), 255, thickness, cv2.LINE_8)
    inside = np.zeros((bh, bw), np.uint8)
    cv2.fillPoly(inside, [(pts - (x0, y0)).reshape(-1, 1, 2)], 255)
    roi = img[y0 : y1 + 1, x0 : x1 + 1]
    roi[(lines > 0) & (inside > 0)] = MASK_COLOR
