"""Asynchronous inference: many requests in flight, decoding on OpenVINO's callback threads, results in order.

Frames are handed to OpenVINO without a copy (share_inputs) and kept alive until their request completes.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import openvino as ov

from .config import InferenceConfig
from .model import Prepared, YoloModel, check_frame
from .results import Results


@dataclass
class Job:
    """One frame in flight; `results` is filled by the callback."""

    seq: int
    frame: np.ndarray
    userdata: Any
    submitted: float
    config: InferenceConfig
    results: Results | None = None
    error: BaseException | None = None
    done: bool = False


class AsyncEngine:
    """Submit frames, get (frame, results, userdata) back in submission order.

    One AsyncInferQueue per frame size (the graph is static per size); several sources may share one engine.
    """

    def __init__(self, model: YoloModel):
        self.model = model
        self._queues: dict[tuple[int, int], tuple[Prepared, ov.AsyncInferQueue]] = {}
        self._pending: deque[Job] = deque()
        self._cond = threading.Condition()
        self._seq = 0
        self._lock = threading.Lock()

    @property
    def config(self) -> InferenceConfig:
        return self.model.config

    def set_config(self, config: InferenceConfig) -> None:
        """Thresholds and class filters take effect from the next frame; graph settings rebuild lazily."""
        if config.rect != self.model.config.rect or config.hint != self.model.config.hint:
            self.drain()
            self.model = YoloModel(self.model._model, self.model.meta, config, self.model.core, self.model.path)
            self._queues.clear()
        else:
            self.model = self.model.with_config(config)

    def _queue_for(self, frame_hw: tuple[int, int]) -> tuple[Prepared, ov.AsyncInferQueue]:
        entry = self._queues.get(frame_hw)
        if entry is None:
            prepared = self.model.prepare(frame_hw)
            jobs = self.config.num_requests or prepared.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
            queue = ov.AsyncInferQueue(prepared.compiled, int(jobs))
            queue.set_callback(self._on_done)
            entry = self._queues[frame_hw] = (prepared, queue)
        return entry

    @property
    def capacity(self) -> int:
        """Requests that can be in flight for the frame sizes seen so far (at least 1)."""
        return max((len(q) for _, q in self._queues.values()), default=1)

    def submit(self, frame: np.ndarray, userdata: Any = None) -> None:
        """Start inference on a frame; blocks only while every request of its size is busy."""
        frame = check_frame(frame)
        with self._lock:
            prepared, queue = self._queue_for(frame.shape[:2])
            job = Job(self._seq, frame, userdata, time.perf_counter(), self.config)
            self._seq += 1
            with self._cond:
                self._pending.append(job)
        queue.start_async({0: frame[None]}, (job, prepared), share_inputs=True)

    def _on_done(self, request: ov.InferRequest, userdata) -> None:
        job, prepared = userdata
        try:
            t0 = time.perf_counter()
            outputs = [request.get_output_tensor(i).data for i in range(self.model.task.num_outputs)]
            results = self.model.decode(outputs, prepared.letterbox, job.config)
            t1 = time.perf_counter()
            results.timing.update(infer=t0 - job.submitted, decode=t1 - t0)
            job.results = results
        except BaseException as exc:  # surfaced to the consumer, never lost on a worker thread
            job.error = exc
        with self._cond:
            job.done = True
            self._cond.notify_all()

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def ready(self) -> bool:
        """True when the oldest frame's results are available without blocking."""
        with self._cond:
            return bool(self._pending) and self._pending[0].done

    def get(self, timeout: float | None = None) -> tuple[np.ndarray, Results, Any]:
        """Oldest submitted frame with its results (blocks until it is done)."""
        with self._cond:
            if not self._pending:
                raise LookupError("no frame in flight")
            job = self._pending[0]
            if not self._cond.wait_for(lambda: job.done, timeout):
                raise TimeoutError("inference did not finish in time")
            self._pending.popleft()
        if job.error is not None:
            raise job.error
        job.results.timing["latency"] = time.perf_counter() - job.submitted
        return job.frame, job.results, job.userdata

    def drain(self) -> list[tuple[np.ndarray, Results, Any]]:
        out = []
        while self._pending:
            out.append(self.get())
        return out

    def stream(self, frames: Iterable[np.ndarray] | Iterable[tuple[np.ndarray, Any]],
               with_userdata: bool = False) -> Iterator[tuple[np.ndarray, Results, Any]]:
        """Pipeline an iterable of frames (or (frame, userdata) pairs): keep every request busy, yield in order."""
        for item in frames:
            frame, userdata = item if with_userdata else (item, None)
            self.submit(frame, userdata)
            while self.in_flight >= self.capacity or self.ready():
                yield self.get()
        while self.in_flight:
            yield self.get()
