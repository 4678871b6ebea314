"""Rendered scenes for the tracking tests: real COCO object cut-outs pasted on a plain background.

The cut-outs are instances of coco128-seg (their polygon is the alpha mask), scaled to a chosen height and
pasted at positions the test script decides frame by frame; an occluder (a pole, a sign) is drawn on top.
The script's positions are the truth: which side of a line an object is on, when it is hidden, how many
times it crosses. The frames go through the real detector and the real analytics stage.

    person = cutout(coco128_seg_root, "000000000572", 0, height=150)   # a standing woman, full body
    frame = render(BACKGROUND, [(person, cx, bottom)], occluders=[(300, 0, 380, 360)])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

W, H = 640, 360

# instances chosen by eye: whole (not cut by the image border, not hidden by anything), upright
PERSON = ("000000000572", 0)  # a standing woman in a black hoodie and jeans
PERSON_2 = ("000000000086", 0)  # a man in a white shirt (without his motorbike: the polygon is the man's)


@dataclass(frozen=True)
class Cutout:
    """A BGR patch and its 0..1 alpha (the instance's polygon, anti-aliased)."""

    image: np.ndarray
    alpha: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]


def cutout(root: Path, stem: str, index: int, height: int) -> Cutout:
    """Instance `index` (line of the label file) of image `stem` in the coco128-seg folder `root`, scaled
    to `height` pixels."""
    img = cv2.imread(str(root / "images" / "train2017" / f"{stem}.jpg"), cv2.IMREAD_COLOR)
    assert img is not None, stem
    row = (root / "labels" / "train2017" / f"{stem}.txt").read_text().splitlines()[index].split()
    h, w = img.shape[:2]
    poly = np.array(row[1:], np.float64).reshape(-1, 2) * [w, h]
    x0, y0 = np.floor(poly.min(0)).astype(int)
    x1, y1 = np.ceil(poly.max(0)).astype(int)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(poly * 8).astype(np.int32)], 255, cv2.LINE_AA, shift=3)
    patch, alpha = img[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    scale = height / patch.shape[0]
    size = (max(1, round(patch.shape[1] * scale)), height)
    return Cutout(
        cv2.resize(patch, size, interpolation=cv2.INTER_AREA),
        cv2.resize(alpha, size, interpolation=cv2.INTER_AREA).astype(np.float32)[..., None] / 255.0,
    )


def background(w: int = W, h: int = H) -> np.ndarray:
    """A plain floor and wall (two soft grey gradients): nothing on it for the detector to find."""
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :]
    wall = 170 + 20 * x
    floor = 120 + 30 * y + 10 * x
    grey = np.where(y < 0.35, wall, floor)
    return np.repeat(grey[..., None], 3, axis=2).clip(0, 255).astype(np.uint8)


def box_of(c: Cutout, cx: float, bottom: float) -> tuple[float, float, float, float]:
    """The pixel box of cut-out `c` placed with its bottom centre at (cx, bottom)."""
    w, h = c.size
    return (cx - w / 2, bottom - h, cx + w / 2, bottom)


def render(
    bg: np.ndarray,
    placed: list[tuple[Cutout, float, float]],
    occluders: tuple[tuple[int, int, int, int], ...] = (),
) -> np.ndarray:
    """A frame: each (cut-out, cx, bottom) pasted in list order (later ones in front), then the occluders
    (x0, y0, x1, y1: dark grey boxes, in front of everything), clipped to the frame."""
    frame = bg.copy()
    fh, fw = frame.shape[:2]
    for c, cx, bottom in placed:
        x0, y0 = round(cx - c.size[0] / 2), round(bottom - c.size[1])
        sx0, sy0 = max(0, -x0), max(0, -y0)
        dx0, dy0 = max(0, x0), max(0, y0)
        dx1, dy1 = min(fw, x0 + c.size[0]), min(fh, y0 + c.size[1])
        if dx1 <= dx0 or dy1 <= dy0:
            continue
        sl = (slice(sy0, sy0 + dy1 - dy0), slice(sx0, sx0 + dx1 - dx0))
        a = c.alpha[sl]
        region = frame[dy0:dy1, dx0:dx1].astype(np.float32)
        frame[dy0:dy1, dx0:dx1] = (region * (1 - a) + c.image[sl].astype(np.float32) * a).astype(np.uint8)
    for x0, y0, x1, y1 in occluders:
        frame[max(0, y0) : min(fh, y1), max(0, x0) : min(fw, x1)] = (70, 75, 80)
    return frame
