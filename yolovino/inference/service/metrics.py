"""Prometheus metrics for every source (prometheus_client), served with a health check over HTTP.

    metrics = Metrics()
    server = metrics.serve(9100, host="127.0.0.1", health=check)   # GET /metrics, /healthz ; server.close()
    Pipeline(..., metrics=metrics)
    metrics.registry.register(MyCollector())                        # more metrics on the same page

Per source (label `source`, always a redacted name): frames processed, detections, the frames the
detector ran on and their share (the rest were carried by the tracker: motion gate, detect_every), FPS,
frames dropped by keep-latest, reconnects, outages, decode errors (corrupt data the decoder rejected or
concealed), up (1 while frames flow), and the capture-to-result latency both as a histogram
(`yolo_latency_seconds`, aggregatable across sources and boxes) and, as before, p50/p95 over the last 300
frames (`yolo_latency_ms{quantile=...}`). The process collectors add CPU, memory, open files.
The text format is prometheus_client's; the metric names of the hand-written exposition are kept.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from yolovino.inference.core.redact import redact
from yolovino.inference.core.results import FrameResult
from yolovino.inference.sources import FrameSource

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)


class _SourceMetrics:
    def __init__(self, source: FrameSource):
        self.source = source
        self.name = redact(source.id)
        self.frames = 0
        self.fps = 0.0
        self.latencies: deque[float] = deque(maxlen=300)
        self.detections = 0
        self.detected = 0  # frames the detector ran on (the others were carried: motion gate, detect_every)
        self.last_at: float | None = None
        self.registered_at = time.monotonic()
        self.closed = False


class Metrics:
    """Per-source counters fed by the pipeline; `registry` is the prometheus_client registry they live in."""

    def __init__(self, stale_after: float = 10.0, registry: CollectorRegistry | None = None):
        self._lock = threading.Lock()
        self._sources: dict[int, _SourceMetrics] = {}
        self.stale_after = stale_after
        self.started = time.time()
        self.registry = registry or CollectorRegistry()
        self.latency = Histogram(
            "yolo_latency_seconds",
            "Capture-to-result latency",
            ["source"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_SourceCollector(self))
        if registry is None:  # the process, platform and GC collectors register once per registry
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.registry.register(collector)

    def register_source(self, source: FrameSource) -> None:
        with self._lock:
            self._sources.setdefault(id(source), _SourceMetrics(source))

    def observe(self, source: FrameSource, fr: FrameResult) -> None:
        with self._lock:
            m = self._sources.get(id(source))
            if m is None:
                m = self._sources[id(source)] = _SourceMetrics(source)
            m.frames += 1
            m.fps = fr.fps
            m.latencies.append(fr.latency_ms)
            m.detections += len(fr.results)
            m.detected += not fr.results.carried
            m.last_at = time.monotonic()
        self.latency.labels(m.name).observe(fr.latency_ms / 1000.0)

    def source_closed(self, source: FrameSource, forget: bool = False) -> None:
        """The source stopped; with `forget` (removed by a reload) its series leave the page."""
        with self._lock:
            m = self._sources.get(id(source))
            if m is None:
                return
            m.closed = True
            if forget:
                del self._sources[id(source)]
                if not any(o.name == m.name for o in self._sources.values()):
                    try:
                        self.latency.remove(m.name)
                    except KeyError:
                        pass

    def sources(self) -> list[tuple[FrameSource, float | None, float, bool]]:
        """(source, monotonic time of its last result or None, registered at, closed) for each source."""
        with self._lock:
            return [(m.source, m.last_at, m.registered_at, m.closed) for m in self._sources.values()]

    def snapshot(self) -> dict[str, dict]:
        out = {}
        now = time.monotonic()
        with self._lock:
            for m in self._sources.values():
                stats = m.source.stats
                lat = np.asarray(m.latencies, np.float64)
                fresh = m.last_at is not None and now - m.last_at < self.stale_after
                out[m.name] = {
                    "frames": m.frames,
                    "detections": m.detections,
                    "detector_frames": m.detected,
                    "detector_share": m.detected / m.frames if m.frames else 0.0,
                    "fps": m.fps if fresh else 0.0,
                    "latency_p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
                    "latency_p95_ms": float(np.percentile(lat, 95)) if lat.size else float("nan"),
                    "dropped": stats.frames_dropped,
                    "reconnects": stats.reconnects,
                    "outages": stats.outages,
                    "decode_errors": stats.decode_errors,
                    # up: the source says running AND frames actually came out recently (a stalled
                    # stream the reader has not noticed yet reads as down too)
                    "up": int(stats.up and not m.closed and (fresh or m.last_at is None)),
                }
        return out

    def render(self) -> str:
        """The /metrics page (Prometheus text format 0.0.4)."""
        return generate_latest(self.registry).decode()

    def serve(
        self, port: int, host: str = "127.0.0.1", health: Callable[[], tuple[bool, dict]] | None = None
    ) -> MetricsServer:
        return MetricsServer(self, port, host, health)


_FAMILIES = [
    ("yolo_frames_processed_total", "counter", "Frames inferred and delivered", "frames"),
    ("yolo_detections_total", "counter", "Detections emitted", "detections"),
    (
        "yolo_detector_frames_total",
        "counter",
        "Frames the detector ran on (not motion-gated or strided)",
        "detector_frames",
    ),
    ("yolo_detector_share", "gauge", "Share of the frames processed that the detector ran on", "detector_share"),
    ("yolo_fps", "gauge", "Output frame rate over the last ~2 s", "fps"),
    ("yolo_frames_dropped_total", "counter", "Stale live frames dropped (keep-latest)", "dropped"),
    ("yolo_reconnects_total", "counter", "Successful reconnects after an outage", "reconnects"),
    ("yolo_outages_total", "counter", "Stream outages detected", "outages"),
    ("yolo_decode_errors_total", "counter", "Corrupt packets or frames from the decoder", "decode_errors"),
    ("yolo_source_up", "gauge", "1 while the source delivers frames", "up"),
]


class _SourceCollector(Collector):
    """Reads the per-source numbers at scrape time (the sources' own counters are the truth)."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        snap = self.metrics.snapshot()
        for name, kind, help_, key in _FAMILIES:
            family: Metric
            if kind == "counter":
                family = CounterMetricFamily(name, help_, labels=["source"])
            else:
                family = GaugeMetricFamily(name, help_, labels=["source"])
            for src, values in snap.items():
                family.add_metric([src], values[key])
            yield family
        summary = Metric("yolo_latency_ms", "Capture-to-result latency over the last 300 frames", "summary")
        for src, values in snap.items():
            for q, key in (("0.5", "latency_p50_ms"), ("0.95", "latency_p95_ms")):
                summary.add_sample("yolo_latency_ms", {"source": src, "quantile": q}, values[key])
        yield summary
        yield GaugeMetricFamily("yolo_uptime_seconds", "Seconds since start", value=time.time() - self.metrics.started)


class _BoundedHTTPServer(ThreadingHTTPServer):
    """A thread per connection, but at most `max_connections` at once, so clients that connect and idle cannot
    pile up threads. At the bound, the connection that has waited longest without sending a whole request is
    closed to make room (it is a stuck or hostile client: a scraper sends its request at once), so a flood
    of half-requests cannot lock Prometheus or a liveness probe out; only when every connection is busy
    with a real request does the new one wait, up to `busy_wait` s (real requests end in milliseconds), and
    is closed if none ends by then (a scraper retries). A client that hangs up mid-request is its own
    business: a debug line, not a traceback on stderr (socketserver's default)."""

    daemon_threads = True
    block_on_close = False

    busy_wait = 0.5

    def __init__(self, address, handler, max_connections: int):
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        self._waiting: dict[socket.socket, float] = {}  # connections without a whole request yet, since when
        self._lock = threading.Lock()
        self.evicted = 0
        self.accepted = 0  # connections taken from the listen backlog, served or refused
        super().__init__(address, handler)

    def waiting(self, conn: socket.socket) -> None:
        with self._lock:
            self._waiting[conn] = time.monotonic()

    def requested(self, conn: socket.socket) -> None:
        with self._lock:
            self._waiting.pop(conn, None)

    def _evict_oldest_waiting(self) -> bool:
        with self._lock:
            if not self._waiting:
                return False
            oldest = min(self._waiting, key=self._waiting.__getitem__)
            del self._waiting[oldest]
        self.evicted += 1
        with contextlib.suppress(OSError):
            oldest.shutdown(socket.SHUT_RDWR)  # its handler reads EOF and ends, freeing its slot
        return True

    def process_request(self, request, client_address):
        self.accepted += 1
        acquired = self._slots.acquire(blocking=False)
        while not acquired and self._evict_oldest_waiting():
            acquired = self._slots.acquire(timeout=0.5)
        if not acquired:  # every slot is busy with a real request: one of them ends soon
            acquired = self._slots.acquire(timeout=self.busy_wait)
        if not acquired:
            log.debug("metrics: %s refused, %d requests in progress", client_address, self.max_connections)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.requested(request)
            self._slots.release()

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, socket.timeout)):
            log.debug("metrics: client %s went away (%s)", client_address, type(exc).__name__)
        else:
            log.error("metrics: request from %s failed", client_address, exc_info=True)


class MetricsServer:
    """GET /metrics (Prometheus) and /healthz (200 or 503 with a JSON body) on host:port.

    A connection that sends nothing for `idle_timeout` s is closed, and at most `max_connections` are served
    at once, the longest-waiting half-request making room for a new connection (see _BoundedHTTPServer): a
    scraper needs one, a few people with curl a few more."""

    def __init__(
        self,
        metrics: Metrics,
        port: int,
        host: str = "127.0.0.1",
        health: Callable[[], tuple[bool, dict]] | None = None,
        *,
        idle_timeout: float = 10.0,
        max_connections: int = 32,
    ):
        import json

        class Handler(BaseHTTPRequestHandler):
            timeout = idle_timeout  # a socket timeout on every read and write of the connection

            def setup(self) -> None:
                super().setup()
                cast(_BoundedHTTPServer, self.server).waiting(self.connection)

            def parse_request(self) -> bool:
                ok = super().parse_request()
                if ok:  # the request line and headers are in: a real request, no longer evictable
                    cast(_BoundedHTTPServer, self.server).requested(self.connection)
                return ok

            def do_GET(self):
                path = self.path.split("?")[0]
                if path in ("/metrics", "/"):
                    status, ctype, body = 200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry)
                elif path == "/healthz" and health is not None:
                    ok, detail = health()
                    status, ctype = (200 if ok else 503), "application/json"
                    body = (json.dumps({"healthy": ok, **detail}, indent=1) + "\n").encode()
                else:
                    self.send_error(404)
                    return
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd: _BoundedHTTPServer | None = _BoundedHTTPServer((host, int(port)), Handler, max_connections)
        self.port = self.httpd.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}/metrics"
        self.health_url = f"http://{shown}:{self.port}/healthz"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="metrics", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
