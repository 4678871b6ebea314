"""Letterbox geometry, mirroring Ultralytics' LetterBox and scale_boxes so results match theirs exactly."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Letterbox:
    """How a frame of `frame_hw` is resized and padded into a network input of `input_hw`."""

    frame_hw: tuple[int, int]
    input_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    top: int
    bottom: int
    left: int
    right: int

    @classmethod
    def fit(cls, frame_hw: tuple[int, int], imgsz: tuple[int, int], stride: int = 32, rect: bool = False) -> Letterbox:
        """Letterbox into imgsz; rect shrinks the padding to the smallest stride multiple (Ultralytics auto=True)."""
        h, w = frame_hw
        r = min(imgsz[0] / h, imgsz[1] / w)
        new_w, new_h = max(round(w * r), 1), max(round(h * r), 1)
        dw, dh = imgsz[1] - new_w, imgsz[0] - new_h
        if rect:
            dw, dh = dw % stride, dh % stride
        top, bottom = round(dh / 2 - 0.1), round(dh / 2 + 0.1)
        left, right = round(dw / 2 - 0.1), round(dw / 2 + 0.1)
        return cls((h, w), (new_h + top + bottom, new_w + left + right), (new_h, new_w), top, bottom, left, right)

    @property
    def gain_xy(self) -> tuple[float, float]:
        return self.resized_hw[1] / self.frame_hw[1], self.resized_hw[0] / self.frame_hw[0]

    def boxes_to_frame(self, boxes: np.ndarray) -> np.ndarray:
        """Network-input xyxy -> frame xyxy, clipped (Ultralytics scale_boxes)."""
        gx, gy = self.gain_xy
        out = np.empty_like(boxes, dtype=np.float32)
        out[:, [0, 2]] = (boxes[:, [0, 2]] - self.left) / gx
        out[:, [1, 3]] = (boxes[:, [1, 3]] - self.top) / gy
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, self.frame_hw[1])
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, self.frame_hw[0])
        return out

    def points_to_frame(self, points: np.ndarray) -> np.ndarray:
        """Network-input (..., 2+) points -> frame points, clipped (Ultralytics scale_coords)."""
        gx, gy = self.gain_xy
        out = points.astype(np.float32, copy=True)
        out[..., 0] = ((out[..., 0] - self.left) / gx).clip(0, self.frame_hw[1])
        out[..., 1] = ((out[..., 1] - self.top) / gy).clip(0, self.frame_hw[0])
        return out

    def numpy_letterbox(self, frame: np.ndarray) -> np.ndarray:
        """The same transform done with OpenCV on the host: a reference for tests and for calibration."""
        import cv2

        img = frame
        if (self.resized_hw[0], self.resized_hw[1]) != tuple(frame.shape[:2]):
            img = cv2.resize(frame, (self.resized_hw[1], self.resized_hw[0]), interpolation=cv2.INTER_LINEAR)
        return cv2.copyMakeBorder(
            img, self.top, self.bottom, self.left, self.right, cv2.BORDER_CONSTANT, value=(114, 114, 114)
        )
