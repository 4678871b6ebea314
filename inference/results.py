"""Typed per-frame results: small numpy-backed dataclasses, cheap to create, slice and serialise."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Results:
    """Detections for one frame, in the frame's own pixel coordinates.

    boxes: (N, 4) float32 xyxy; scores: (N,) float32; class_ids: (N,) int32;
    masks: (N, H, W) bool at frame size, or None; keypoints: (N, K, 3) float32 (x, y, conf), or None.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    names: dict[int, str]
    frame_shape: tuple[int, int]
    masks: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    timing: dict[str, float] = field(default_factory=dict)

    @classmethod
    def empty(cls, names: dict[int, str], frame_shape: tuple[int, int]) -> "Results":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32),
                   names, frame_shape)

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, index) -> "Results":
        """Select detections by boolean mask, index array or slice (like supervision's Detections)."""
        if isinstance(index, (int, np.integer)):
            index = [index]
        return Results(
            self.boxes[index], self.scores[index], self.class_ids[index], self.names, self.frame_shape,
            None if self.masks is None else self.masks[index],
            None if self.keypoints is None else self.keypoints[index],
            dict(self.timing),
        )

    @property
    def labels(self) -> list[str]:
        return [self.names.get(int(c), str(int(c))) for c in self.class_ids]

    def to_dict(self) -> dict:
        """JSON-ready: masks as their area and box only (full masks would bloat JSON lines)."""
        out = []
        for i in range(len(self)):
            det = {
                "class_id": int(self.class_ids[i]),
                "label": self.names.get(int(self.class_ids[i]), str(int(self.class_ids[i]))),
                "score": round(float(self.scores[i]), 4),
                "box": [round(float(v), 1) for v in self.boxes[i]],
            }
            if self.masks is not None:
                det["mask_area"] = int(self.masks[i].sum())
            if self.keypoints is not None:
                det["keypoints"] = [[round(float(v), 1) if j < 2 else round(float(v), 3)
                                     for j, v in enumerate(kp)] for kp in self.keypoints[i]]
            out.append(det)
        return {"frame_shape": list(self.frame_shape), "detections": out,
                "timing_ms": {k: round(v * 1000, 2) for k, v in self.timing.items()}}
