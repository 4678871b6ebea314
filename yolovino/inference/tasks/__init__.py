"""Per-task decoding behind one small interface: raw network outputs + letterbox -> Results.

Adding a task means adding a module with a class that has `decode` and registering it in TASKS.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..config import InferenceConfig
from ..geometry import Letterbox
from ..results import Results
from .detect import Detect
from .pose import Pose
from .segment import Segment


class Task(Protocol):
    name: str
    num_outputs: int

    def decode(
        self, outputs: list[np.ndarray], letterbox: Letterbox, names: dict[int, str], cfg: InferenceConfig
    ) -> Results: ...


TASKS: dict[str, type] = {"detect": Detect, "segment": Segment, "pose": Pose}


def make_task(name: str, **meta) -> Task:
    from ..errors import ModelError

    try:
        return TASKS[name](**meta)
    except KeyError:
        raise ModelError(f"unknown task {name!r}; expected one of {sorted(TASKS)}") from None
