"""Issue 28: the running headless service under abuse. Inference FPS with and without it, in one run.

    .venv/bin/python -m bench.abuse [--model models/yolov8n/int8] [--clip VIDEO] [--seconds 20]
                                    [--flood 50] [--rtsp-clients 3] [--min-ratio 0.8] [--out bench/results/abuse.json]

What runs: `app.py --headless` as a child (what an edge box runs) with `--serve 127.0.0.1:P1 --metrics-port P2`
on a camera file whose one source, `cam`, is the clip stream-copied --copies times end to end (a file:
every frame is inferred, unpaced, so the FPS is the service's throughput, the figure any stolen CPU shows in),
with analytics (a line across the middle, ByteTrack) and `events: {webhook: http://127.0.0.1:P3/hook,
timeout_s: 2, retries: 1}` pointing at an HTTP server in this process, plus `jsonl:` per frame to a file.
FPS = new lines of that file over the phase's window (not /metrics: the flood phase is about its port).
A scraper in this process GETs /metrics every 0.5 s in every phase (one try, 5 s timeout): answered / tried,
latency p50/p95 of the answered. Each phase: 3 s to settle after its abuse starts, then --seconds measured.
  baseline       the webhook answers 200 at once, nothing else
  metrics-flood  --flood threads, each in a loop (<= 20 connections/s each, 20000 in all): connect to the
                 metrics port, send half a request (no blank line), then every other time hang up at once,
                 else idle until the server closes (or 12 s); closed within 1 s = refused at the cap (32
                 connections), later = the idle timeout (10 s)
  webhook-slow   the webhook answers half the POSTs, two in a row, after 3 s (past timeout_s: the try and
                 its one retry fail, so events fail), the others after 1 s with `Content-Length: 1 GiB` and
                 64 KiB chunks streamed until the client hangs up (or 16 MiB / 10 s): the service must read
                 at most 64 KiB of it
  rtsp-clients   --rtsp-clients ffmpeg readers of rtsp://127.0.0.1:P1/cam (TCP, `-c copy` into the null
                 muxer: no decoding, so their CPU is small) for the whole phase, and one more that connects
                 and is killed after 1-2 s, over and over (at most 15): the served stream is encoded (x264)
                 only while someone watches, so this phase costs what serving costs
  baseline-again as baseline: the drift of the shared box over the run
The app's RSS (VmRSS of /proc/PID/status, what psutil reads) and CPU (/proc/PID/stat) over each window;
webhook sent/failed/dropped from `yolo_event_sink_*_total` after each phase. Ratios are to the mean of the
two baselines: FPS, and the app's CPU time per frame (on a shared box the FPS follows the CPU the other
tenants leave, +-30 % between minutes; CPU per frame is what the abuse adds to the service's own work).
Checks (a failed one: exit code 1): the app alive after every phase and /healthz 200 at the end;
metrics-flood and webhook-slow CPU per frame <= baseline / --min-ratio (both abuses are off the inference
thread; the rtsp phase encodes for real, so its ratios are reported, not judged); >= 90 % of the scrapes
answered during the flood and one within 15 s of its end; webhook-slow RSS growth under 64 MiB; every
steady RTSP client got frames. Prints the machine line, one table and `N passed, N failed`; writes
bench/results/abuse.json. These boxes are shared: only ratios within one run mean anything.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import BinaryIO

import numpy as np

from bench.abuselib import (
    Flood,
    Hook,
    MiB,
    Scraper,
    churn,
    ffmpeg_reader,
    proc_cpu_s,
    proc_rss_mb,
    sink_counts,
    stop_reader,
)
from bench.benchlib import REPO, default_clip, default_model, free_port, machine_info, machine_line, write_json

PHASES = ["baseline", "metrics-flood", "webhook-slow", "rtsp-clients", "baseline-again"]


class App:
    """The service under test, a child process; `frames()` counts the lines of its per-frame JSON file."""

    def __init__(self, a, folder: Path, hook_port: int):
        self.port, self.mport = free_port(), free_port()
        self.jsonl, self.log = folder / "frames.jsonl", folder / "app.log"
        cfg = folder / "cams.yaml"
        cfg.write_text(
            f"sources:\n  - url: {folder / 'long.mp4'}\n    name: cam\n    jsonl: {self.jsonl}\n"
            "    analytics:\n      lines:\n        - {name: gate, points: [[0.5, 0.0], [0.5, 1.0]]}\n"
            f"      events:\n        webhook: {{url: 'http://127.0.0.1:{hook_port}/hook', timeout_s: 2, retries: 1}}\n"
        )
        cmd = [sys.executable, "app.py", "--headless", "--model", str(a.model), "--config", str(cfg)]
        cmd += ["--serve", f"127.0.0.1:{self.port}", "--metrics-port", str(self.mport)]
        with open(self.log, "w") as fh:
            self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
        self.metrics_url = f"http://127.0.0.1:{self.mport}/metrics"
        self.health_url = f"http://127.0.0.1:{self.mport}/healthz"
        self.rtsp_url = f"rtsp://127.0.0.1:{self.port}/cam"
        self._lines = 0
        self._fh: BinaryIO | None = None

    def frames(self) -> int:
        if self._fh is None:
            if not self.jsonl.exists():
                return 0
            self._fh = open(self.jsonl, "rb")
        self._lines += self._fh.read().count(b"\n")
        return self._lines

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._fh is not None:
            self._fh.close()


def window(app: App, seconds: float) -> dict:
    """Frames, RSS and CPU of the app over `seconds` (sampled every 0.5 s)."""
    pid = app.proc.pid
    time.sleep(3.0)  # settle: the abuse has started, first frames of it are not counted
    t0, f0, c0, r0 = time.monotonic(), app.frames(), proc_cpu_s(pid), proc_rss_mb(pid)
    peak = r0
    while time.monotonic() - t0 < seconds and app.alive():
        time.sleep(0.5)
        peak = max(peak, proc_rss_mb(pid))
    if not app.alive():
        return {"t0": t0, "t1": time.monotonic(), "fps": 0.0, "rss_start_mb": round(r0, 1), "alive": False}
    wall = time.monotonic() - t0
    frames, cpu, r1 = app.frames() - f0, proc_cpu_s(pid) - c0, proc_rss_mb(pid)
    rss = dict(rss_start_mb=round(r0, 1), rss_end_mb=round(r1, 1), rss_peak_mb=round(peak, 1))
    cpu_use = dict(cpu_pct_core=round(100 * cpu / wall, 1), cpu_ms_per_frame=round(1000 * cpu / max(frames, 1), 2))
    return dict(t0=t0, t1=t0 + wall, frames=frames, fps=round(frames / wall, 2), alive=True, **rss, **cpu_use)


def run_phase(name: str, app: App, hook: Hook, scraper: Scraper, a) -> dict:
    extra: dict = {}
    flood, churner, stop = None, None, threading.Event()
    readers: list[subprocess.Popen] = []
    before = sink_counts(app.metrics_url)
    try:
        if name == "metrics-flood":
            flood = Flood(app.mport, a.flood)
        elif name == "webhook-slow":
            hook.mode = "slow"
            hook.posts = hook.huge = hook.late = hook.pushed = 0
        elif name == "rtsp-clients":
            readers = [ffmpeg_reader(app.rtsp_url) for _ in range(a.rtsp_clients)]
            extra.update(churned=0, churn_frames=0)
            churner = threading.Thread(target=churn, args=(app.rtsp_url, stop, extra), daemon=True)
            churner.start()
        row = window(app, a.seconds)
    finally:
        if flood is not None:
            extra.update(flood.close())
            t_end, extra["recovered_s"] = time.monotonic(), None
            while extra["recovered_s"] is None and time.monotonic() < t_end + 15:
                time.sleep(0.5)
                answered = [t for t, took in list(scraper.tries) if t >= t_end and took is not None]
                extra["recovered_s"] = round(answered[0] - t_end, 1) if answered else None
        if name == "webhook-slow":
            hook.mode = "ok"
            extra.update(posts=hook.posts, huge_answers=hook.huge, late_answers=hook.late)
            extra["mib_pushed_per_huge"] = round(hook.pushed / MiB / max(hook.huge, 1), 2)
        stop.set()
        if churner is not None:
            churner.join(timeout=20)
        if readers:
            extra["client_frames"] = [stop_reader(p) for p in readers]
    after = sink_counts(app.metrics_url)
    row["webhook"] = {k: after[k] - before[k] for k in after} if before and after else {}
    row["scrapes"] = scraper.between(row.pop("t0"), row.pop("t1"))
    return {"phase": name, **row, **extra}


def judge(rows: list[dict], healthy: bool, a) -> list[tuple[str, bool, str]]:
    by = {r["phase"]: r for r in rows}
    checks = [("app alive after every phase", all(r["alive"] for r in rows) and len(rows) == len(PHASES), "")]
    checks.append(("/healthz 200 at the end", healthy, ""))
    for name in ("metrics-flood", "webhook-slow"):
        r = by.get(name, {})
        most = round(1 / a.min_ratio, 2)
        ok = r.get("cpu_ratio", 1e9) <= most
        checks.append(
            (f"{name} CPU per frame <= {most} x baseline", ok, f"{r.get('cpu_ratio')} (FPS {r.get('ratio')})")
        )
    sc = by.get("metrics-flood", {}).get("scrapes", {})
    share = sc.get("answered", 0) / max(sc.get("tried", 0), 1)
    checks.append(("scrapes answered during the flood >= 90 %", share >= 0.9, f"{100 * share:.0f} %"))
    rec = by.get("metrics-flood", {}).get("recovered_s")
    checks.append(("a scrape answered within 15 s of the flood's end", rec is not None, f"{rec} s"))
    w = by.get("webhook-slow", {})
    growth = w.get("rss_end_mb", 1e9) - w.get("rss_start_mb", 0)
    checks.append(("webhook-slow RSS growth < 64 MiB", growth < 64, f"{growth:+.1f} MB"))
    frames = by.get("rtsp-clients", {}).get("client_frames", [])
    checks.append(("every steady RTSP client got frames", bool(frames) and min(frames) > 0, f"{frames}"))
    return checks


def note(r: dict) -> str:
    w = r.get("webhook", {})
    hook = f"webhook sent/failed/dropped {w.get('sent', '-')}/{w.get('failed', '-')}/{w.get('dropped', '-')}"
    if r["phase"] == "metrics-flood":
        return (
            f"{r['connections']} conns: {r['hung_up']} hung up, {r['refused_at_cap']} refused at cap, "
            f"{r['idle_closed']} idle-closed, {r['still_open']} still open; scrape back {r['recovered_s']} s after"
        )
    if r["phase"] == "webhook-slow":
        return (
            f"{hook}; {r['posts']} POSTs: {r['late_answers']} late, {r['huge_answers']} huge "
            f"({r['mib_pushed_per_huge']} MiB pushed each before the hang-up)"
        )
    if r["phase"] == "rtsp-clients":
        return f"frames per steady client {r['client_frames']}; {r['churned']} connect-and-drop clients"
    return hook


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=None)
    p.add_argument("--clip", type=Path, default=default_clip())
    p.add_argument("--copies", type=int, default=20, help="the clip this many times end to end (never runs out)")
    p.add_argument("--seconds", type=float, default=20.0, help="measured per phase")
    p.add_argument("--flood", type=int, default=50, help="concurrent metrics abusers")
    p.add_argument("--rtsp-clients", type=int, default=3)
    p.add_argument("--min-ratio", type=float, default=0.8)
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "abuse.json")
    a = p.parse_args()
    a.model = a.model or default_model(script="abuse")
    info = machine_info()
    rows: list[dict] = []
    healthy = False
    with tempfile.TemporaryDirectory(prefix="abuse-") as tmp:
        folder = Path(tmp)
        loops = ["-stream_loop", str(a.copies - 1), "-i", str(a.clip), "-c", "copy", "-an", str(folder / "long.mp4")]
        subprocess.run(["ffmpeg", "-v", "error", "-y", *loops], check=True, timeout=300)
        hook = Hook(free_port())
        app = scraper = None
        try:
            app = App(a, folder, hook.server_address[1])
            scraper = Scraper(app.metrics_url)
            t0 = time.monotonic()
            while app.frames() < 20 and app.alive() and time.monotonic() - t0 < 180:
                time.sleep(0.5)
            if app.frames() < 20:
                raise SystemExit(f"abuse: the app gave no results:\n{app.log.read_text()[-3000:]}")
            for name in PHASES:
                rows.append(run_phase(name, app, hook, scraper, a))
                r = rows[-1]
                print(f"  {name}: {r['fps']:.1f} fps, RSS {r.get('rss_end_mb', '-')} MB", flush=True)
                if not r["alive"]:
                    break
            try:
                healthy = urllib.request.urlopen(app.health_url, timeout=10).status == 200
            except OSError:
                healthy = False
        finally:
            if scraper is not None:
                scraper.stop.set()
            if app is not None:
                app.close()
            hook.close()
        log_tail = app.log.read_text()[-3000:]
    base = [r for r in rows if r["phase"].startswith("baseline") and r["alive"]]
    ref = float(np.mean([r["fps"] for r in base])) if base else float("nan")
    ref_cpu = float(np.mean([r["cpu_ms_per_frame"] for r in base])) if base else float("nan")
    for r in rows:
        r["ratio"] = round(r["fps"] / ref, 2) if ref else float("nan")
        r["cpu_ratio"] = round(r.get("cpu_ms_per_frame", float("nan")) / ref_cpu, 2) if ref_cpu else float("nan")
    checks = judge(rows, healthy, a)

    print(f"\nheadless service under abuse: {a.clip.name} x{a.copies} as a file (unpaced), {a.seconds:g} s per phase")
    print(machine_line(info))
    print(
        "| phase | FPS | vs baseline | app CPU % core | CPU ms/frame | vs baseline | RSS MB start -> end (peak) "
        "| scrapes answered | scrape p50 / p95 ms | what happened |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        s = r["scrapes"]
        rss = f"{r['rss_start_mb']} -> {r.get('rss_end_mb', '-')} ({r.get('rss_peak_mb', '-')})"
        print(
            f"| {r['phase']} | {r['fps']:.1f} | {r['ratio']:.2f} | {r.get('cpu_pct_core', '-')} "
            f"| {r.get('cpu_ms_per_frame', '-')} | {r['cpu_ratio']:.2f} | {rss} "
            f"| {s['answered']}/{s['tried']} | {s['p50_ms']} / {s['p95_ms']} | {note(r)} |"
        )
    print(f"(vs baseline: to the mean of the two baselines, {ref:.1f} fps and {ref_cpu:.2f} CPU ms/frame)")
    for name, ok, detail in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {name} {detail}")
    failed = sum(not ok for _, ok, _ in checks)
    print(f"{len(checks) - failed} passed, {failed} failed")
    judged = [{"check": n, "passed": ok, "detail": d} for n, ok, d in checks]
    run = dict(clip=str(a.clip), model=str(a.model), seconds=a.seconds, flood=a.flood, rtsp_clients=a.rtsp_clients)
    write_json(a.out, {**run, **info, "baseline_fps": ref, "rows": rows, "checks": judged, "app_log_tail": log_tail})
    print(f"wrote {a.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
