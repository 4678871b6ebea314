"""One browser tab's state and its live flows (sample clip / URL stream, browser webcam), and the store of tabs.

Every frame goes through `inference.pipeline.Pipeline`. Each tab gets its own `Session` (model choice,
thresholds, stop flag, output folder), looked up by Gradio's session hash in a `SessionStore` owned by the
Blocks app: no module-level mutable state. Uploads are in `ui.uploads`, page formatting in `ui.view`.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import numpy as np

from yolovino.inference.analytics.stage import Analytics
from yolovino.inference.core.errors import InferenceError, SourceError
from yolovino.inference.core.media import is_url
from yolovino.inference.core.redact import one_line, redact
from yolovino.inference.core.results import Frame
from yolovino.inference.model.engine import AsyncEngine
from yolovino.inference.model.stride import StridedEngine
from yolovino.inference.pipeline import Pipeline, frame_time
from yolovino.inference.sources import SourceStats, open_source
from yolovino.ui.analytics_state import AnalyticsState
from yolovino.ui.catalog import Catalog, ModelEntry
from yolovino.ui.context import UIContext, UserFacingError
from yolovino.ui.uploads import process_upload
from yolovino.ui.view import Update, annotator, throttled, update_for

log = logging.getLogger(__name__)


class Session:
    """One browser tab: its model choice, thresholds, the run in progress and its output folder."""

    def __init__(self, ctx: UIContext, sid: str = "local"):
        self.ctx, self.sid = ctx, sid
        self.config = ctx.config
        self.model_name: str | None = None
        self.precision: str | None = None
        self.version = 0  # bumped when the network or graph must change (model, precision, rect, device)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._engines: list[AsyncEngine] = []  # engines of runs in progress, for live threshold changes
        # (version, engine, its motion-gate wrapper) of the webcam's runs, and what that wrapper is attached with
        self._webcam: tuple[int, AsyncEngine, StridedEngine] | None = None
        self._cam_gated: tuple[StridedEngine, Analytics | None] | None = None
        self._cam_last: float | None = None
        self._cam_fps = 0.0
        self._cam_busy = threading.Lock()
        self._cam_n = -1
        self._out_dir: Path | None = None
        self.analytics = AnalyticsState()  # tracking on/off, zones, lines, counts, event log (ui/analytics_state.py)
        self._cam_analytics: Analytics | None = None

    # --- choices -------------------------------------------------------------------------------------
    def select(self, name: str | None, precision: str | None, catalog: Catalog | None = None) -> ModelEntry:
        catalog = catalog or self.ctx.catalog()
        entry = catalog.get(name)
        if precision not in entry.variants:
            precision = entry.default_precision()
        with self._lock:
            if (name, precision) != (self.model_name, self.precision):
                self.model_name, self.precision = name, precision
                self.version += 1
        return entry

    def set_thresholds(
        self, conf: float, iou: float, class_ids: tuple[int, ...] | None, rect: bool, device: str | None = None
    ) -> None:
        """conf/iou/classes apply to running streams from the next frame; rect or device rebuilds the graph."""
        new = self.config.with_(
            conf=float(conf), iou=float(iou), classes=class_ids, rect=bool(rect), device=device or self.config.device
        )
        with self._lock:
            graph_changed = new.graph_key() != self.config.graph_key()
            self.config = new
            if graph_changed:
                self.version += 1
            engines = list(self._engines)
        if not graph_changed:
            for engine in engines:
                engine.set_config(new)

    def load(self):
        """The YoloModel for the current choice with this session's thresholds (shared cache)."""
        if self.model_name is None:
            catalog = self.ctx.catalog()
            self.select(catalog.default_model(), None, catalog)
        variant = self.ctx.catalog().variant(self.model_name, self.precision)
        return self.ctx.cache.get(variant.xml, self.config), variant

    def _switched(self, version: int) -> bool:
        """The model, precision or graph changed since `version`: the running pipeline must be rebuilt."""
        return self.version != version

    def label(self, variant) -> str:
        return f"{self.model_name} {self.precision} ({variant.meta.task})"

    # --- runs ----------------------------------------------------------------------------------------
    def begin_run(self) -> threading.Event:
        """Stop whatever this tab was running and hand out a fresh stop flag."""
        with self._lock:
            self._stop.set()
            self._stop = threading.Event()
            return self._stop

    def stop(self) -> None:
        with self._lock:
            self._stop.set()
        self._cam_last = None

    @contextlib.contextmanager
    def tracked(self, engine: AsyncEngine) -> Iterator[AsyncEngine]:
        """Register a run's engine for live threshold changes while it runs; close it afterwards."""
        with self._lock:
            self._engines.append(engine)
        try:
            yield engine
        finally:
            with self._lock:
                if engine in self._engines:
                    self._engines.remove(engine)
            engine.close()

    def out_dir(self) -> Path:
        if self._out_dir is None:
            self.ctx.tmp_root.mkdir(parents=True, exist_ok=True)
            self._out_dir = Path(tempfile.mkdtemp(prefix="session-", dir=self.ctx.tmp_root))
        return self._out_dir

    def close(self) -> None:
        self.stop()
        with self._lock:
            cam, self._webcam = self._webcam, None
        if cam is not None:
            self.analytics.detach(cam[2])
            cam[1].close()
        self.analytics.finish(self._cam_analytics)
        self._cam_analytics = None
        if self._out_dir is not None:
            shutil.rmtree(self._out_dir, ignore_errors=True)
            self._out_dir = None

    # --- live stream (sample clip or URL) ------------------------------------------------------------
    def stream(self, source_text: str) -> Iterator[Update]:
        """Annotated frames of a sample clip or URL until it ends or Stop is pressed (model changes apply live)."""
        stop = self.begin_run()
        spec = self.ctx.resolve_source(source_text)
        url = is_url(spec)
        shown = redact(spec) if url else Path(spec).name  # no passwords
        self.load()  # "no models yet" is reported before anything is opened
        yield Update(status=f"Opening {shown} ...")
        try:
            # files: every frame, at inference speed; URLs: keep-latest (stale frames dropped)
            # a URL opens only itself: no redirect or playlist leads FFmpeg off the allow-list
            source = open_source(spec, live=None if url else False, pinned=url)
        except InferenceError as exc:
            raise UserFacingError(f"Cannot open {shown}: {one_line(exc)}") from None
        analytics = self.analytics.open(self.load()[0].names)  # tracks and counts go on across model switches
        try:
            # One Pipeline per model choice on the same open source (own_sources=False): a model,
            # precision, rect or device change ends the current Pipeline and the next one goes on from there.
            while not stop.is_set():
                model, variant = self.load()
                version = self.version
                with self.tracked(AsyncEngine(model)) as engine:
                    # the motion gate (and its drawing) of this tab's analytics, if on, sits in front of the engine
                    strided = StridedEngine(engine, 1, frame_time)
                    pipeline = Pipeline(
                        strided, [source], annotator=annotator(), own_sources=False, analytics=analytics
                    )
                    self.analytics.attach(strided, source.id, analytics)
                    yield Update(status=f"Running {self.label(variant)} on {shown}")
                    run = pipeline.run(stop)
                    try:
                        yield from throttled(run, self.label(variant), partial(self._switched, version))
                    finally:
                        run.close()
                        self.analytics.detach(strided)
                if self.version == version:  # not a model switch: the source ended or Stop was pressed
                    break
            if stop.is_set():
                yield Update(status="Stopped.")
            elif source.error is not None:
                yield Update(status=f"Stream stopped: {one_line(source.error)}")
            else:
                yield Update(status=f"End of {shown}.")
        finally:
            source.close()
            self.analytics.finish(analytics)

    # --- webcam (one frame per call from the browser) ------------------------------------------------
    def webcam_frame(self, rgb: np.ndarray | None) -> Update:
        if rgb is None:
            return Update()
        if not self._cam_busy.acquire(blocking=False):  # previous frame still running: drop this one
            return Update()
        try:
            return self._webcam_frame(rgb)
        finally:
            self._cam_busy.release()

    def _webcam_frame(self, rgb: np.ndarray) -> Update:
        model, variant = self.load()
        with self._lock:
            cam = self._webcam
            if cam is None or cam[0] != self.version:
                if cam is not None:
                    self.analytics.detach(cam[2])
                    cam[1].close()
                base = AsyncEngine(model)
                cam = self._webcam = (self.version, base, StridedEngine(base, 1, frame_time))
        engine, strided = cam[1], cam[2]
        if engine.config != self.config:  # thresholds changed since the last webcam frame
            engine.set_config(self.config)
        self._cam_n += 1
        frame = Frame(np.ascontiguousarray(rgb[..., ::-1]), self._cam_n, "webcam", None, time.monotonic())
        now = time.perf_counter()
        if self._cam_last is not None:
            dt = max(now - self._cam_last, 1e-3)
            self._cam_fps = 1.0 / dt if self._cam_fps == 0 else 0.8 * self._cam_fps + 0.2 / dt
        self._cam_last = now
        fr = None
        # no in-image FPS overlay: a one-frame pipeline run cannot know the camera's rate (stats has it)
        if self._cam_analytics is None:  # one analytics stage for the whole webcam session
            self._cam_analytics = self.analytics.open(model.names)
        if self._cam_gated != (strided, self._cam_analytics):  # the motion gate follows the webcam's frames
            self.analytics.detach(strided)
            self.analytics.attach(strided, frame.source_id, self._cam_analytics)
            self._cam_gated = (strided, self._cam_analytics)
        pipeline = Pipeline(
            strided, [OneFrameSource(frame)], annotator=annotator(overlay=False), analytics=self._cam_analytics
        )
        for fr in pipeline.run(None, max_frames=1):
            pass
        if fr is None:
            return Update(status="Webcam frame was dropped.")
        return update_for(fr, self.label(variant), fps=self._cam_fps)

    # --- uploads: whole file -> annotated mp4 + JSON lines ------------------------------------------
    def process_upload(self, path: str | None, progress: Callable | None = None) -> Iterator[Update]:
        return process_upload(self, path, progress)


class SessionStore:
    """Sessions by Gradio session hash; owned by one Blocks app (not a module global)."""

    def __init__(self, ctx: UIContext, capacity: int = 64):
        self.ctx, self.capacity = ctx, capacity
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def get(self, sid: str | None) -> Session:
        sid = sid or "local"
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                if len(self._sessions) >= self.capacity:  # drop the oldest tab's state
                    oldest = next(iter(self._sessions))
                    self._sessions.pop(oldest).close()
                session = self._sessions[sid] = Session(self.ctx, sid)
            return session

    def drop(self, sid: str | None) -> None:
        with self._lock:
            session = self._sessions.pop(sid or "local", None)
        if session is not None:
            session.close()

    def close_all(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for s in sessions:
            s.close()

    def __len__(self) -> int:
        return len(self._sessions)


class OneFrameSource:
    """A FrameSource of exactly one frame: a webcam frame pushed by the browser."""

    fps: float | None = None
    live = True

    def __init__(self, frame: Frame):
        self._frame: Frame | None = frame
        self.id = frame.source_id
        self.error: SourceError | None = None
        self.on_frame: Callable[[], None] | None = None
        self.stats = SourceStats(state="running")

    def read(self, timeout: float | None = None) -> Frame | None:
        frame, self._frame = self._frame, None
        if frame is not None:
            self.stats.frames_read = self.stats.frames_delivered = 1
            self.stats.last_frame_at = frame.captured_at
        return frame

    @property
    def ended(self) -> bool:
        return self._frame is None

    def close(self) -> None:
        self._frame = None
        self.stats.state = "closed"
