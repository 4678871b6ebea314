"""Asynchronous inference: every infer request kept busy, results handed back in submission order.

Frames go to OpenVINO without a copy (share_inputs) and stay referenced until their request completes.
Completed requests are decoded on the caller's thread rather than in OpenVINO callbacks: Python callbacks
on OpenVINO's worker threads race with interpreter shutdown (intermittent aborts at exit when they were tried),
and decoding while the other requests run keeps the cores just as busy.

`Engine` is the interface the pipeline drives: `AsyncEngine` here runs every frame, `model.stride.
StridedEngine` wraps one and skips the detector on some frames of a source. Anything else that implements
it (another backend, a replay of recorded results) plugs into `Pipeline` the same way.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import numpy as np
import openvino as ov

from yolovino.inference.core.config import InferenceConfig
from yolovino.inference.core.results import Frame, Results
from yolovino.inference.model.ir import Prepared, YoloModel, check_frame


@dataclass
class _Pool:
    """Infer requests of the graph compiled for one frame size."""

    prepared: Prepared
    idle: list[ov.InferRequest] = field(default_factory=list)
    size: int = 0


@dataclass
class Job:
    seq: int
    frame: np.ndarray
    userdata: Any
    submitted: float
    config: InferenceConfig
    pool: _Pool
    request: ov.InferRequest
    results: Results | None = None
    error: BaseException | None = None


class Engine(Protocol):
    """Frames in, (frame, results, userdata) out in submission order: what `pipeline.Pipeline` drives.

    `submit` may block to finish the oldest frame when every request is busy; `ready` says whether `get`
    would return without blocking; `capacity` is how many frames may usefully be in flight. `source_id`
    names the source a frame comes from, for engines that treat sources differently (StridedEngine's
    per-source stride); `userdata` is the caller's and comes back untouched.
    """

    @property
    def model(self) -> YoloModel:
        """The model whose results come back (names, task)."""
        ...

    @property
    def config(self) -> InferenceConfig:
        """Thresholds, class filter and graph settings applied to frames submitted without their own."""
        ...

    def set_config(self, config: InferenceConfig) -> None:
        """New thresholds from the next frame; new graph settings rebuild the graphs."""
        ...

    @property
    def capacity(self) -> int:
        """Frames that can be in flight before `submit` blocks."""
        ...

    @property
    def in_flight(self) -> int:
        """Frames submitted and not yet handed back by `get`."""
        ...

    def submit(
        self,
        frame: np.ndarray | Frame,
        userdata: Any = None,
        config: InferenceConfig | None = None,
        *,
        source_id: str = "",
    ) -> None:
        """Start work on a frame of source `source_id`; `config` filters this frame's results. A core Frame
        may come instead of its image: an engine that skips frames (StridedEngine) then converts only
        the frames it detects on (Frame.decoded)."""
        ...

    def ready(self) -> bool:
        """The oldest frame's results can be had without blocking."""
        ...

    def get(self) -> tuple[np.ndarray | Frame, Results, Any]:
        """The oldest submitted frame (its image, or the Frame as submitted) with its results and userdata
        (blocks until done)."""
        ...

    def drain_discard(self) -> None:
        """Finish and drop every frame in flight."""
        ...

    def close(self) -> None:
        """Drop what is in flight and release the engine's resources. Idempotent."""
        ...


def default_requests(compiled: ov.CompiledModel, hint: str) -> int:
    """Twice OpenVINO's optimal number under THROUGHPUT: a queued request starts the moment a stream frees
    while Python is still decoding the previous result (bench/engine_bench.py measures the gain). Under
    LATENCY the optimal number (1): queued frames would only wait longer."""
    optimal = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    return optimal * 2 if hint.upper() != "LATENCY" else optimal


class AsyncEngine:
    """Submit frames, get (frame, results, userdata) back in submission order (an `Engine`).

    One pool of requests per frame size (the graph is static per size); several sources may share one
    engine, which is how one compiled model serves many cameras. A camera whose resolution changes gets
    a graph for the new size on its first frame (compiled once, reused when the size comes back); at
    most `max_sizes` graphs are kept, the least recently used idle one is let go beyond that.
    """

    def __init__(self, model: YoloModel, max_sizes: int = 8):
        self.model = model
        self.max_sizes = max(1, int(max_sizes))
        self._pools: dict[tuple[int, int], _Pool] = {}  # in order of last use
        self._pending: deque[Job] = deque()
        self._seq = 0
        self._lock = threading.RLock()

    @property
    def config(self) -> InferenceConfig:
        return self.model.config

    def set_config(self, config: InferenceConfig) -> None:
        """Thresholds and class filters apply from the next frame; graph settings (rect, hint) rebuild lazily."""
        with self._lock:
            if config.graph_key() != self.config.graph_key():
                self.drain_discard()
                self._pools.clear()
            self.model = self.model.reconfigured(config)

    def _pool_for(self, frame_hw: tuple[int, int]) -> _Pool:
        pool = self._pools.pop(frame_hw, None)
        if pool is None:
            self._evict(keep=self.max_sizes - 1)
            prepared = self.model.prepare(frame_hw)
            n = self.config.num_requests or default_requests(prepared.compiled, self.config.hint)
            pool = _Pool(prepared, [prepared.compiled.create_infer_request() for _ in range(int(n))], int(n))
        self._pools[frame_hw] = pool  # most recently used last
        return pool

    def _evict(self, keep: int) -> None:
        """Let go of the least recently used graphs with nothing in flight until `keep` remain."""
        busy = {id(job.pool) for job in self._pending}
        for hw, pool in list(self._pools.items()):
            if len(self._pools) <= keep:
                break
            if id(pool) not in busy:
                del self._pools[hw]
                self.model.forget(hw)

    @property
    def frame_sizes(self) -> list[tuple[int, int]]:
        """(height, width) of the frame sizes with a compiled graph, least recently used first."""
        return list(self._pools)

    @property
    def capacity(self) -> int:
        """Requests that can be in flight for the frame sizes seen so far (at least 1)."""
        return max((p.size for p in self._pools.values()), default=1)

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def submit(
        self,
        frame: np.ndarray | Frame,
        userdata: Any = None,
        config: InferenceConfig | None = None,
        *,
        source_id: str = "",
    ) -> None:
        """Start inference on a frame (a Frame: its BGR image); when every request of its size is busy, first
        finish the oldest. `config` filters this frame's outputs (thresholds, classes) instead of the engine's
        own; its graph settings must be the engine's. Every frame is inferred, whatever its `source_id`."""
        image = check_frame(frame)
        with self._lock:
            pool = self._pool_for(image.shape[:2])
            while not pool.idle:
                self._finish(next(job for job in self._pending if job.results is None and job.error is None))
            request = pool.idle.pop()
            job = Job(self._seq, image, userdata, time.perf_counter(), config or self.config, pool, request)
            self._seq += 1
            request.start_async({0: image[None]}, share_inputs=True)
            self._pending.append(job)

    def _finish(self, job: Job) -> None:
        """Wait for a job's request, decode its outputs, give the request back."""
        try:
            job.request.wait()
            t0 = time.perf_counter()
            outputs = [job.request.get_output_tensor(i).data for i in range(self.model.task.num_outputs)]
            job.results = self.model.decode(outputs, job.pool.prepared.letterbox, job.config)
            job.results.timing.update(infer=t0 - job.submitted, decode=time.perf_counter() - t0)
        except Exception as exc:  # noqa: BLE001 - handed to the consumer with its frame, never lost
            job.error = exc
        finally:
            job.pool.idle.append(job.request)

    def oldest_wait(self) -> float:
        """Seconds the oldest frame still in flight has waited (0 when none): a hung infer request shows
        here. Lock-free, so a watchdog can ask while another thread is blocked waiting for that request."""
        try:
            job = self._pending[0]
        except IndexError:
            return 0.0
        return 0.0 if job.results is not None or job.error is not None else time.perf_counter() - job.submitted

    def ready(self) -> bool:
        """True when the oldest frame's results can be had without blocking."""
        with self._lock:
            if not self._pending:
                return False
            job = self._pending[0]
            return job.results is not None or job.error is not None or job.request.wait_for(0)

    def get(self) -> tuple[np.ndarray, Results, Any]:
        """Oldest submitted frame with its results (blocks until it is done)."""
        with self._lock:
            if not self._pending:
                raise LookupError("no frame in flight")
            job = self._pending[0]
            if job.results is None and job.error is None:
                self._finish(job)
            self._pending.popleft()
            if len(self._pools) > self.max_sizes:
                self._evict(keep=self.max_sizes)
        if job.error is not None:
            raise job.error
        assert job.results is not None  # _finish set results or error
        job.results.timing["latency"] = time.perf_counter() - job.submitted
        return job.frame, job.results, job.userdata

    def drain_discard(self) -> None:
        with self._lock:
            for job in list(self._pending):
                if job.results is None and job.error is None:
                    self._finish(job)
            self._pending.clear()

    def close(self) -> None:
        """Finish what is in flight and release the requests. Idempotent."""
        self.drain_discard()
        self._pools.clear()

    def __enter__(self) -> AsyncEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def stream(
        self, frames: Iterable[np.ndarray] | Iterable[tuple[np.ndarray, Any]], with_userdata: bool = False
    ) -> Iterator[tuple[np.ndarray, Results, Any]]:
        """Pipeline an iterable of frames (or (frame, userdata) pairs): keep every request busy, yield in order."""
        pairs = cast(Iterable[tuple[np.ndarray, Any]], frames if with_userdata else ((f, None) for f in frames))
        for frame, userdata in pairs:
            self.submit(frame, userdata)
            while self.in_flight >= self.capacity or self.ready():
                yield self.get()
        while self.in_flight:
            yield self.get()
