"""Detect every Nth frame: an engine wrapper that skips the detector on the other frames of a source.

    engine = StridedEngine(AsyncEngine(model), {"door": 3})      # or StridedEngine(engine, 2) for every source
    Pipeline(engine, sources, analytics=Analytics(...))

A skipped frame does not go to OpenVINO; it comes back, in submission order with the others, with empty
Results marked `carried=True`, and the analytics stage fills in the boxes its tracker carries forward
(tracker.Tracker.carry). This is the usual way to fit more cameras on one box: inference is the
expensive part, and between two detections objects move little. It implements the `model.engine.Engine`
protocol the pipeline drives, keyed by the `source_id` every submitted frame names.

A source may also have a motion gate (model/motion.py, `set_gate`): then a frame is detected when the gate
wants it (motion, live tracks, keepalive) and it is that source's stride-th frame; `per_source` counts the
frames detected and submitted of each source (the share the metrics report). While a gate's `show` is on,
each of that source's Results carries the gate's `MotionSnapshot` of its frame (`Results.motion`), which the
annotator draws.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from yolovino.inference.core.config import InferenceConfig
from yolovino.inference.core.results import Frame, Results
from yolovino.inference.model.engine import Engine
from yolovino.inference.model.ir import YoloModel
from yolovino.inference.model.motion import MotionGate


class StridedEngine:
    """An `Engine` that runs the wrapped one on every `stride`-th frame of each source only (see the module
    docstring); the other frames come back with empty, `carried` Results in their turn."""

    def __init__(
        self,
        engine: Engine,
        stride: int | Mapping[str, int],
        time_of: Callable[[Any], float | None] | None = None,
    ):
        """`time_of(userdata)`: a submitted frame's stream time, which motion gates measure their intervals in
        (the tracker's clock; pipeline.frame_time for the Pipeline's frames); None: the wall clock."""
        self.engine = engine
        self.time_of = time_of
        self._default = stride if isinstance(stride, int) else 1
        self._strides = {} if isinstance(stride, int) else dict(stride)
        # ("engine", snapshot) or ("skip", (frame, userdata, snapshot)); snapshot: MotionSnapshot | None
        self._order: deque[tuple[str, Any]] = deque()
        self._counts: dict[str, int] = {}
        self._gates: dict[str, MotionGate] = {}
        self.per_source: dict[str, list[int]] = {}  # source id -> [frames detected, frames submitted]
        self.skipped = self.detected = 0

    def stride_for(self, source_id: str) -> int:
        return max(1, int(self._strides.get(source_id, self._default)))

    # the Engine protocol --------------------------------------------------------------------------
    @property
    def model(self) -> YoloModel:
        return self.engine.model

    @property
    def config(self) -> InferenceConfig:
        return self.engine.config

    def set_config(self, config: InferenceConfig) -> None:
        self.engine.set_config(config)

    @property
    def capacity(self) -> int:
        """The engine's capacity plus the skipped frames waiting in line (they cost no infer request)."""
        return self.engine.capacity + sum(1 for kind, _ in self._order if kind == "skip")

    @property
    def in_flight(self) -> int:
        return len(self._order)

    def set_stride(self, source_id: str, stride: int) -> None:
        """Detect every `stride`-th frame of that source from now on (a source added by a live reload)."""
        self._strides[source_id] = int(stride)

    def set_gate(self, source_id: str, gate: MotionGate | None) -> None:
        """Gate that source's frames by motion from now on (None: no gate)."""
        if gate is None:
            self._gates.pop(source_id, None)
        else:
            self._gates[source_id] = gate

    def gate(self, source_id: str) -> MotionGate | None:
        return self._gates.get(source_id)

    def submit(
        self,
        frame: np.ndarray | Frame,
        userdata: Any = None,
        config: InferenceConfig | None = None,
        *,
        source_id: str = "",
    ) -> None:
        """The count of frames submitted for `source_id` picks the ones to detect (the 1st, the stride+1-th,
        ...). `config`: that frame's output filtering (Engine.submit); userdata comes back untouched. A
        Frame is handed on only when detected: a skipped one comes back as it was (no BGR conversion; the
        motion gate reads its Y plane)."""
        n = self._counts.get(source_id, 0)
        self._counts[source_id] = n + 1
        gate = self._gates.get(source_id)
        t = self.time_of(userdata) if gate is not None and self.time_of is not None else None
        wanted = gate.decide(frame, t) if gate is not None else True  # the motion detector sees every frame
        counts = self.per_source.setdefault(source_id, [0, 0])
        counts[1] += 1
        detect = wanted and n % self.stride_for(source_id) == 0
        snap = gate.snapshot(detect) if gate is not None and gate.show else None
        if detect:
            self.engine.submit(frame, userdata, config, source_id=source_id)
            self._order.append(("engine", snap))
            self.detected += 1
            counts[0] += 1
            if gate is not None:
                gate.ran(t)
        else:
            self._order.append(("skip", (frame, userdata, snap)))
            self.skipped += 1

    def ready(self) -> bool:
        if not self._order:
            return False
        return self._order[0][0] == "skip" or self.engine.ready()

    def get(self) -> tuple[np.ndarray | Frame, Results, Any]:
        if not self._order:
            raise LookupError("no frame in flight")
        kind, item = self._order[0]
        if kind == "engine":
            try:
                frame, results, userdata = self.engine.get()
            finally:
                self._order.popleft()
            if item is not None:
                results.motion = item
            return frame, results, userdata
        self._order.popleft()
        frame, userdata, snap = item
        results = Results.empty(self.engine.model.names, frame.shape[:2])
        results.carried = True
        results.motion = snap
        return frame, results, userdata

    def drain_discard(self) -> None:
        self.engine.drain_discard()
        self._order.clear()

    def close(self) -> None:
        self._order.clear()
        self.engine.close()

    def __enter__(self) -> StridedEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
