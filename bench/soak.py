"""Soak test: the headless pipeline on a looping live source for N minutes, watching for leaks.

    .venv/bin/python -m bench.soak [--minutes 30] [--interval 10] [--model models/yolov8n/int8]
                                   [--clip VIDEO] [--source rtsp|file] [--out bench/results]

What runs: `app.py --headless` as a child process (exactly what an edge box runs), reading a camera-like
stream that never ends, with the JSON-lines sink (to /dev/null) and the Prometheus endpoint on:
  rtsp  (default when the Debian GStreamer packages are there) the shared clip looped forever by
        tests/rtsp_server.py (run with /usr/bin/python3) at its real frame rate, read over RTSP/TCP;
  file  fallback without GStreamer: a child running the same Pipeline/sinks/metrics in-process over the
        clip re-opened at every end, paced at the clip's frame rate (keep-latest, like a camera).
Sampling starts once the first frame has come out. Every `--interval` seconds the child's RSS, thread count
and open file descriptors are read with psutil, and frames processed from its /metrics endpoint.

Verdict (after warm-up = the first 20% of the samples):
  rss      RSS growth under 5%: median of the last 3 samples vs median of the first 3 after warm-up
  threads  max - min <= 2
  fds      max - min <= 2
  frames   frames keep flowing: the frame counter rises in the last 20% of the samples and the child is alive
Writes <out>/soak.json and <out>/soak.png (RSS, threads, fds over time), prints a per-sample table, the
checks, and a last line `N passed, N failed`. Exit code 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.benchlib import RtspServer, default_model, free_port, gst_available, write_json

REPO = Path(__file__).resolve().parents[1]

DEFAULT_CLIP = "videos/one-by-one-person-detection.mp4"
RSS_LIMIT = 0.05
FLAT_LIMIT = 2
WARMUP_FRAC = 0.2


def assets_root() -> Path:
    from yolovino.common.paths import assets_root as root

    return root()


def _python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


@dataclass
class Sample:
    t: float  # seconds since sampling started
    rss_mb: float
    threads: int
    fds: int
    cpu_percent: float
    frames: int | None  # yolo_frames_processed_total from /metrics (None if the endpoint did not answer)


@dataclass
class SoakResult:
    minutes: float
    interval: float
    source: str
    model: str
    samples: list[Sample] = field(default_factory=list)
    checks: dict[str, dict] = field(default_factory=dict)
    passed: bool = False
    child_exit: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
        return d


# --- the looping source ---------------------------------------------------------------------------------


def file_loop_child(model: str, clip: str, metrics_port: int) -> int:
    """`--child-file-loop`: the Pipeline over the clip re-opened at every end, paced like a camera."""
    import threading

    from yolovino.inference import AsyncEngine, InferenceConfig, YoloModel
    from yolovino.inference.draw.annotate import Annotator
    from yolovino.inference.outputs.jsonl import JsonlSink
    from yolovino.inference.pipeline import Pipeline
    from yolovino.inference.service.metrics import Metrics
    from yolovino.inference.sources import PyAVSource

    class LoopingFile(PyAVSource):
        """A file that never ends: reopened at end of stream (counted as an outage), frames paced at its fps."""

        reconnectable = True

        def __init__(self, spec: str, **kw):
            super().__init__(spec, live=True, backoff=(0.01, 0.1), **kw)
            self.network = False
            self.reconnectable = True

        def _frames(self, container):
            rate = float(container.streams.video[0].average_rate or 10)
            period, nxt = 1.0 / rate, time.monotonic()
            for item in super()._frames(container):
                nxt += period
                delay = nxt - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    nxt = time.monotonic()
                yield item

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    engine = AsyncEngine(YoloModel.load(model, InferenceConfig()))
    metrics = Metrics()
    server = metrics.serve(metrics_port)
    source = LoopingFile(clip, name="loop").start()
    pipe = Pipeline(engine, [source], [JsonlSink(os.devnull)], Annotator(), metrics=metrics)
    try:
        for _ in pipe.run(stop):
            pass
    finally:
        pipe.close()
        server.close()
        engine.close()
    return 0


# --- sampling -------------------------------------------------------------------------------------------------


def frames_from_metrics(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as r:
            text = r.read().decode()
    except OSError:
        return None
    values = [float(m.group(1)) for m in re.finditer(r"^yolo_frames_processed_total\{[^}]*\} (\S+)$", text, re.M)]
    return int(sum(values)) if values else None


def evaluate(samples: list[Sample], child_alive: bool) -> dict[str, dict]:
    n = len(samples)
    if n < 5:
        return {"samples": {"ok": False, "detail": f"only {n} samples (need >= 5)"}}
    steady = samples[int(n * WARMUP_FRAC) :]
    k = min(3, len(steady))
    base = statistics.median(s.rss_mb for s in steady[:k])
    end = statistics.median(s.rss_mb for s in steady[-k:])
    growth = (end - base) / base if base else float("inf")
    threads = [s.threads for s in steady]
    fds = [s.fds for s in steady]
    tail = samples[-max(2, int(n * WARMUP_FRAC)) :]
    tail_frames = [s.frames for s in tail if s.frames is not None]
    flowing = child_alive and len(tail_frames) >= 2 and tail_frames[-1] > tail_frames[0]
    slope = _slope([s.t for s in steady], [s.rss_mb for s in steady]) * 3600.0
    return {
        "rss": {
            "ok": growth < RSS_LIMIT,
            "value": round(growth * 100, 2),
            "limit": f"< {RSS_LIMIT * 100:g} %",
            "detail": f"{base:.1f} -> {end:.1f} MB ({growth * 100:+.2f} %), trend {slope:+.1f} MB/h",
        },
        "threads": {
            "ok": max(threads) - min(threads) <= FLAT_LIMIT,
            "value": max(threads) - min(threads),
            "limit": f"max-min <= {FLAT_LIMIT}",
            "detail": f"{min(threads)}..{max(threads)}",
        },
        "fds": {
            "ok": max(fds) - min(fds) <= FLAT_LIMIT,
            "value": max(fds) - min(fds),
            "limit": f"max-min <= {FLAT_LIMIT}",
            "detail": f"{min(fds)}..{max(fds)}",
        },
        "frames": {
            "ok": flowing,
            "value": tail_frames[-1] if tail_frames else None,
            "limit": "rising at the end",
            "detail": (
                f"{tail_frames[0]} -> {tail_frames[-1]} in the last {len(tail)} samples"
                if tail_frames
                else "no /metrics answer"
            )
            + ("" if child_alive else "; child died"),
        },
    }


def _slope(xs: list[float], ys: list[float]) -> float:
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def plot(result: SoakResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s.t / 60 for s in result.samples]
    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    for ax, key, label in zip(axes, ("rss_mb", "threads", "fds"), ("RSS (MB)", "threads", "open fds")):
        ax.plot(t, [getattr(s, key) for s in result.samples], marker=".", lw=1)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if result.samples:
            warm = result.samples[int(len(result.samples) * WARMUP_FRAC)].t / 60 if len(result.samples) >= 5 else 0
            ax.axvspan(0, warm, color="0.9", lw=0)
    axes[-1].set_xlabel("minutes (grey: warm-up, not judged)")
    verdict = "PASS" if result.passed else "FAIL"
    fig.suptitle(f"soak {result.minutes:g} min, {result.source} source, {Path(result.model).name}: {verdict}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_soak(
    minutes: float = 30.0,
    interval: float = 10.0,
    *,
    model: str | Path | None = None,
    clip: str | Path | None = None,
    source: str | None = None,
    out_dir: str | Path | None = None,
    startup_timeout: float = 180.0,
    echo: bool = True,
) -> SoakResult:
    """Run the soak and return its result (also written to <out_dir>/soak.json and soak.png)."""
    import psutil

    out_dir = Path(out_dir) if out_dir else REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    model = Path(model) if model else default_model(script="soak")
    clip = Path(clip) if clip else assets_root() / DEFAULT_CLIP
    if not clip.is_file():
        raise SystemExit(f"soak: clip {clip} not found (set YOLO_APP_ASSETS or pass --clip)")
    if source is None:
        source = "rtsp" if gst_available() else "file"
    say = print if echo else (lambda *a, **k: None)
    log_path = out_dir / "soak-child.log"
    log_path.write_bytes(b"")
    result = SoakResult(minutes=minutes, interval=interval, source=source, model=str(model))
    mport = free_port()
    server = None
    env = dict(os.environ, PYTHONUNBUFFERED="1", YOLO_OFFLINE="1")
    if source == "rtsp":
        server = RtspServer(clip, log_path=log_path).start()
        cmd = [
            _python(),
            str(REPO / "app.py"),
            "--headless",
            "--model",
            str(model),
            "--source",
            server.url("x"),
            "--jsonl",
            os.devnull,
            "--metrics-port",
            str(mport),
        ]
    elif source == "file":
        cmd = [
            _python(),
            str(Path(__file__).resolve()),
            "--child-file-loop",
            "--model",
            str(model),
            "--clip",
            str(clip),
            "--metrics-port",
            str(mport),
        ]
    else:
        raise SystemExit(f"soak: --source must be rtsp or file, got {source!r}")
    log = open(log_path, "ab")
    child = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        proc = psutil.Process(child.pid)
        say(
            f"soak: {minutes:g} min, sample every {interval:g} s, {source} source ({clip.name}), model {model}, "
            f"child pid {child.pid}, log {log_path}"
        )
        deadline = time.monotonic() + startup_timeout
        while (frames_from_metrics(mport) or 0) == 0:
            if child.poll() is not None or time.monotonic() > deadline:
                result.notes.append("the pipeline never produced a frame (see the child log)")
                break
            time.sleep(0.5)
        t0 = time.monotonic()
        say(f"{'min':>6} {'RSS MB':>8} {'threads':>7} {'fds':>5} {'cpu %':>6} {'frames':>8}")
        proc.cpu_percent(None)
        n_total = max(1, int(round(minutes * 60 / interval)))
        for i in range(n_total + 1):
            if child.poll() is not None or result.notes:
                break
            try:
                with proc.oneshot():
                    s = Sample(
                        t=round(time.monotonic() - t0, 1),
                        rss_mb=round(proc.memory_info().rss / 2**20, 2),
                        threads=proc.num_threads(),
                        fds=proc.num_fds(),
                        cpu_percent=round(proc.cpu_percent(None), 1),
                        frames=frames_from_metrics(mport),
                    )
            except psutil.Error:
                break
            result.samples.append(s)
            say(
                f"{s.t / 60:6.2f} {s.rss_mb:8.1f} {s.threads:7d} {s.fds:5d} {s.cpu_percent:6.1f} "
                f"{'-' if s.frames is None else s.frames:>8}",
                flush=True,
            )
            if i < n_total:
                time.sleep(max(0.0, t0 + (i + 1) * interval - time.monotonic()))
        alive = child.poll() is None
        result.checks = evaluate(result.samples, alive)
        if not alive:
            result.notes.append(f"the child exited early with code {child.returncode}")
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        log.close()
        if server is not None:
            server.stop()
    result.child_exit = child.returncode
    result.passed = bool(result.checks) and all(c["ok"] for c in result.checks.values())
    write_json(out_dir / "soak.json", result.to_dict())
    try:
        plot(result, out_dir / "soak.png")
    except Exception as exc:  # noqa: BLE001 - a missing plot must not hide the verdict
        result.notes.append(f"plot failed: {exc}")
    say("")
    say(f"{'check':8s} {'result':6s} {'limit':18s} detail")
    for name, c in result.checks.items():
        say(f"{name:8s} {'pass' if c['ok'] else 'FAIL':6s} {c.get('limit', ''):18s} {c.get('detail', '')}")
    for note in result.notes:
        say(f"note: {note}")
    say(f"verdict: {'PASS' if result.passed else 'FAIL'} ({out_dir / 'soak.json'}, {out_dir / 'soak.png'})")
    n_ok = sum(c["ok"] for c in result.checks.values())
    say(f"{n_ok} passed, {len(result.checks) - n_ok} failed")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0, help="sampling time after the first frame (default 30)")
    p.add_argument("--interval", type=float, default=10.0, help="seconds between samples (default 10)")
    p.add_argument("--model", help="IR folder or .xml (default models/yolov8n/int8, else fp32)")
    p.add_argument("--clip", help=f"video to loop (default <assets>/{DEFAULT_CLIP})")
    p.add_argument("--source", choices=["rtsp", "file"], help="looping source (default rtsp if GStreamer is there)")
    p.add_argument("--out", help="results folder (default bench/results)")
    p.add_argument("--child-file-loop", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--metrics-port", type=int, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child_file_loop:
        return file_loop_child(a.model, a.clip, a.metrics_port)
    if a.minutes <= 0 or a.interval <= 0:
        p.error("--minutes and --interval must be > 0")
    result = run_soak(a.minutes, a.interval, model=a.model, clip=a.clip, source=a.source, out_dir=a.out)
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
