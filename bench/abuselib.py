"""The abusers of bench/abuse.py, each bounded in count and time and stopped by its owner: the webhook
receiver (well-behaved, or slow with huge answers), the metrics-port flood, the scraper that times /metrics,
RTSP readers (ffmpeg) that stay or connect and drop, and the /proc readings of the service's RSS and CPU.
"""

from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

MiB = 1 << 20


class Hook(ThreadingHTTPServer):
    """The webhook receiver: `mode` "ok" answers 200 at once; "slow" as the docstring says."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, port: int):
        self.mode, self.posts, self.huge, self.late, self.pushed = "ok", 0, 0, 0, 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _HookHandler)
        threading.Thread(target=self.serve_forever, name="hook", daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.shutdown()
        self.server_close()


class _HookHandler(BaseHTTPRequestHandler):
    server: Hook

    def do_POST(self):
        s = self.server
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with s.lock:
            s.posts += 1
            n = s.posts
        if s.mode == "slow" and n % 4 in (0, 1):  # two in a row: a try and its retry
            s.late += 1
            if s.stop.wait(3.0):
                return
        elif s.mode == "slow":
            s.huge += 1
            s.stop.wait(1.0)
            self.send_response(200)
            self.send_header("Content-Length", str(1 << 30))
            self.end_headers()
            chunk, t0, sent = b"x" * (64 * 1024), time.monotonic(), 0
            try:
                while sent < 16 * MiB and time.monotonic() - t0 < 10 and not s.stop.is_set():
                    self.wfile.write(chunk)
                    sent += len(chunk)
            except OSError:
                pass  # the service hung up: what it should do after 64 KiB
            with s.lock:
                s.pushed += sent
            self.close_connection = True
            return
        try:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        except OSError:
            pass  # a late answer: the service gave up on it (timeout_s)

    def log_message(self, *args):
        pass


class Flood:
    """`n` threads abusing the metrics port (see the docstring); counts what the server did with them."""

    def __init__(self, port: int, n: int, total: int = 20000):
        self.port, self.left, self.stop, self.lock = port, total, threading.Event(), threading.Lock()
        keys = ("connections", "hung_up", "refused_at_cap", "idle_closed", "still_open", "connect_failed")
        self.counts = dict.fromkeys(keys, 0)
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(n)]
        for t in self.threads:
            t.start()

    def _count(self, key: str) -> None:
        with self.lock:
            self.counts[key] += 1

    def _run(self, i: int) -> None:
        idle = bool(i % 2)
        while not self.stop.is_set():
            with self.lock:
                if self.left <= 0:
                    return
                self.left -= 1
            idle = not idle
            self.stop.wait(0.05)
            try:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            except OSError:
                self._count("connect_failed")
                continue
            self._count("connections")
            with sock:
                try:
                    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    if not idle:
                        self._count("hung_up")
                        continue
                    sock.settimeout(0.25)
                    t0 = time.monotonic()
                    while not self.stop.is_set() and time.monotonic() - t0 < 12:
                        try:
                            if not sock.recv(4096):
                                break
                        except TimeoutError:
                            continue
                    else:
                        self._count("still_open")
                        continue
                    self._count("refused_at_cap" if time.monotonic() - t0 < 1 else "idle_closed")
                except OSError:  # reset by the server
                    self._count("refused_at_cap")

    def close(self) -> dict:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=5)
        return dict(self.counts)


class Scraper:
    """GET /metrics every 0.5 s, one try each; (t, seconds or None) per try."""

    def __init__(self, url: str):
        self.url, self.stop = url, threading.Event()
        self.tries: list[tuple[float, float | None]] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            t0 = time.monotonic()
            try:
                urllib.request.urlopen(self.url, timeout=5).read()
                self.tries.append((t0, time.monotonic() - t0))
            except Exception:  # noqa: BLE001 - refused, reset, timed out, a torn answer: not answered
                self.tries.append((t0, None))

    def between(self, a: float, b: float) -> dict:
        got = [s for t, s in self.tries if a <= t < b]
        ok = np.array([s for s in got if s is not None]) * 1000
        p50, p95 = np.percentile(ok, [50, 95]) if ok.size else (float("nan"),) * 2
        return dict(tried=len(got), answered=int(ok.size), p50_ms=round(float(p50), 1), p95_ms=round(float(p95), 1))


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sink_counts(url: str) -> dict:
    """yolo_event_sink_{sent,failed,dropped}_total summed over consumers; retried for up to 20 s."""
    page, deadline = "", time.monotonic() + 20
    while not page and time.monotonic() < deadline:
        try:
            page = urllib.request.urlopen(url, timeout=5).read().decode()
        except OSError:
            time.sleep(0.5)
    if not page:
        return {}
    out = {}
    for key in ("sent", "failed", "dropped"):
        vals = re.findall(rf"^yolo_event_sink_{key}_total\{{[^}}]*\}} (\S+)$", page, re.M)
        out[key] = int(sum(float(v) for v in vals))
    return out


def ffmpeg_reader(url: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["ffmpeg", "-v", "error", "-nostdin", "-rtsp_transport", "tcp", "-i", url, "-c", "copy", "-f", "null", "-"]
        + ["-progress", "pipe:1", "-nostats"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def stop_reader(proc: subprocess.Popen) -> int:
    """Stop an ffmpeg reader; the last frame count its -progress output reported."""
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    counts = [int(x.split("=")[1]) for x in (out or "").splitlines() if x.startswith("frame=")]
    return counts[-1] if counts else 0


def churn(url: str, stop: threading.Event, out: dict, n: int = 15) -> None:
    """One RTSP client at a time that connects and is killed after 1-2 s, at most `n` of them."""
    while out["churned"] < n and not stop.is_set():
        proc = ffmpeg_reader(url)
        stop.wait(random.uniform(1.0, 2.0))
        out["churn_frames"] += stop_reader(proc)
        out["churned"] += 1
