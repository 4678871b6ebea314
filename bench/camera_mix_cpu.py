"""CPU per camera-frame of every-frame, every-2nd and motion-gated detection, from files: no frame dropped.

    .venv/bin/python -m bench.camera_mix_cpu [--model models/yolov8n/int8] [--modes every,every2,gated]
                                            [--busy-frames 0] [--idle-seconds 60]

`bench.cameras_bench` searches how many live cameras a box keeps up with; that needs a box on which at least
one camera keeps up, and on an overloaded box the sources drop frames, which changes what the motion gate sees.
This bench answers the question under it on any box: what one frame of the camera mix costs in each mode,
every frame processed. The busy camera's clip (the person clip, every frame) and an idle camera's (the idle
scene of bench/idle_scene.py, 60 s: two passers-by) run as files through the same Pipeline, engine, analytics
(tracking, the zone and line of cameras_bench, events to a JSON-lines file) and drawing as cameras_bench's
live cameras; the motion gate measures its intervals in the stream's own time, so it decides as it would at
10 fps live. The process CPU of each run divided by its frames is the CPU per frame of that camera kind; the
mix of cameras_bench (a third busy, two thirds idle) costs (busy + 2 idle) / 3, and a box of C cores carries
C / (CPU per frame x fps) cameras if the CPU were the only limit. Prints a table, writes
bench/results/camera_mix_cpu.json.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import tempfile
import time
from pathlib import Path

from bench.benchlib import REPO, default_clip, default_model, machine_info, machine_line, write_json
from bench.cameras_bench import MODES, SETUP
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

FPS = 10.0  # the cameras' rate in cameras_bench (both clips are 10 fps)


def run(model: YoloModel, clip: Path, mode: str, frames: int, events: Path) -> dict:
    """One clip through one mode: CPU per frame, the frames the detector ran on, the tracks counted."""
    stride, gated = MODES[mode]
    src = open_source(str(clip), live=False, name="cam")
    cfg = resolve_classes(parse_analytics({**SETUP, "events": {"jsonl": str(events)}}), model.names)
    analytics = Analytics(cfg, hub=EventHub.build({src.id: cfg.events}))
    with AsyncEngine(model) as base:
        engine = StridedEngine(base, stride, frame_time)
        if gated:
            engine.set_gate(src.id, MotionGate(MotionConfig(), tracks=functools.partial(analytics.track_needs, src.id)))
        pipe = Pipeline(engine, [src], annotator=Annotator(), analytics=analytics)
        cpu0, t0, n = time.process_time(), time.monotonic(), 0
        for _ in pipe.run(max_frames=frames or None):
            n += 1
        cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    analytics.close()
    detected, submitted = engine.per_source.get(src.id, [0, 0])
    snap = next(iter(analytics.snapshot().values()), {})
    return {
        "mode": mode,
        "clip": clip.name,
        "frames": n,
        "cpu_ms_per_frame": 1000 * cpu / max(n, 1),
        "wall_s": wall,
        "detected": detected,
        "detector_share": detected / max(submitted, 1),
        "tracks_total": snap.get("tracks_total", {}),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--modes", default="every,every2,gated")
    ap.add_argument("--busy-frames", type=int, default=0, help="frames of the busy clip (0: all)")
    ap.add_argument("--idle-seconds", type=float, default=60.0, help="length of the idle scene (a passer-by / 30 s)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "camera_mix_cpu.json")
    args = ap.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes or args.busy_frames < 0 or args.idle_seconds < 1:
        print(
            f"camera_mix_cpu: --modes: some of {', '.join(MODES)}; --busy-frames >= 0; --idle-seconds >= 1",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.ERROR)
    model_path = args.model or default_model(script="camera_mix_cpu")
    model = YoloModel.load(model_path, InferenceConfig())
    busy = default_clip("one-by-one-person-detection.mp4")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        idle = idle_scene(busy, Path(tmp) / "idle.mp4", seconds=args.idle_seconds)
        for mode in modes:
            for kind, clip, frames in (("busy", busy, args.busy_frames), ("idle", idle, 0)):
                r = run(model, clip, mode, frames, Path(tmp) / "events.jsonl") | {"kind": kind}
                rows.append(r)
                print(
                    f"[{mode}] {kind}: {r['frames']} frames, {r['cpu_ms_per_frame']:.2f} ms CPU per frame, "
                    f"detector on {r['detector_share'] * 100:.0f} %",
                    file=sys.stderr,
                    flush=True,
                )
    cores = machine_info()["cores"]
    mix = {}
    for mode in modes:
        cost = {r["kind"]: r["cpu_ms_per_frame"] for r in rows if r["mode"] == mode}
        mix[mode] = (cost["busy"] + 2 * cost["idle"]) / 3
    print("\n" + machine_line())
    print(
        f"model {model_path}; busy: {busy.name}, idle: bench/idle_scene.py ({args.idle_seconds:g} s); files, no drops"
    )
    print(f"{'mode':>7}{'kind':>6}{'frames':>8}{'CPU ms/frame':>14}{'detector on':>13}")
    for r in rows:
        print(
            f"{r['mode']:>7}{r['kind']:>6}{r['frames']:>8}{r['cpu_ms_per_frame']:14.2f}"
            f"{r['detector_share'] * 100:12.0f}%"
        )
    every = mix.get("every", float("nan"))
    print(
        f"\nthe mix (a third busy, two thirds idle); CPU-bound cameras = {cores} cores / (CPU per frame x {FPS:g} fps)"
    )
    print(f"{'mode':>7}{'CPU ms/frame':>14}{'vs every':>10}{'CPU-bound cameras':>19}")
    for mode, ms in mix.items():
        print(f"{mode:>7}{ms:14.2f}{every / ms:10.2f}{cores * 1000 / (ms * FPS):19.1f}")
    write_json(
        args.out,
        {
            "model": str(model_path),
            "machine": machine_info(),
            "fps": FPS,
            "idle_seconds": args.idle_seconds,
            "rows": rows,
            "mix_cpu_ms_per_frame": mix,
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
