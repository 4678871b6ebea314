"""The video pipeline: sources -> one shared AsyncEngine -> annotate -> sinks, yielding FrameResults.

Stable API (the Gradio UI and the headless runner both use exactly this):

    from inference.pipeline import Pipeline, FrameResult
    from inference.sources import open_source
    from inference.annotate import Annotator

    pipe = Pipeline(engine, [open_source(spec)], sinks=[...], annotator=Annotator(),
                    analytics=Analytics(...))   # optional: tracker -> zones -> events (inference/analytics.py)
    for fr in pipe.run(stop):          # stop: threading.Event | None; run(stop, max_frames=N) also works
        fr.frame        # sources.Frame: image (raw BGR, shared with OpenVINO: do not write to it), index,
                        #   source_id (redacted), pts, captured_at
        fr.results      # results.Results in frame pixels
        fr.annotated    # BGR np.ndarray with drawings (a copy), or None when annotator=None
        fr.fps          # this source's output frame rate over the last ~2 s
        fr.latency_ms   # capture -> annotated result, milliseconds (includes queueing)
        fr.analytics    # events.FrameAnalytics (events, counts, drawing) when an analytics stage is given

Behaviour:
  * Fair round-robin: each round takes at most one frame from every source that has one ready, while
    keeping the engine's infer requests busy; results come back in submission order.
  * A source that fails (file error, gave up reconnecting) is logged once and dropped; the others go on.
    If every source failed (e.g. one truncated file) and the pipeline owns its sources, `run` raises the
    first SourceError at the end, after yielding what could be read and closing the sinks. With
    own_sources=False the caller keeps the sources and reads `source.error` / `pipeline.errors` instead.
  * `run` ends when every source has ended, `stop` is set, `max_frames` were yielded, or the caller
    closes the generator. In every case sinks are closed (mp4 finalised) and, when the pipeline owns
    them (default), sources too. Sink errors are logged once per sink and that sink is disabled.
  * Copies: decoded frames go to OpenVINO without a copy; the annotator copies once to draw.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Generator, Sequence
from typing import Protocol

from .annotate import Annotator
from .engine import AsyncEngine
from .errors import InferenceError, SourceError
from .events import FrameAnalytics
from .results import Frame, FrameResult, Results
from .sinks import Sink
from .sources import FrameSource
from .stride import StridedEngine

log = logging.getLogger(__name__)


class _Rate:
    """Frames per second over a sliding window."""

    def __init__(self, window: float = 2.0):
        self.window = window
        self.times: deque[float] = deque(maxlen=256)

    def tick(self, now: float) -> float:
        self.times.append(now)
        while len(self.times) > 2 and now - self.times[0] > self.window:
            self.times.popleft()
        if len(self.times) < 2:
            return 0.0
        return (len(self.times) - 1) / max(self.times[-1] - self.times[0], 1e-6)


class ResultsStage(Protocol):
    """What runs between results and annotation (inference.analytics.Analytics: tracker -> zones -> events):
    it may replace the results (track IDs, boxes carried on frames the detector skipped) and returns what
    the annotator draws and the FrameResult carries. Owned by the caller, who closes it."""

    def process(self, source: FrameSource, frame: Frame, results: Results) -> tuple[Results, FrameAnalytics | None]: ...


class Pipeline:
    """Run several sources through one engine; see the module docstring for the contract."""

    def __init__(
        self,
        engine: AsyncEngine | StridedEngine,
        sources: Sequence[FrameSource],
        sinks: Sequence[Sink] = (),
        annotator: Annotator | None = None,
        *,
        metrics=None,
        overlay: bool = True,
        own_sources: bool = True,
        max_in_flight: int | None = None,
        analytics: ResultsStage | None = None,
    ):
        if not sources:
            raise InferenceError("Pipeline needs at least one source")
        self.engine = engine
        self.sources = list(sources)
        self.sinks = list(sinks)
        self.annotator = annotator
        self.metrics = metrics
        self.overlay = overlay
        self.own_sources = own_sources
        self.max_in_flight = max_in_flight
        self.analytics = analytics
        self.frames_out = 0
        self.errors: list[BaseException] = []
        self._rates = {id(s): _Rate() for s in self.sources}
        self._bad_sinks: set[int] = set()
        self._closed = False
        if metrics is not None:
            for s in self.sources:
                metrics.register_source(s)

    def _capacity(self) -> int:
        cap = self.engine.capacity
        return min(cap, self.max_in_flight) if self.max_in_flight else cap

    def run(
        self, stop: threading.Event | None = None, max_frames: int | None = None
    ) -> Generator[FrameResult, None, None]:
        stop = stop or threading.Event()
        wake = threading.Event()
        for s in self.sources:
            s.on_frame = wake.set
        active = list(self.sources)
        reported: set[int] = set()
        cursor = 0  # the next source to serve: rounds continue where the last one stopped
        try:
            while not stop.is_set():
                if max_frames is not None and self.frames_out >= max_frames:
                    break
                # 1. one frame per source per round, in cyclic order: when the engine fills up mid-round,
                # the next round starts at the first source not yet asked, so none is passed over twice
                submitted = False
                n = len(active)
                for _ in range(n):
                    if self.engine.in_flight >= self._capacity():
                        break
                    src = active[cursor % n]
                    cursor = (cursor + 1) % n
                    frame = src.read(timeout=0)
                    if frame is None:
                        continue
                    try:
                        self.engine.submit(frame.image, (src, frame))
                        submitted = True
                    except InferenceError as exc:
                        log.warning("%s: frame %d skipped (%s)", src.id, frame.index, exc)
                # 2. hand out what is done (in order); block on the oldest only when the engine is full
                while self.engine.in_flight and (self.engine.ready() or self.engine.in_flight >= self._capacity()):
                    fr = self._collect()
                    if fr is not None:
                        yield fr
                        if max_frames is not None and self.frames_out >= max_frames:
                            return
                # 3. retire sources that ended
                for src in list(active):
                    if src.ended:
                        if active.index(src) < cursor:
                            cursor -= 1  # keep pointing at the same next source
                        active.remove(src)
                        cursor = cursor % len(active) if active else 0
                        if src.error is not None and id(src) not in reported:
                            reported.add(id(src))
                            self.errors.append(src.error)
                            log.error("source %s stopped: %s", src.id, src.error)
                if not active:
                    while self.engine.in_flight:
                        fr = self._collect()
                        if fr is not None:
                            yield fr
                    break
                # 4. nothing new: wait for a frame or for the oldest result
                if not submitted:
                    if self.engine.in_flight:
                        # the oldest request finishes within one inference time; polling keeps new
                        # frames of other sources flowing in meanwhile
                        wake.wait(0.003)
                        wake.clear()
                    else:
                        wake.wait(0.05)
                        wake.clear()
            if self.own_sources and self.errors and len(self.errors) == len(self.sources) and not stop.is_set():
                raise self.errors[0]
        finally:
            self.close()

    def _collect(self) -> FrameResult | None:
        try:
            _, results, (src, frame) = self.engine.get()
        except InferenceError as exc:
            log.warning("inference failed on a frame (%s)", exc)
            return None
        return self._finish(src, frame, results)

    def _finish(self, src: FrameSource, frame: Frame, results: Results) -> FrameResult:
        now = time.monotonic()
        fps = self._rates[id(src)].tick(now)
        info = None
        if self.analytics is not None:
            results, info = self.analytics.process(src, frame, results)
        annotated = None
        if self.annotator is not None:
            overlay: dict[str, object] | None = None
            if self.overlay:
                overlay = {"fps": round(fps, 1), "latency_ms": (now - frame.captured_at) * 1000}
                if len(self.sources) > 1:
                    overlay = {"source": src.id, **overlay}
            annotated = self.annotator.annotate(frame.image, results, overlay, scene=info.scene if info else None)
        latency_ms = (time.monotonic() - frame.captured_at) * 1000.0
        fr = FrameResult(frame, results, annotated, fps, latency_ms, info)
        for sink in self.sinks:
            if id(sink) in self._bad_sinks or not sink.accepts(src.id):
                continue
            try:
                sink.write(fr)
            except Exception as exc:  # noqa: BLE001 - one broken output must not stop the stream
                self._bad_sinks.add(id(sink))
                log.error("sink %s disabled after an error: %s", type(sink).__name__, exc)
        if self.metrics is not None:
            self.metrics.observe(src, fr)
        self.frames_out += 1
        return fr

    def close(self) -> None:
        """Stop sources (when owned), discard in-flight frames, close every sink. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.own_sources:
            for s in self.sources:
                try:
                    s.close()
                except Exception as exc:  # noqa: BLE001
                    log.warning("closing source %s: %s", s.id, exc)
        try:
            while self.engine.in_flight:
                try:
                    self.engine.get()
                except InferenceError:
                    pass
        except LookupError:
            pass
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # noqa: BLE001
                log.error("closing sink %s: %s", type(sink).__name__, exc)
        if self.metrics is not None:
            for s in self.sources:
                self.metrics.source_closed(s)


__all__ = ["FrameResult", "Pipeline", "SourceError"]
