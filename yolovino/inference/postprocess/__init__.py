"""Per-task decoding behind one small interface: raw network outputs + letterbox -> Results.

Adding a task means adding a module with a class that has `decode` and registering it in TASKS.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from yolovino.inference.core.config import InferenceConfig
from yolovino.inference.core.geometry import Letterbox
from yolovino.inference.core.results import Results
from yolovino.inference.postprocess.detect import Detect
from yolovino.inference.postprocess.pose import Pose
from yolovino.inference.postprocess.segment import Segment


class Task(Protocol):
    name: str
    num_outputs: int

    def decode(
        self, outputs: list[np.ndarray], letterbox: Letterbox, names: dict[int, str], cfg: InferenceConfig
    ) -> Results: ...


TASKS: dict[str, type] = {"detect": Detect, "segment": Segment, "pose": Pose}
# What the decoders read: the one-to-many heads of Ultralytics YOLOv8/YOLO11 (NMS afterwards), any size and
# class count. Classification, OBB and end-to-end (NMS-free, one-to-one: YOLO26, YOLOv10) outputs mean
# something else, so the runtime and the quantize step refuse them with this sentence.
SUPPORTED = "yolovino supports Ultralytics YOLOv8/YOLO11 detect, segment and pose models (NMS-based heads)"


def make_task(name: str, **meta) -> Task:
    from yolovino.inference.core.errors import ModelError

    try:
        return TASKS[name](**meta)
    except KeyError:
        raise ModelError(f"task {name!r} is not supported; {SUPPORTED}") from None
