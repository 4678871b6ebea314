"""The video pipeline: sources -> one shared Engine -> annotate -> sinks, yielding FrameResults.

Stable API (the Gradio UI and the headless runner both use exactly this):

    from yolovino.inference.pipeline import Pipeline
    from yolovino.inference.sources import open_source
    from yolovino.inference.draw.annotate import Annotator

    pipe = Pipeline(engine, [open_source(spec)], sinks=[...], annotator=Annotator(),
                    analytics=Analytics(...))   # optional: tracker -> zones -> events (analytics/stage.py)
    for fr in pipe.run(stop):          # stop: threading.Event | None; run(stop, max_frames=N) also works
        fr.frame        # core.results.Frame: image (raw BGR, shared with OpenVINO: do not write to it), index,
                        #   source_id (redacted), pts, captured_at
        fr.results      # core.results.Results in frame pixels
        fr.annotated    # BGR np.ndarray with drawings (a copy), or None when annotator=None (or, with
                        #   draw_for_sinks=True, when none of the source's sinks wants pictures)
        fr.fps          # this source's output frame rate over the last ~2 s
        fr.latency_ms   # capture -> annotated result, milliseconds (includes queueing)
        fr.analytics    # core.events.FrameAnalytics (events, counts, drawing) when an analytics stage is given

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
  * Sources come and go while it runs (live reload): `add_source(src, sinks, config)` and
    `remove_source(src)` may be called from any thread; a removed source's frames already in flight are
    still delivered, then its sinks are closed. `linger=True` keeps `run` going with no source left;
    `dynamic=True` allows starting with none (sources to be added).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Generator, Sequence
from typing import Protocol

from yolovino.inference.core.config import InferenceConfig
from yolovino.inference.core.errors import InferenceError, SourceError
from yolovino.inference.core.events import FrameAnalytics
from yolovino.inference.core.results import Frame, FrameResult, Results
from yolovino.inference.draw.annotate import Annotator
from yolovino.inference.model.engine import Engine
from yolovino.inference.outputs.base import Sink
from yolovino.inference.sources import FrameSource

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


def frame_time(userdata) -> float | None:
    """The stream time of a frame the pipeline submitted, from its userdata (what the analytics stage times
    tracks by): for StridedEngine(..., time_of=frame_time), whose motion gates measure intervals in it."""
    _, frame = userdata
    return frame.pts if frame.pts is not None else frame.captured_at


class ResultsStage(Protocol):
    """What runs between results and annotation (inference.analytics.Analytics: tracker -> zones -> events):
    it may replace the results (track IDs, boxes carried on frames the detector skipped) and returns what
    the annotator draws and the FrameResult carries. Owned by the caller, who closes it."""

    def process(self, source: FrameSource, frame: Frame, results: Results) -> tuple[Results, FrameAnalytics | None]: ...


class Pipeline:
    """Run several sources through one engine; see the module docstring for the contract."""

    def __init__(
        self,
        engine: Engine,
        sources: Sequence[FrameSource],
        sinks: Sequence[Sink] = (),
        annotator: Annotator | None = None,
        *,
        metrics=None,
        overlay: bool = True,
        own_sources: bool = True,
        max_in_flight: int | None = None,
        analytics: ResultsStage | None = None,
        linger: bool = False,
        dynamic: bool = False,
        draw_for_sinks: bool = False,
    ):
        """draw_for_sinks: annotate a frame only when one of its sinks wants pictures (Sink.wants_pictures),
        for callers that never look at `fr.annotated` themselves (the service): a source with only data
        outputs costs no drawing. False (default): every frame is annotated when there is an annotator."""
        if not sources and not linger and not dynamic:
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
        self.linger = linger
        self.draw_for_sinks = draw_for_sinks
        self.frames_out = 0
        self.errors: list[BaseException] = []
        self._rates = {id(s): _Rate() for s in self.sources}
        self._bad_sinks: set[int] = set()
        self._closed = False
        self._ended = False  # run() has decided to end: no source will be added any more
        self._wake = threading.Event()
        self._changes: list[tuple[str, FrameSource, list[Sink], InferenceConfig | None, threading.Event]] = []
        self._changes_lock = threading.Lock()
        self._configs: dict[int, InferenceConfig | None] = {}
        self._sinks_of: dict[int, list[Sink]] = {id(s): [k for k in self.sinks if k.source_id == s.id] for s in sources}
        self._in_flight: dict[int, int] = {}
        self._order: deque[FrameSource] = deque()  # source of each frame in flight, oldest first
        self._leaving: dict[int, tuple[FrameSource, threading.Event]] = {}
        if metrics is not None:
            for s in self.sources:
                metrics.register_source(s)

    def add_source(
        self, source: FrameSource, sinks: Sequence[Sink] = (), config: InferenceConfig | None = None
    ) -> bool:
        """Serve `source` from the next round, with its own sinks (closed when it is removed) and its own
        thresholds/class filter (`config`, whose graph settings must be the engine's). Any thread.
        False when the pipeline has already ended (every source ended): use a new one."""
        return self._request("add", source, list(sinks), config) is not None

    def remove_source(self, source: FrameSource) -> threading.Event:
        """Stop serving `source`; set the returned event once its in-flight frames are delivered and its
        sinks (and, when owned, the source) are closed. Any thread."""
        done = self._request("remove", source, [], None)
        if done is None:  # ended: everything is closed already
            done = threading.Event()
            done.set()
        return done

    def _request(self, op: str, source, sinks, config) -> threading.Event | None:
        done = threading.Event()
        with self._changes_lock:
            if self._ended or self._closed:
                return None
            self._changes.append((op, source, sinks, config, done))
        self._wake.set()
        return done

    def _should_end(self, active: list[FrameSource]) -> bool:
        """No source left and none coming (decided under the lock add_source takes, so none is lost)."""
        if active or self.linger or self._leaving:
            return False
        with self._changes_lock:
            if not self._changes:
                self._ended = True
        return self._ended

    def _apply_changes(self, active: list[FrameSource]) -> None:
        with self._changes_lock:
            changes, self._changes = self._changes, []
        for op, src, sinks, config, done in changes:
            if op == "add":
                self.sources.append(src)
                self.sinks.extend(sinks)
                self._sinks_of[id(src)] = sinks
                self._configs[id(src)] = config
                self._rates[id(src)] = _Rate()
                src.on_frame = self._wake.set
                active.append(src)
                if self.metrics is not None:
                    self.metrics.register_source(src)
                done.set()
            elif src in self.sources:
                if src in active:
                    active.remove(src)
                self._leaving[id(src)] = (src, done)
                self._retire_if_idle(src)
            else:
                done.set()

    def _retire_if_idle(self, src: FrameSource) -> None:
        """Close a removed source's sinks (and the source, when owned) once none of its frames is in flight."""
        if id(src) not in self._leaving or self._in_flight.get(id(src), 0):
            return
        _, done = self._leaving.pop(id(src))
        if self.own_sources:
            try:
                src.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("closing source %s: %s", src.id, exc)
        for sink in self._sinks_of.pop(id(src), []):
            self._close_sink(sink)
            self.sinks.remove(sink)
        self.sources.remove(src)
        if self.metrics is not None:
            self.metrics.source_closed(src, forget=True)
        done.set()

    def _capacity(self) -> int:
        cap = self.engine.capacity
        return min(cap, self.max_in_flight) if self.max_in_flight else cap

    def run(
        self, stop: threading.Event | None = None, max_frames: int | None = None
    ) -> Generator[FrameResult, None, None]:
        stop = stop or threading.Event()
        wake = self._wake
        for s in self.sources:
            s.on_frame = wake.set
        active = list(self.sources)
        reported: set[int] = set()
        cursor = 0  # the next source to serve: rounds continue where the last one stopped
        try:
            while not stop.is_set():
                if max_frames is not None and self.frames_out >= max_frames:
                    break
                if self._changes:
                    self._apply_changes(active)
                    cursor = cursor % len(active) if active else 0
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
                        self.engine.submit(frame, (src, frame), self._configs.get(id(src)), source_id=src.id)
                        self._in_flight[id(src)] = self._in_flight.get(id(src), 0) + 1
                        self._order.append(src)
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
                if self._should_end(active):
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
        # the engine hands frames back in submission order, so the oldest submitted source is this one's
        # (known even when inference failed and the frame's userdata is lost)
        owner = self._order.popleft() if self._order else None
        try:
            _, results, (src, frame) = self.engine.get()
        except InferenceError as exc:
            log.warning("inference failed on a frame (%s)", exc)
            return None
        finally:
            if owner is not None:
                self._in_flight[id(owner)] -= 1
        fr = self._finish(src, frame, results)
        if owner is not None and id(owner) in self._leaving:
            self._retire_if_idle(owner)
        return fr

    def _finish(self, src: FrameSource, frame: Frame, results: Results) -> FrameResult:
        now = time.monotonic()
        fps = self._rates[id(src)].tick(now)
        info = None
        if self.analytics is not None:
            results, info = self.analytics.process(src, frame, results)
        annotated = None
        if self.annotator is not None and (not self.draw_for_sinks or self._pictures_wanted(src)):
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

    def _pictures_wanted(self, src: FrameSource) -> bool:
        bad = self._bad_sinks
        return any(id(k) not in bad and k.accepts(src.id) and k.wants_pictures() for k in self.sinks)

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
            self._close_sink(sink)
        if self.metrics is not None:
            for s in self.sources:
                self.metrics.source_closed(s)
        for _, done in self._leaving.values():
            done.set()

    @staticmethod
    def _close_sink(sink: Sink) -> None:
        try:
            sink.close()
        except Exception as exc:  # noqa: BLE001
            log.error("closing sink %s: %s", type(sink).__name__, exc)


__all__ = ["FrameResult", "Pipeline", "SourceError"]
