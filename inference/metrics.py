"""Prometheus text-format metrics for every source, served by a stdlib HTTP server on 127.0.0.1:PORT.

    metrics = Metrics()
    server = metrics.serve(9100)          # GET /metrics ; server.close() to stop
    Pipeline(..., metrics=metrics)

Per source (label `source`, always a redacted name): frames processed, FPS, latency p50/p95 over the
last 300 frames, frames dropped by keep-latest, reconnects, outages, decode errors (corrupt data the
decoder rejected or concealed), up (1 while frames flow).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from .redact import redact
from .results import FrameResult
from .sources import FrameSource


def _esc(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _SourceMetrics:
    def __init__(self, source: FrameSource):
        self.source = source
        self.name = redact(source.id)
        self.frames = 0
        self.fps = 0.0
        self.latencies: deque[float] = deque(maxlen=300)
        self.detections = 0
        self.last_at: float | None = None
        self.closed = False


class Metrics:
    def __init__(self, stale_after: float = 10.0, registry=None):
        self.registry = registry  # a prometheus_client registry whose metrics are served too (analytics)
        self._lock = threading.Lock()
        self._sources: dict[int, _SourceMetrics] = {}
        self.stale_after = stale_after
        self.started = time.time()

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
            m.last_at = time.monotonic()

    def source_closed(self, source: FrameSource) -> None:
        with self._lock:
            m = self._sources.get(id(source))
            if m is not None:
                m.closed = True

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
        snap = self.snapshot()
        spec = [
            ("yolo_frames_processed_total", "counter", "Frames inferred and delivered", "frames"),
            ("yolo_detections_total", "counter", "Detections emitted", "detections"),
            ("yolo_fps", "gauge", "Output frame rate over the last ~2 s", "fps"),
            ("yolo_frames_dropped_total", "counter", "Stale live frames dropped (keep-latest)", "dropped"),
            ("yolo_reconnects_total", "counter", "Successful reconnects after an outage", "reconnects"),
            ("yolo_outages_total", "counter", "Stream outages detected", "outages"),
            ("yolo_decode_errors_total", "counter", "Corrupt packets or frames from the decoder", "decode_errors"),
            ("yolo_source_up", "gauge", "1 while the source delivers frames", "up"),
        ]
        lines = []
        for name, kind, help_, key in spec:
            lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
            for src, values in snap.items():
                lines.append(f'{name}{{source="{_esc(src)}"}} {values[key]:g}')
        lines += [
            "# HELP yolo_latency_ms Capture-to-result latency over the last 300 frames",
            "# TYPE yolo_latency_ms summary",
        ]
        for src, values in snap.items():
            for q, key in (("0.5", "latency_p50_ms"), ("0.95", "latency_p95_ms")):
                v = values[key]
                lines.append(
                    f'yolo_latency_ms{{source="{_esc(src)}",quantile="{q}"}} {"NaN" if v != v else f"{v:.2f}"}'
                )
        lines.append(f"yolo_uptime_seconds {time.time() - self.started:.1f}")
        extra = ""
        if self.registry is not None:
            from prometheus_client import generate_latest

            extra = generate_latest(self.registry).decode()
        return "\n".join(lines) + "\n" + extra

    def serve(self, port: int, host: str = "127.0.0.1") -> MetricsServer:
        return MetricsServer(self, port, host)


class MetricsServer:
    def __init__(self, metrics: Metrics, port: int, host: str = "127.0.0.1"):
        registry = metrics

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404)
                    return
                body = registry.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd: ThreadingHTTPServer | None = ThreadingHTTPServer((host, int(port)), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}/metrics"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="metrics", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
