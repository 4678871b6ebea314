"""The running set of sources of the headless mode, and live reload: apply an edited config without a restart.

Each source becomes a `SourcePlan`: everything that decides how it runs (URL, thresholds, model, outputs),
resolved against the global settings. Sources sharing a model and its graph settings (device, rect, hint)
share one `Lane`: an AsyncEngine and a Pipeline on its own thread; thresholds and class filters are per
source within a lane. `Supervisor.apply(plans)` compares the new plans with the running ones by key (the
source's name, else its URL): added ones start, removed ones stop (their in-flight frames still delivered,
then their outputs finalised), changed ones restart, and the others are not touched at all: same Source
object, same reader thread, same sinks, no frame lost.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from yolovino.inference.analytics.config import AnalyticsConfig
from yolovino.inference.analytics.stage import Analytics
from yolovino.inference.core.config import InferenceConfig
from yolovino.inference.core.errors import InferenceError, SourceError
from yolovino.inference.core.redact import safe_name
from yolovino.inference.core.results import FrameResult
from yolovino.inference.draw.annotate import Annotator
from yolovino.inference.model.engine import AsyncEngine
from yolovino.inference.model.ir import YoloModel
from yolovino.inference.model.motion import MotionGate
from yolovino.inference.model.stride import StridedEngine
from yolovino.inference.outputs.base import Sink
from yolovino.inference.outputs.clips import ClipRecorder
from yolovino.inference.outputs.jsonl import JsonlSink
from yolovino.inference.outputs.recording import Retention
from yolovino.inference.outputs.registry import OutputRequest, open_outputs
from yolovino.inference.outputs.rtsp_server import RtspServer
from yolovino.inference.pipeline import Pipeline, frame_time
from yolovino.inference.service.metrics import Metrics
from yolovino.inference.service.settings import DEFAULT_STALL_TIMEOUT
from yolovino.inference.sources import Source, open_source, output_fps

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourcePlan:
    """How one source runs, fully resolved; two equal plans run identically."""

    key: str
    url: str
    name: str | None
    live: bool | None
    model: Path
    config: InferenceConfig
    output: str | None = None
    save: str | None = None
    jsonl: str | None = None
    record: Path | None = None  # folder of its segments
    record_url: str | None = None  # the main stream, recorded by copy (the detector decodes `url`)
    serve: bool = False
    stall_timeout: float = DEFAULT_STALL_TIMEOUT
    analytics: AnalyticsConfig | None = field(default=None, compare=True, hash=False)

    @property
    def lane_key(self) -> tuple:
        return (str(self.model), self.config.graph_key())


@dataclass
class Outputs:
    """Process-wide outputs shared by every source: the RTSP server, recording settings, one JSON-lines log."""

    server: RtspServer | None = None
    segment_seconds: float = 60.0
    retention: Retention | None = None
    record_mode: str = "auto"  # copy | annotated | auto (settings.RecordSettings)
    jsonl: JsonlSink | None = None
    output_fps: float | None = None
    annotate: bool = True


@dataclass(frozen=True)
class RunOptions:
    """How the supervisor opens sources and runs lanes (not outputs: the same for every source)."""

    wait_for_sources: bool = False  # a source down at start keeps retrying instead of failing the start
    max_retries: int | None = None  # reconnects before a source gives up (None: forever)
    max_frames: int | None = None  # per lane (exact with one lane; the caller stops at its total)


class Lane:
    """One engine and its pipeline thread, serving every source planned with the same model and graph."""

    def __init__(
        self,
        model: YoloModel,
        metrics: Metrics,
        outputs: Outputs,
        on_frame: Callable[[FrameResult], None],
        max_frames: int | None = None,
    ):
        self.engine = AsyncEngine(model)
        self.strided = StridedEngine(self.engine, {}, frame_time)  # every Nth frame, motion gates (analytics)
        global_sinks: list[Sink] = [outputs.jsonl] if outputs.jsonl is not None else []
        annotator = Annotator() if outputs.annotate else None
        # nothing here looks at fr.annotated: draw only for sources whose outputs show pictures
        self.pipe = Pipeline(
            self.strided, [], global_sinks, annotator, metrics=metrics, dynamic=True, draw_for_sinks=True
        )
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._on_frame = on_frame
        self._max_frames = max_frames
        self.thread = threading.Thread(target=self._run, name=f"lane:{model.path.name}", daemon=True)

    def _run(self) -> None:
        try:
            for fr in self.pipe.run(self.stop, max_frames=self._max_frames):
                self._on_frame(fr)
        except BaseException as exc:  # noqa: BLE001 - reported by the supervisor
            self.error = exc
            log.error("pipeline stopped: %s", exc)

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=30)
        self.pipe.close()
        self.engine.close()


@dataclass
class _Running:
    plan: SourcePlan
    source: Source
    lane: Lane


class Supervisor:
    """Starts, stops and restarts sources as their plans change; see the module docstring."""

    def __init__(
        self,
        metrics: Metrics,
        outputs: Outputs,
        on_frame: Callable[[FrameResult], None],
        options: RunOptions | None = None,
    ):
        self.metrics, self.outputs, self._on_frame = metrics, outputs, on_frame
        self.options = options or RunOptions()
        self.lanes: dict[tuple, Lane] = {}
        self.running: dict[str, _Running] = {}
        self._models: dict[tuple, YoloModel] = {}
        self._errors: list[BaseException] = []  # of lanes already closed
        self._lock = threading.Lock()
        self.analytics: Analytics | None = None  # one stage for every lane, made with the first source using it

    # -- queries ------------------------------------------------------------------------------------
    def engines(self) -> list[AsyncEngine]:
        return [lane.engine for lane in list(self.lanes.values())]

    def sources(self) -> list[Source]:
        return [r.source for r in self.running.values()]

    def stall_timeouts(self) -> dict[str, float]:
        """Each running source's stall timeout, by source id (what /healthz reads)."""
        return {r.source.id: r.plan.stall_timeout for r in self.running.values()}

    def all_ended(self) -> bool:
        """Every lane has finished: all its sources ended and their last frames were delivered."""
        return all(lane.thread.ident is not None and not lane.thread.is_alive() for lane in self.lanes.values())

    def lane_errors(self) -> list[BaseException]:
        """Why pipelines gave up (every source of their lane failed), closed lanes included."""
        return self._errors + [lane.error for lane in self.lanes.values() if lane.error is not None]

    # -- changes ------------------------------------------------------------------------------------
    def apply(self, plans: list[SourcePlan], strict: bool = False) -> dict[str, list[str]]:
        """Make the running sources match `plans`. strict=True (at start): a source that cannot open
        raises; otherwise (a reload) it is logged and left out while the others go on."""
        with self._lock:
            new = {p.key: p for p in plans}
            removed = [k for k in self.running if k not in new]
            changed = [k for k in self.running if k in new and new[k] != self.running[k].plan]
            added = [k for k in new if k not in self.running]
            # stop first (a changed source restarts under the same name, and outputs keep their paths)
            gone = [self.running[k].source.id for k in removed]
            waits = [(k, self._stop(k)) for k in removed + changed]
            for k, done in waits:
                if not done.wait(30):
                    log.warning("source %s: outputs not finalised within 30 s", safe_name(k))
            hub = self.analytics.hub if self.analytics is not None else None
            if hub is not None:
                for sid in gone:  # its last events sent, then its Home Assistant entities removed
                    hub.remove_source(sid)
            failed = []
            for k in changed + added:
                try:
                    self._start(new[k])
                except InferenceError as exc:
                    if strict:
                        raise
                    failed.append(k)
                    log.error("source %s not started: %s", safe_name(k), exc)
            self._drop_idle_lanes()
            kept = [k for k in new if k not in changed and k not in added]
            return {"added": added, "removed": removed, "changed": changed, "kept": kept, "failed": failed}

    def _lane(self, plan: SourcePlan, fresh: bool = False) -> Lane:
        lane = self.lanes.get(plan.lane_key)
        if lane is None or fresh:
            if lane is not None:
                self._close_lane(lane)
            model = self._models.get(plan.lane_key)
            if model is None:
                model = self._models[plan.lane_key] = YoloModel.load(plan.model, plan.config)
                log.info("model %s (%s, %s, %s)", plan.model, model.meta.task, model.meta.precision, plan.config.device)
            lane = self.lanes[plan.lane_key] = Lane(
                model, self.metrics, self.outputs, self._on_frame, self.options.max_frames
            )
            lane.pipe.analytics = self.analytics
        return lane

    def _analytics_for(self, src: Source, plan: SourcePlan, lane: Lane, sinks: list[Sink]) -> None:
        """Tracking, zones and events for this source (the shared stage, its event outputs, its stride,
        its event clips: the sink that marks events, attached to the hub)."""
        cfg = plan.analytics
        if cfg is None:
            if self.analytics is not None and self.analytics.hub is not None:  # a reload turned them off
                self.analytics.hub.remove_source(src.id)
            return
        if self.analytics is None:
            from yolovino.inference.analytics.metrics import register_analytics
            from yolovino.inference.notify.hub import EventHub

            self.analytics = Analytics({}, hub=EventHub())
            register_analytics(self.analytics, self.metrics.registry)
            for each in self.lanes.values():
                each.pipe.analytics = self.analytics
        if self.analytics.hub is not None:
            self.analytics.hub.add_source(src.id, cfg.events)
            clips = next((s for s in sinks if isinstance(s, ClipRecorder)), None)
            self.analytics.hub.attach_clips(src.id, clips)
        self.analytics.configure(src.id, cfg)
        lane.strided.set_stride(src.id, cfg.detect_every)
        motion = cfg.motion_for(bool(src.live))
        tracks = functools.partial(self.analytics.track_needs, src.id)  # how often its tracks need it
        lane.strided.set_gate(src.id, None if motion is None else MotionGate(motion, tracks=tracks))

    def _start(self, plan: SourcePlan) -> None:
        opts = self.options
        lane = self._lane(plan)
        with contextlib.ExitStack() as stack:  # a sink that fails to open closes what was opened before it
            src = open_source(
                plan.url, live=plan.live, name=plan.name, wait=opts.wait_for_sources, max_retries=opts.max_retries
            )
            stack.callback(src.close)
            sinks = self._sinks(plan, src, stack)
            stack.pop_all()
        if lane.thread.ident is not None and not lane.thread.is_alive():  # ended: its sources all ended
            lane = self._lane(plan, fresh=True)
        self._analytics_for(src, plan, lane, sinks)
        if not lane.pipe.add_source(src, sinks, plan.config):  # that lane ended meanwhile
            lane = self._lane(plan, fresh=True)
            self._analytics_for(src, plan, lane, sinks)
            lane.pipe.add_source(src, sinks, plan.config)
        if lane.thread.ident is None:
            lane.thread.start()
        self.running[plan.key] = _Running(plan, src, lane)
        if src.stats.state == "reconnecting":
            log.warning("source %s not reachable yet (%s); retrying in the background", src.id, src.stats.last_error)
        else:
            log.info("source %s opened (%s)", src.id, "live, keep-latest" if src.live else "file")

    def _sinks(self, plan: SourcePlan, src: Source, stack: contextlib.ExitStack) -> list[Sink]:
        """The source's outputs: every kind registered in `outputs.registry` opens what the plan asks for;
        each is closed by `stack` if a later one (or the start) fails."""
        fps = self.outputs.output_fps or output_fps(src)
        request = OutputRequest(plan, self.outputs, src.id, fps, src)
        return open_outputs(request, lambda sink: stack.callback(sink.close))

    def _stop(self, key: str) -> threading.Event:
        r = self.running.pop(key)
        done = r.lane.pipe.remove_source(r.source)  # already set when the lane ended (all closed then)
        if self.analytics is not None and r.plan.analytics is not None:
            done.wait(30)  # its last frames went through the stage: end its tracks
            self.analytics.configure(r.source.id, None)
            if self.analytics.hub is not None:
                self.analytics.hub.attach_clips(r.source.id, None)  # its clips were finished with its sinks
        r.lane.strided.set_gate(r.source.id, None)
        return done

    def _drop_idle_lanes(self) -> None:
        used = {r.plan.lane_key for r in self.running.values()}
        for key in [k for k in self.lanes if k not in used]:
            self._close_lane(self.lanes.pop(key))

    def _close_lane(self, lane: Lane) -> None:
        lane.close()
        if lane.error is not None:
            self._errors.append(lane.error)

    def close(self) -> None:
        """Stop every lane: in-flight frames are discarded, every output finalised. Idempotent."""
        with self._lock:
            for lane in self.lanes.values():
                lane.stop.set()
            for lane in self.lanes.values():
                self._close_lane(lane)
            self.lanes.clear()
            for r in self.running.values():
                r.source.close()
            if self.analytics is not None:
                self.analytics.close()  # ends live tracks, flushes the event outputs


__all__ = ["Lane", "Outputs", "RunOptions", "SourcePlan", "SourceError", "Supervisor"]
