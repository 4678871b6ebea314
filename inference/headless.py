"""Headless runner for edge boxes: sources -> one engine -> RTSP / mp4 / JSON-lines outputs, no display.

`app.py --headless ...` builds a `HeadlessConfig` (from the CLI and/or a YAML file) and calls
`run_headless(cfg, stop)`. Multi-camera YAML (`--config cams.yaml`):

    model: models/yolov8n/int8        # optional; the CLI --model wins
    conf: 0.3                          # iou, classes ([0, 2] or [person, car]), rect, metrics_port
    wait_for_sources: true             # cameras down at start are retried instead of failing
    sources:
      - url: rtsp://user:pass@10.0.0.5/stream1
        name: door                     # label in logs/metrics (default: the redacted URL)
        output: rtsp://127.0.0.1:8554/door   # optional per-camera outputs
        save: door.mp4
        jsonl: door.jsonl
        analytics:                     # tracking, zones, lines, events (inference/analytics_config.py)
          lines: [{name: gate, points: [[0.0, 0.6], [1.0, 0.6]], classes: [person]}]
          events: {jsonl: door-events.jsonl}
      - url: /data/clip.mp4

With several sources, the global --output/--save/--jsonl apply to each source with the source's name
appended (out.mp4 -> out-door.mp4, rtsp://host/out -> rtsp://host/out-door); one --jsonl file takes
every source's lines (each line carries its source_id).
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .analytics import Analytics
from .analytics_config import AnalyticsConfig, parse_analytics, resolve_classes
from .annotate import Annotator
from .config import InferenceConfig
from .engine import AsyncEngine
from .errors import ConfigError, SourceError
from .metrics import Metrics
from .model import YoloModel
from .pipeline import Pipeline
from .redact import redact
from .sinks import JsonlSink, RtspSink, Sink, VideoFileSink
from .sources import Source, open_source, output_fps
from .stride import StridedEngine

log = logging.getLogger(__name__)


@dataclass
class SourceSpec:
    url: str
    name: str | None = None
    output: str | None = None
    save: str | None = None
    jsonl: str | None = None
    live: bool | None = None
    analytics: AnalyticsConfig | None = None


@dataclass
class HeadlessConfig:
    sources: list[SourceSpec]
    model: Path
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    output: str | None = None
    save: str | None = None
    jsonl: str | None = None
    metrics_port: int | None = None
    annotate: bool = True
    max_frames: int | None = None
    output_fps: float | None = None
    report_every: float = 10.0
    max_retries: int | None = None
    wait_for_sources: bool = False


def load_yaml(path: str | Path) -> dict:
    """A multi-camera YAML file as a dict (ConfigError on any problem)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: unreadable YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'sources' list")
    sources = data.get("sources", [])
    if not isinstance(sources, list):
        raise ConfigError(f"{path}: 'sources' must be a list")
    specs = []
    for i, item in enumerate(sources):
        if isinstance(item, str):
            item = {"url": item}
        if not isinstance(item, dict) or not item.get("url"):
            raise ConfigError(f"{path}: sources[{i}] needs a 'url'")
        unknown = set(item) - {"url", "name", "output", "save", "jsonl", "live", "analytics"}
        if unknown:
            raise ConfigError(f"{path}: sources[{i}] has unknown keys {sorted(unknown)}")
        live = item.get("live")
        analytics = (
            parse_analytics(item["analytics"], f"{path}: sources[{i}].analytics") if "analytics" in item else None
        )
        text = {k: str(v) for k, v in item.items() if k not in ("live", "analytics") and v is not None}
        specs.append(SourceSpec(**text, live=None if live is None else bool(live), analytics=analytics))
    data["sources"] = specs
    return data


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.") or "src"


def _suffixed(target: str, name: str) -> str:
    slug = _slug(name)
    if "://" in target:
        return f"{target.rstrip('/')}-{slug}"
    p = Path(target)
    return str(p.with_name(f"{p.stem}-{slug}{p.suffix}"))


def build_sinks(cfg: HeadlessConfig, sources: list[Source], stack: contextlib.ExitStack) -> list[Sink]:
    """Every output the config asks for; each is closed by `stack` (also when a later one fails to open)."""
    sinks: list[Sink] = []
    multi = len(sources) > 1

    def add(sink: Sink) -> None:
        stack.callback(sink.close)
        sinks.append(sink)

    for spec, src in zip(cfg.sources, sources):
        fps = cfg.output_fps or output_fps(src)
        output = spec.output or (cfg.output and (_suffixed(cfg.output, src.id) if multi else cfg.output))
        save = spec.save or (cfg.save and (_suffixed(cfg.save, src.id) if multi else cfg.save))
        if output:
            add(RtspSink(output, fps, source_id=src.id))
        if save:
            add(VideoFileSink(save, fps, source_id=src.id))
        if spec.jsonl:
            add(JsonlSink(spec.jsonl, source_id=src.id))
    if cfg.jsonl:
        add(JsonlSink(cfg.jsonl))
    return sinks


def open_sources(cfg: HeadlessConfig, stack: contextlib.ExitStack) -> list[Source]:
    """Every configured source, opened (or waiting for its camera); each is closed by `stack`."""
    sources: list[Source] = []
    for spec in cfg.sources:
        src = open_source(
            spec.url, live=spec.live, name=spec.name, wait=cfg.wait_for_sources, max_retries=cfg.max_retries
        )
        stack.callback(src.close)
        sources.append(src)
        if src.stats.state == "reconnecting":
            log.warning("source %s not reachable yet (%s); retrying in the background", src.id, src.stats.last_error)
        else:
            log.info("source %s opened (%s)", src.id, "live, keep-latest" if src.live else "file")
    return sources


def run_headless(cfg: HeadlessConfig, stop: threading.Event | None = None) -> int:
    """Run until every source ends, `stop` is set, or max_frames; returns the process exit code."""
    stop = stop or threading.Event()
    loading = time.monotonic()
    model = YoloModel.load(cfg.model, cfg.inference)
    log.info("model %s (%s, %s, %d classes)", cfg.model, model.meta.task, model.meta.precision, len(model.names))
    per_source = [  # class names checked against the model before anything is opened
        resolve_classes(s.analytics, model.names, f"sources[{i}].analytics") if s.analytics else None
        for i, s in enumerate(cfg.sources)
    ]
    with contextlib.ExitStack() as stack:  # closes, in reverse order, whatever was opened before a failure
        base = stack.enter_context(AsyncEngine(model))
        engine: AsyncEngine | StridedEngine = base
        sources = open_sources(cfg, stack)
        sinks = build_sinks(cfg, sources, stack)
        analytics = open_analytics({src.id: a for src, a in zip(sources, per_source) if a is not None}, stack)
        strides = {src.id: a.detect_every for src, a in zip(sources, per_source) if a is not None}
        if any(n > 1 for n in strides.values()):
            engine = StridedEngine(base, strides)
        metrics = Metrics(registry=analytics_registry(analytics))
        if cfg.metrics_port is not None:
            try:
                server = metrics.serve(cfg.metrics_port)
            except OSError as exc:
                raise ConfigError(f"metrics port {cfg.metrics_port}: {exc.strerror or exc}") from None
            stack.callback(server.close)
            log.info("metrics on %s", server.url)
        annotator = Annotator() if cfg.annotate else None
        pipe = Pipeline(engine, sources, sinks, annotator, metrics=metrics, analytics=analytics)
        return _run(cfg, pipe, metrics, stop, loading)


def open_analytics(configs: dict[str, AnalyticsConfig], stack: contextlib.ExitStack) -> Analytics | None:
    """The analytics stage and its event outputs for the sources that have an `analytics:` block."""
    if not configs:
        return None
    from .event_sinks import EventHub

    hub = EventHub.build({sid: a.events for sid, a in configs.items()})
    analytics = Analytics(configs, hub=hub)
    stack.callback(analytics.close)  # ends live tracks, flushes the event outputs
    return analytics


def analytics_registry(analytics: Analytics | None):
    """A prometheus_client registry with the analytics counters (None without analytics)."""
    if analytics is None:
        return None
    from prometheus_client import CollectorRegistry

    from .analytics_metrics import register_analytics

    registry = CollectorRegistry()
    register_analytics(analytics, registry)
    return registry


def _run(cfg: HeadlessConfig, pipe: Pipeline, metrics: Metrics, stop: threading.Event, loading: float) -> int:
    started = last_report = time.monotonic()
    counts: dict[str, int] = {}
    try:
        for fr in pipe.run(stop, max_frames=cfg.max_frames):
            if not counts:  # how long a start takes (model load, compile or cache import, first frame)
                log.info("first result after %.2f s", time.monotonic() - loading)
            counts[fr.source_id] = counts.get(fr.source_id, 0) + 1
            now = time.monotonic()
            if cfg.report_every and now - last_report >= cfg.report_every:
                last_report = now
                for name, m in metrics.snapshot().items():
                    log.info(
                        "%s: %d frames, %.1f fps, latency p50 %.0f ms, dropped %d, reconnects %d, %s",
                        name,
                        m["frames"],
                        m["fps"],
                        m["latency_p50_ms"],
                        m["dropped"],
                        m["reconnects"],
                        "up" if m["up"] else "DOWN",
                    )
    except SourceError as exc:
        log.error("%s", exc)
        return 1
    finally:
        pipe.close()
    elapsed = time.monotonic() - started
    total = sum(counts.values())
    log.info(
        "done: %d frames in %.1f s (%.1f fps)%s",
        total,
        elapsed,
        total / max(elapsed, 1e-6),
        " (stopped)" if stop.is_set() else "",
    )
    failed = [s for s in pipe.sources if s.error is not None]
    for s in failed:
        log.error("source %s failed: %s", s.id, s.error)
    return 1 if failed and len(failed) == len(pipe.sources) and total == 0 else 0


__all__ = ["ConfigError", "HeadlessConfig", "SourceSpec", "load_yaml", "redact", "run_headless"]
