"""Boxes: (1, 4 + nc, anchors) -> score filter, class-aware NMS, scaled back to the frame."""

from __future__ import annotations

import numpy as np

from yolovino.inference.core.config import InferenceConfig
from yolovino.inference.core.geometry import Letterbox
from yolovino.inference.core.results import Results
from yolovino.inference.postprocess.nms import select


class Detect:
    name = "detect"
    num_outputs = 1

    def __init__(self, nc: int, **_):
        self.nc = nc

    def select(self, outputs: list[np.ndarray], cfg: InferenceConfig):
        pred = outputs[0][0].T  # (anchors, 4 + nc + extra), a view
        return select(pred, self.nc, cfg.conf, cfg.iou, cfg.max_det, cfg.classes, cfg.multi_label)

    def decode(
        self, outputs: list[np.ndarray], letterbox: Letterbox, names: dict[int, str], cfg: InferenceConfig
    ) -> Results:
        boxes, scores, cls_ids, _ = self.select(outputs, cfg)
        return Results(letterbox.boxes_to_frame(boxes), scores, cls_ids, names, letterbox.frame_hw)
