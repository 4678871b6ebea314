"""Keypoints: the extra columns are K x (x, y, visibility) in network pixels, visibility already sigmoid."""

from __future__ import annotations

import numpy as np

from yolovino.inference.core.config import InferenceConfig
from yolovino.inference.core.geometry import Letterbox
from yolovino.inference.core.results import Results
from yolovino.inference.postprocess.detect import Detect


class Pose(Detect):
    name = "pose"

    def __init__(self, nc: int, kpt_shape: tuple[int, int] = (17, 3), **_):
        super().__init__(nc)
        self.kpt_shape = tuple(kpt_shape)

    def decode(
        self, outputs: list[np.ndarray], letterbox: Letterbox, names: dict[int, str], cfg: InferenceConfig
    ) -> Results:
        boxes, scores, cls_ids, extra = self.select(outputs, cfg)
        kpts = extra.reshape(len(boxes), *self.kpt_shape)
        if self.kpt_shape[1] == 2:  # no visibility channel: report full confidence
            kpts = np.concatenate([kpts, np.ones((*kpts.shape[:2], 1), kpts.dtype)], axis=-1)
        return Results(
            letterbox.boxes_to_frame(boxes),
            scores,
            cls_ids,
            names,
            letterbox.frame_hw,
            keypoints=letterbox.points_to_frame(kpts),
        )
