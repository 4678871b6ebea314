"""Cameras per box: how many live RTSP cameras one box keeps up with, every-frame, every-2nd and motion-gated.

    .venv/bin/python -m bench.cameras_bench [--model models/yolov8n/int8] [--modes every,every2,gated]
                                           [--max-cameras 16] [--seconds 10] [--warmup 4]
    .venv/bin/python -m bench.cameras_bench --idle-only [--idle-rounds 3] [--seconds 10]   # the idle camera only

A realistic mix: camera 0, 3, 6, ... (a third) is busy, the person sample clip; the others are mostly idle,
the empty room of the same clip with sensor noise and a passer-by every 30 s (bench/idle_scene.py says how it
is made). The idle cameras are dealt round-robin to IDLE_GROUPS scenes whose passers-by come at different
times (7.5 s apart): one server's stream reaches all its clients at once, and independent cameras do not all
see someone walk by in the same second. tests/rtsp_server.py processes on 127.0.0.1 (one busy, IDLE_GROUPS
idle) loop the clips at 10 fps; each camera is its own RTSP session (keep-latest, as headless runs it), all
sharing one engine, with tracking, a zone and a line, events to a JSON-lines file and the drawing on. Modes:
`every` detects every frame, `every2` every 2nd (detect_every: 2), `gated` runs the motion gate of
model/motion.py on every camera (the detector runs on motion, while tracks live and every keepalive_s; the
tracker carries the boxes in between). For each mode the camera count is searched (doubling, then bisecting)
for the largest one whose p95 capture-to-result latency stays within 2 frame intervals with at most 1 % of the
frames dropped. Also measured: the CPU of one idle camera alone (its RTSP decode + the motion gate, % of one
core, split by thread, the frame path before lazy frames against today's, alternated: bench/idle_cpu.py) and,
per run, the process CPU per delivered frame, which load from other processes disturbs less than wall time.
The servers run on the same cores (their CPU share is printed). On a box that other work loads, the latency
limits swing from run to run, so the bench also compares the process CPU per frame of the modes at `--fixed`
cameras, alternating the modes over `--rounds`, and turns it into a CPU-bound camera count (cores / (CPU per
frame x fps)). Prints tables, writes bench/results/cameras.json.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import sys
import tempfile
import threading
import time
from pathlib import Path

import av
import numpy as np

from bench.benchlib import (
    REPO,
    RtspServer,
    default_clip,
    default_model,
    machine_info,
    machine_line,
    source_counts,
    video_only,
    write_json,
)
from bench.idle_cpu import PATHS, idle_camera_cpu, table
from bench.idle_scene import idle_scene
from yolovino.inference import AsyncEngine, InferenceConfig, YoloModel
from yolovino.inference.analytics.config import parse_analytics, resolve_classes
from yolovino.inference.analytics.stage import Analytics
from yolovino.inference.core.motion import MotionConfig
from yolovino.inference.draw.annotate import Annotator
from yolovino.inference.model.motion import MotionGate
from yolovino.inference.model.stride import StridedEngine
from yolovino.inference.notify.hub import EventHub
from yolovino.inference.pipeline import Pipeline, frame_time
from yolovino.inference.sources import open_source

SETUP = {
    "zones": [{"name": "table", "points": [[0.45, 0.8], [0.7, 0.8], [0.7, 0.96], [0.45, 0.96]]}],
    "lines": [{"name": "door", "points": [[0.3, 0.0], [0.3, 1.0]]}],
}
MODES = {"every": (1, False), "every2": (2, False), "gated": (1, True)}  # mode -> (stride, motion gate)


IDLE_GROUPS = 4  # idle scenes with passers-by at different times (IDLE_EVERY_S / IDLE_GROUPS apart)
IDLE_EVERY_S = 30.0


def camera_urls(busy: str, idles: list[str], n: int) -> list[str]:
    """A third busy (cameras 0, 3, 6, ...), two thirds idle, dealt round-robin over the idle streams."""
    out, k = [], 0
    for i in range(n):
        if i % 3 == 0:
            out.append(busy)
        else:
            out.append(idles[k % len(idles)])
            k += 1
    return out


def idle_clips(folder: Path) -> list[Path]:
    """The IDLE_GROUPS idle scenes, passers-by IDLE_EVERY_S / IDLE_GROUPS apart (bench/idle_scene.py)."""
    clip = default_clip("one-by-one-person-detection.mp4")
    step = IDLE_EVERY_S / IDLE_GROUPS
    return [
        idle_scene(clip, folder / f"idle{k}.mp4", every_s=IDLE_EVERY_S, first_s=step * (k + 0.5))
        for k in range(IDLE_GROUPS)
    ]


def run(model: YoloModel, urls: list[str], mode: str, seconds: float, warmup: float, events: Path) -> dict:
    stride, gated = MODES[mode]
    sources = [open_source(url, live=True, name=f"cam{i}", wait=True) for i, url in enumerate(urls)]
    cfg = resolve_classes(parse_analytics({**SETUP, "events": {"jsonl": str(events)}}), model.names)
    analytics = Analytics(cfg, hub=EventHub.build({s.id: cfg.events for s in sources}))
    engine = AsyncEngine(model)
    eng = StridedEngine(engine, stride, frame_time)
    if gated:
        for s in sources:
            eng.set_gate(s.id, MotionGate(MotionConfig(), tracks=functools.partial(analytics.track_needs, s.id)))
    pipe = Pipeline(eng, sources, annotator=Annotator(), analytics=analytics)
    stop, lat = threading.Event(), []
    t_measure = t_end = None
    start: dict[str, tuple[int, int]] = {}
    cpu0 = 0.0
    ran0: dict[str, list[int]] = {}
    # the window's counts are taken after the loop with the generator still open: closing it closes the
    # pipeline, which stops the sources one by one while the others still receive frames that nobody takes
    # any more (they would count as dropped) and spends CPU on the shutdown
    results = pipe.run(stop)
    for fr in results:
        now = time.monotonic()
        if t_measure is None and all(s.stats.frames_read for s in sources):
            t_measure = now + warmup
        if t_measure is not None and now >= t_measure:
            if not start:
                start = source_counts(sources)
                ran0 = {k: list(v) for k, v in eng.per_source.items()}
                t_measure, cpu0 = now, time.process_time()
            lat.append(fr.latency_ms)
            if now - t_measure >= seconds:
                t_end = now
                stop.set()
                break
    cpu = time.process_time() - cpu0
    end, ran1 = source_counts(sources), {k: list(v) for k, v in eng.per_source.items()}
    results.close()
    read = sum(end[s.id][0] - start.get(s.id, (0, 0))[0] for s in sources)
    dropped = sum(end[s.id][1] - start.get(s.id, (0, 0))[1] for s in sources)
    share = {}
    for kind, ids in (("busy", [s.id for s, u in zip(sources, urls) if u == urls[0]]), ("idle", None)):
        ids = ids if ids is not None else [s.id for s, u in zip(sources, urls) if u != urls[0]]
        ran = sum(ran1.get(i, [0, 0])[0] - ran0.get(i, [0, 0])[0] for i in ids)
        total = sum(ran1.get(i, [0, 0])[1] - ran0.get(i, [0, 0])[1] for i in ids)
        share[kind] = ran / total if total else float("nan")
    pipe.close()
    engine.close()
    analytics.close()
    span = (t_end or time.monotonic()) - (t_measure or time.monotonic())
    return {
        "mode": mode,
        "cameras": len(urls),
        "fps": len(lat) / max(span, 1e-6),
        "frames_read": read,
        "dropped": dropped,
        "drop_rate": dropped / max(read, 1),
        "p50_ms": float(np.percentile(lat, 50)) if lat else float("nan"),
        "p95_ms": float(np.percentile(lat, 95)) if lat else float("nan"),
        "cpu_ms_per_frame": 1000 * cpu / max(len(lat), 1),
        "detector_share_busy": share["busy"],
        "detector_share_idle": share["idle"],
    }


def idle_rounds(url: str, paths: list[str], rounds: int, seconds: float, model: YoloModel) -> list[dict]:
    """The idle camera's CPU by frame path, the paths alternating over the rounds (bench/idle_cpu.py)."""
    rows = []
    for k in range(rounds):
        for path in paths:
            r = idle_camera_cpu(url, seconds, path, model=model)
            rows.append(r)
            print(
                f"[idle {k + 1}/{rounds}] {path}: {r['cpu_percent_of_one_core']:.2f} % of one core",
                file=sys.stderr,
                flush=True,
            )
    return rows


def idle_only(paths: list[str], rounds: int, seconds: float, out: Path, model_path: Path) -> int:
    """--idle-only: the idle camera's table and JSON, nothing else."""
    logging.basicConfig(level=logging.ERROR)
    model = YoloModel.load(model_path, InferenceConfig())
    with tempfile.TemporaryDirectory() as tmp:
        idle_clip = idle_scene(default_clip("one-by-one-person-detection.mp4"), Path(tmp) / "idle.mp4")
        with RtspServer(idle_clip) as idle:
            rows = idle_rounds(idle.url("x"), paths, rounds, seconds, model)
    print("\n" + machine_line())
    print(f"idle camera alone: bench/idle_scene.py over RTSP, 768x432 at 10 fps, {seconds:g} s per round")
    print("CPU by thread, ms per frame: reader = demux + decode, gate = motion gate (app: the pipeline thread),")
    print("others = decoder/OpenCV pools (app: + OpenVINO)")
    print("\n".join(table(rows)))
    print("detected: frames the detector ran on (app: motion, tracks, keepalive); converted: frames made BGR")
    data = {"model": str(model_path), "machine": machine_info(), "seconds": seconds, "rounds": rounds, "rows": rows}
    write_json(out, data)
    print(f"wrote {out}")
    return 0


def settle(servers: list[RtspServer], seconds: float) -> None:
    """A pause between runs: after an overloaded run, the servers and the kernel's socket buffers still
    carry its backlog for a few seconds, and the next run (whatever its mode) would pay for it."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and all(s.proc is not None for s in servers):
        time.sleep(0.2)


def search(check, max_cameras: int) -> int:
    """The largest camera count that passes: double while it passes, then bisect (assumes monotony)."""
    lo, n, hi = 0, 1, None
    while n <= max_cameras:
        if not check(n):
            hi = n
            break
        lo, n = n, n * 2
    if hi is None:
        if lo == max_cameras or check(max_cameras):
            return max_cameras
        hi = max_cameras
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if check(mid) else (lo, mid)
    return lo


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--clip", default="one-by-one-person-detection.mp4", help="the busy cameras' clip")
    ap.add_argument("--modes", default="every,every2,gated")
    ap.add_argument("--max-cameras", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=4.0)
    ap.add_argument("--settle", type=float, default=4.0, help="seconds of pause before each run")
    ap.add_argument("--fixed", type=int, default=3, help="cameras of the CPU comparison (0: skip it)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the CPU comparison (modes alternate)")
    ap.add_argument("--out", type=Path, default=None, help="default bench/results/cameras.json (idle.json)")
    ap.add_argument("--idle-only", action="store_true", help="measure only the idle camera's CPU")
    ap.add_argument("--idle-paths", default=",".join(PATHS), help="frame paths of the idle camera (idle_cpu.py)")
    ap.add_argument("--idle-rounds", type=int, default=3, help="rounds of the idle camera (paths alternate)")
    args = ap.parse_args()
    idle_paths = [p.strip() for p in args.idle_paths.split(",") if p.strip()]
    if not idle_paths or any(p not in PATHS for p in idle_paths) or args.idle_rounds < 1:
        print(f"cameras_bench: --idle-paths: one or more of {', '.join(PATHS)}; --idle-rounds >= 1", file=sys.stderr)
        return 2
    if args.idle_only:
        out = args.out or REPO / "bench" / "results" / "idle.json"
        return idle_only(idle_paths, args.idle_rounds, args.seconds, out, args.model or default_model())
    args.out = args.out or REPO / "bench" / "results" / "cameras.json"
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        print(f"cameras_bench: --modes: unknown {', '.join(bad)} (known: {', '.join(MODES)})", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.ERROR)
    model_path = args.model or default_model(script="cameras_bench")
    model = YoloModel.load(model_path, InferenceConfig())
    clip = Path(args.clip) if Path(args.clip).exists() else default_clip(args.clip)
    with av.open(str(clip)) as c:
        fps = float(c.streams.video[0].average_rate or 25)
    interval_ms = 1000.0 / fps
    rows: list[dict] = []
    best: dict[str, int] = {}
    fixed: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        with contextlib.ExitStack() as stack:
            busy = stack.enter_context(RtspServer(video_only(clip, Path(tmp))))
            idles = [stack.enter_context(RtspServer(c)) for c in idle_clips(Path(tmp))]
            servers = [busy, *idles]
            idle_urls = [s.url("x") for s in idles]
            idle_rows = idle_rounds(idle_urls[0], idle_paths, args.idle_rounds, args.seconds, model)
            shown = "luma" if "luma" in idle_paths else idle_paths[-1]  # the default path's figure
            idle_cpu = [r for r in idle_rows if r["path"] == shown][-1]
            for mode in modes:

                def check(n: int, mode: str = mode) -> bool:
                    settle(servers, args.settle)
                    cpu0, t0 = sum(s.cpu_seconds() for s in servers), time.monotonic()
                    urls = camera_urls(busy.url("x"), idle_urls, n)
                    r = run(model, urls, mode, args.seconds, args.warmup, Path(tmp) / "events.jsonl")
                    server = sum(s.cpu_seconds() for s in servers) - cpu0
                    r["server_cpu_share"] = server / max(time.monotonic() - t0, 1e-6) / 2
                    r["ok"] = r["p95_ms"] <= 2 * interval_ms and r["drop_rate"] <= 0.01
                    rows.append(r)
                    print(
                        f"[{mode}] {n} cameras: p95 {r['p95_ms']:.0f} ms, dropped {r['drop_rate'] * 100:.1f} %"
                        f" -> {'ok' if r['ok'] else 'over'}",
                        file=sys.stderr,
                        flush=True,
                    )
                    return bool(r["ok"])

                best[mode] = search(check, args.max_cameras)
            fixed = {m: [] for m in modes}
            urls = camera_urls(busy.url("x"), idle_urls, args.fixed)
            for _ in range(args.rounds if args.fixed else 0):
                for mode in modes:  # alternating, so that load from elsewhere hits every mode alike
                    settle(servers, args.settle)
                    r = run(model, urls, mode, args.seconds, args.warmup, Path(tmp) / "events.jsonl")
                    fixed[mode].append(r["cpu_ms_per_frame"])
    print("\n" + machine_line())
    print(
        f"model {model_path}; busy cameras: {clip.name}, idle cameras: bench/idle_scene.py in {IDLE_GROUPS} groups "
        f"(a passer-by every {IDLE_EVERY_S:g} s, {IDLE_EVERY_S / IDLE_GROUPS:g} s apart); {fps:g} fps"
    )
    print("limits: p95 capture-to-result <= 2 intervals, dropped <= 1 %; analytics on (tracking, zone, line, events)")
    print(
        f"{'mode':>7}{'cameras':>8}{'FPS':>7}{'p50 ms':>8}{'p95 ms':>8}{'p95/intv':>9}{'dropped':>8}"
        f"{'CPU ms/fr':>10}{'det busy':>9}{'det idle':>9}{'server':>8}"
    )
    for r in rows:
        print(
            f"{r['mode']:>7}{r['cameras']:>8}{r['fps']:7.1f}{r['p50_ms']:8.0f}{r['p95_ms']:8.0f}"
            f"{r['p95_ms'] / interval_ms:9.2f}{r['drop_rate'] * 100:7.1f}%{r['cpu_ms_per_frame']:10.2f}"
            f"{r['detector_share_busy'] * 100:8.0f}%{r['detector_share_idle'] * 100:8.0f}%"
            f"{r['server_cpu_share'] * 100:7.1f}%"
        )
    print("cameras per box: " + ", ".join(f"{m}: {n}" for m, n in best.items()))
    if best.get("every") and "gated" in best:
        print(f"gated / every-frame: {best['gated'] / best['every']:.2f}x")
    if args.fixed:
        cores = machine_info()["cores"]
        every = float(np.median(fixed["every"])) if fixed.get("every") else float("nan")
        print(
            f"\nCPU per frame, {args.fixed} cameras (a third busy), modes alternating, {args.rounds} rounds; "
            f"CPU-bound cameras = {cores} cores / (CPU per frame x {fps:g} fps)"
        )
        print(f"{'mode':>7}{'CPU ms/frame':>14}{'vs every':>10}{'CPU-bound cameras':>19}")
        for mode, vals in fixed.items():
            med = float(np.median(vals))
            print(f"{mode:>7}{med:14.2f}{every / med:10.2f}{cores * 1000 / (med * fps):19.1f}")
    print("\nidle camera alone (RTSP decode + motion gate), median of the rounds; ms of CPU per frame by thread:")
    print("\n".join(table(idle_rows)))
    write_json(
        args.out,
        {
            "model": str(model_path),
            "machine": machine_info(),
            "clip": clip.name,
            "idle_groups": IDLE_GROUPS,
            "idle_every_s": IDLE_EVERY_S,
            "fps": fps,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "rows": rows,
            "cameras_per_box": best,
            "idle_camera": idle_cpu,
            "idle_camera_rounds": idle_rows,
            "fixed_cameras": args.fixed,
            "cpu_ms_per_frame_fixed": fixed,
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
