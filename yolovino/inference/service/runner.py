"""Headless runner for edge boxes: sources -> engines -> RTSP / mp4 / recordings / JSON-lines outputs, no display.

`yolovino --headless ...` builds a `HeadlessConfig` (plan.py; from the CLI and/or a YAML file) and calls
`run_headless(cfg, stop, reload)`, which starts the process-wide outputs, the metrics/health server and the
supervisor, then watches for the end, a stop, or a reload.
Multi-camera YAML (`--config cams.yaml`; schema in service/settings.py, `yolovino config schema`):

    model: models/yolov8n/int8        # optional; the CLI --model wins
    conf: 0.3                          # iou, classes ([0, 2] or [person, car]), rect, device, hint
    wait_for_sources: true             # cameras down at start are retried instead of failing
    metrics: {host: 127.0.0.1, port: 9100}      # /metrics (Prometheus) and /healthz
    stall_timeout: 10                  # /healthz: a source without a result for this long is stalled
    serve: {host: 127.0.0.1, port: 8554}        # built-in RTSP server: rtsp://host:port/<name>
    record: {dir: /data/rec, segment_seconds: 60, max_age_hours: 72, max_size_mb: 20000}
    sources:
      - url: rtsp://admin:${DOOR_PW}@10.0.0.5/stream1   # ${VAR}: from the environment
        name: door                     # label in logs/metrics, path on the built-in server
        conf: 0.4                      # per source: conf, iou, classes, rect, model, device, live
        output: rtsp://127.0.0.1:8554/door   # outputs: output (publish), save, jsonl, record, serve
        save: door.mp4
        jsonl: door.jsonl
        record: true
        analytics:                     # tracking, zones, lines, events (analytics/config.py)
          lines: [{name: gate, points: [[0.0, 0.6], [1.0, 0.6]], classes: [person]}]
          events: {jsonl: door-events.jsonl}
      - url: /data/clip.mp4

With several sources, the global --output/--save/--jsonl apply to each source with the source's name
appended (out.mp4 -> out-door.mp4, rtsp://host/out -> rtsp://host/out-door); one --jsonl file takes
every source's lines (each line carries its source_id).

Live reload: setting the `reload` event (SIGHUP in yolovino.app, or the config file changing with
`watch_config`) rebuilds the config through `cfg.rebuild` and applies it (service/supervisor.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from pathlib import Path

from yolovino.inference.core.errors import InferenceError
from yolovino.inference.core.media import is_loopback
from yolovino.inference.core.redact import redact
from yolovino.inference.outputs.jsonl import JsonlSink
from yolovino.inference.service.health import HealthCheck
from yolovino.inference.service.metrics import Metrics
from yolovino.inference.service.plan import HeadlessConfig, plan_sources, with_recording
from yolovino.inference.service.settings import ConfigError
from yolovino.inference.service.supervisor import Outputs, RunOptions, Supervisor

log = logging.getLogger(__name__)


def _start_ops(cfg: HeadlessConfig, stack: contextlib.ExitStack, metrics: Metrics, sup: Supervisor):
    """The RTSP server (before sources, which mount on it) and the metrics/health server."""
    health = HealthCheck(metrics, sup.engines, cfg.infer_timeout, cfg.stall_timeout)
    if cfg.metrics_port is not None:
        try:
            server = metrics.serve(cfg.metrics_port, cfg.metrics_host, health=health)
        except OSError as exc:
            raise ConfigError(f"metrics port {cfg.metrics_port}: {exc.strerror or exc}") from None
        stack.callback(server.close)
        log.info("metrics on %s, health on %s", server.url, server.health_url)
        if not is_loopback(cfg.metrics_host):  # fine for a Prometheus elsewhere, but never silently
            log.warning(
                "metrics on %s are open to anyone who can reach this address (no login): camera names, counts "
                "and health; bind 127.0.0.1 and scrape through a proxy or firewall it",
                cfg.metrics_host,
            )
    return health


def _outputs(cfg: HeadlessConfig, stack: contextlib.ExitStack) -> Outputs:
    out = Outputs(output_fps=cfg.output_fps, annotate=cfg.annotate)
    if cfg.serve is not None:
        from yolovino.inference.outputs.rtsp_server import RtspServer

        out.server = RtspServer(cfg.serve.host, cfg.serve.port, auth=cfg.serve_auth)
        stack.callback(out.server.close)
    with_recording(out, cfg.record)
    if cfg.jsonl:
        out.jsonl = JsonlSink(cfg.jsonl)
        stack.callback(out.jsonl.close)
    return out


class _Counter:
    """Frames out per source (called from the lanes' threads); sets `stop` at max_frames."""

    def __init__(self, stop: threading.Event, max_frames: int | None):
        self.counts: dict[str, int] = {}
        self.total = 0
        self.stop, self.max_frames = stop, max_frames
        self.loading = time.monotonic()
        self._lock = threading.Lock()

    def __call__(self, fr) -> None:
        with self._lock:
            if not self.total:  # how long a start takes (model load, compile or cache import, first frame)
                log.info("first result after %.2f s", time.monotonic() - self.loading)
            self.counts[fr.source_id] = self.counts.get(fr.source_id, 0) + 1
            self.total += 1
            if self.max_frames is not None and self.total >= self.max_frames:
                self.stop.set()


def run_headless(
    cfg: HeadlessConfig, stop: threading.Event | None = None, reload: threading.Event | None = None
) -> int:
    """Run until every source ends, `stop` is set, or max_frames; returns the process exit code.
    Setting `reload` applies the rebuilt config (see the module docstring)."""
    stop = stop or threading.Event()
    reload = reload or threading.Event()
    plans = plan_sources(cfg)
    counter = _Counter(stop, cfg.max_frames)
    with contextlib.ExitStack() as stack:  # closes, in reverse order, whatever was opened before a failure
        outputs = _outputs(cfg, stack)
        metrics = Metrics()
        running = RunOptions(cfg.wait_for_sources, cfg.max_retries, cfg.max_frames)
        sup = Supervisor(metrics, outputs, counter, running)
        stack.callback(sup.close)
        health = _start_ops(cfg, stack, metrics, sup)
        sup.apply(plans, strict=True)
        health.stall_timeouts = sup.stall_timeouts()
        started = time.monotonic()
        _loop(cfg, sup, metrics, health, stop, reload)
        sup.close()
        elapsed = time.monotonic() - started
    total = counter.total
    log.info(
        "done: %d frames in %.1f s (%.1f fps)%s",
        total,
        elapsed,
        total / max(elapsed, 1e-6),
        " (stopped)" if stop.is_set() else "",
    )
    failed = [s for s in sup.sources() if s.error is not None]
    for s in failed:
        log.error("source %s failed: %s", s.id, s.error)
    if sup.lane_errors():  # a pipeline gave up (every source of its lane failed): logged by the lane
        return 1
    return 1 if failed and len(failed) == len(sup.sources()) and total == 0 else 0


def _mtime(path: Path | None) -> float | None:
    try:
        return os.stat(path).st_mtime if path else None
    except OSError:
        return None


def _loop(cfg, sup: Supervisor, metrics: Metrics, health: HealthCheck, stop, reload) -> None:
    last_report = time.monotonic()
    seen_mtime = _mtime(cfg.config_path)
    while not stop.wait(0.2):
        if cfg.watch_config and _mtime(cfg.config_path) != seen_mtime:
            seen_mtime = _mtime(cfg.config_path)
            log.info("config %s changed", cfg.config_path)
            reload.set()
        if reload.is_set():
            reload.clear()
            cfg = _reload(cfg, sup, health)
        if sup.all_ended():
            break
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


def _reload(cfg: HeadlessConfig, sup: Supervisor, health: HealthCheck) -> HeadlessConfig:
    """Apply the edited config; on any problem keep running as before (one log line)."""
    if cfg.rebuild is None:
        log.warning("reload: no config file to reload (start with --config)")
        return cfg
    try:
        new = cfg.rebuild()
        plans = plan_sources(new)
    except InferenceError as exc:
        log.error("reload: config not applied, still running the previous one (%s)", exc)
        return cfg
    fixed = [
        k
        for k in ("serve", "serve_auth", "record", "metrics_port", "metrics_host", "jsonl")
        if getattr(new, k) != getattr(cfg, k)
    ]
    for k in fixed:  # the running process keeps what it started with
        setattr(new, k, getattr(cfg, k))
    if fixed:
        log.warning("reload: %s changed; these apply at the next start", ", ".join(fixed))
    health.default_stall_timeout, health.infer_timeout = new.stall_timeout, new.infer_timeout
    result = sup.apply(plans)
    health.stall_timeouts = sup.stall_timeouts()
    log.info(
        "reload: %s",
        ", ".join(f"{k} {redact(', '.join(v))}" for k, v in result.items() if v) or "nothing changed",
    )
    return new


__all__ = ["ConfigError", "HeadlessConfig", "run_headless"]
