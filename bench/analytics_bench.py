"""What analytics cost and what detect-every-Nth-frame saves, in one run.

    .venv/bin/python -m bench.analytics_bench [--model models/yolov8n/int8] [--frames 300] [--repeats 3]

1. overhead   CPU time of the analytics stage per frame with 20 moving objects (2 zones, 2 lines, events to
              a JSON-lines file through the hub's queue), split into the tracker library's update and the
              rest (our zones, lines, events, bookkeeping); median and p95 over 500 frames.
2. throughput the pipeline (file source unpaced, annotated, results only) on the person clip with and without
              analytics, runs alternated `--repeats` times: the ratio of frames per second (target >= 0.95).
3. stride     detect every 1st, 2nd, 3rd frame: counts on both clips against the truth counted by eye
              (replaying one detection pass per clip), and the pipeline's throughput with StridedEngine
              relative to stride 1 on the person clip (what the skipped inferences buy).
Prints tables and writes bench/results/analytics.json. Ratios within one run only.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.analyticslib import Cam, detect_clip, replay, score
from bench.benchlib import REPO, default_clip, default_model, machine_info, machine_line, write_json
from bench.tracker_compare import moving_boxes
from yolovino.inference import AsyncEngine, InferenceConfig, YoloModel
from yolovino.inference.analytics.config import parse_analytics, resolve_classes
from yolovino.inference.analytics.stage import Analytics
from yolovino.inference.core.results import Frame
from yolovino.inference.draw.annotate import Annotator
from yolovino.inference.model.stride import StridedEngine
from yolovino.inference.notify.hub import EventHub
from yolovino.inference.pipeline import Pipeline
from yolovino.inference.sources import open_source

SCENE = {
    "zones": [
        {"name": "left", "points": [[0.05, 0.1], [0.45, 0.1], [0.45, 0.9], [0.05, 0.9]], "dwell_s": 3},
        {"name": "right", "points": [[0.55, 0.2], [0.95, 0.2], [0.9, 0.95], [0.6, 0.9]]},
    ],
    "lines": [{"name": "v", "points": [[0.5, 0.0], [0.5, 1.0]]}, {"name": "h", "points": [[0.0, 0.5], [1.0, 0.5]]}],
}


def overhead(frames: int = 500) -> dict:
    """Per-frame CPU of Analytics.process at 20 objects, and of the tracker library's part of it."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = resolve_classes(parse_analytics({**SCENE, "events": {"jsonl": f"{tmp}/e.jsonl"}}), {0: "person"})
        analytics = Analytics(cfg, hub=EventHub.build({"cam": cfg.events}))
        cam, image = Cam("cam", 10.0), np.zeros((432, 768, 3), np.uint8)
        total, lib, pure, events = [], [], [], 0
        for k, (_, res) in enumerate(moving_boxes(20, frames, seed=3)):
            frame = Frame(image, k, "cam", k / 10, 0.0)
            t0 = time.thread_time()  # this thread's CPU: the queue consumers' threads are not counted
            _, info = analytics.process(cam, frame, res)
            total.append(time.thread_time() - t0)
            events += len(info.events) if info else 0
        # the same detections through a bare Tracker (our adapter + the library), and through the library alone
        import supervision as sv

        from yolovino.inference.analytics.tracker import Tracker

        bare, alone = Tracker(cfg.tracker, fps=10.0), Tracker(cfg.tracker, fps=10.0)._lib
        for k, (_, res) in enumerate(moving_boxes(20, frames, seed=3)):
            t0 = time.thread_time()
            bare.update(res, k / 10)
            lib.append(time.thread_time() - t0)
            det = sv.Detections(xyxy=res.boxes, confidence=res.scores, class_id=res.class_ids.astype(int))
            t0 = time.thread_time()
            alone.update(det, timestamp=k / 10)
            pure.append(time.thread_time() - t0)
        analytics.close()
    tot, lb, pu = (np.array(x[50:]) * 1e3 for x in (total, lib, pure))
    return {
        "objects": 20,
        "frames": frames,
        "events": events,
        "total_ms_median": float(np.median(tot)),
        "total_ms_p95": float(np.percentile(tot, 95)),
        "tracker_ms_median": float(np.median(lb)),
        "tracker_ms_p95": float(np.percentile(lb, 95)),
        "library_ms_median": float(np.median(pu)),
        "adapter_ms_median": float(np.median(lb) - np.median(pu)),
        "regions_events_ms_median": float(np.median(tot) - np.median(lb)),
    }


def pipeline_fps(
    model: YoloModel, clip: Path, frames: int, analytics_cfg: dict | None, stride: int = 1
) -> tuple[float, float]:
    """Frames per second of the annotated pipeline over `frames` frames of the clip (after 20 warm-up frames),
    and the process's CPU ms per frame over the same frames (all threads: decoder, OpenVINO, Python), which
    other load on a shared machine disturbs far less than the wall clock."""
    analytics = None
    if analytics_cfg is not None:
        analytics = Analytics(resolve_classes(parse_analytics(analytics_cfg), model.names))
    engine = AsyncEngine(model)
    eng = StridedEngine(engine, stride) if stride > 1 else engine
    pipe = Pipeline(eng, [open_source(str(clip), live=False)], annotator=Annotator(), analytics=analytics)
    n, t0, c0 = 0, None, 0.0
    for _ in pipe.run(max_frames=frames + 20):
        n += 1
        if n == 20:
            t0, c0 = time.perf_counter(), time.process_time()
    elapsed = time.perf_counter() - (t0 or time.perf_counter())
    cpu = time.process_time() - c0
    engine.close()
    if analytics is not None:
        analytics.close()
    return (n - 20) / max(elapsed, 1e-9), cpu * 1e3 / max(n - 20, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--frames", type=int, default=300, help="frames per throughput run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "analytics.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    model_path = args.model or default_model(script="analytics_bench")
    report: dict = {"model": str(model_path), "machine": machine_info()}

    report["overhead"] = o = overhead()
    print(f"[overhead] {o['total_ms_median']:.3f} ms/frame", file=sys.stderr, flush=True)

    model = YoloModel.load(model_path, InferenceConfig())
    person = default_clip("one-by-one-person-detection.mp4")
    setup = {
        "zones": [{"name": "table", "points": [[0.45, 0.8], [0.7, 0.8], [0.7, 0.96], [0.45, 0.96]]}],
        "lines": [{"name": "l", "points": [[0.3, 0.0], [0.3, 1.0]]}],
    }
    runs: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(args.repeats):  # alternated, so drift on a shared machine hits both alike
        for key, cfg in (("off", None), ("on", setup)):
            fps, ms = pipeline_fps(model, person, args.frames, cfg)
            runs[key].append(fps)
            cpu[key].append(ms)
    ratio = float(np.median(runs["on"]) / np.median(runs["off"]))
    cpu_ratio = float(np.median(cpu["off"]) / np.median(cpu["on"]))
    report["throughput"] = {"runs_fps": runs, "cpu_ms_per_frame": cpu, "ratio_on_off": ratio, "cpu_ratio": cpu_ratio}
    print(f"[throughput] on/off {ratio:.3f}", file=sys.stderr, flush=True)

    stride_fps: dict[int, list[float]] = {s: [] for s in (1, 2, 3)}
    stride_cpu: dict[int, list[float]] = {s: [] for s in (1, 2, 3)}
    for _ in range(args.repeats):
        for s in stride_fps:
            fps, ms = pipeline_fps(model, person, args.frames, setup, stride=s)
            stride_fps[s].append(fps)
            stride_cpu[s].append(ms)
    dets = {
        n: detect_clip(model_path, default_clip(n)) for n in ("one-by-one-person-detection.mp4", "car-detection.mp4")
    }
    strides = []
    for s in (1, 2, 3):
        row: dict = {"stride": s, "inferences_per_frame": 1 / s, "fps": float(np.median(stride_fps[s]))}
        row["fps_vs_stride1"] = row["fps"] / float(np.median(stride_fps[1]))
        row["cpu_ms_per_frame"] = float(np.median(stride_cpu[s]))
        for name, d in dets.items():
            row[name] = score(d, *replay(d, stride=s))
        strides.append(row)
    report["stride"] = strides

    print("\n" + machine_line())
    print(f"model {model_path}")
    print(f"1. analytics CPU per frame, 20 objects, 2 zones, 2 lines, events to JSONL ({o['events']} events):")
    print(
        f"   total {o['total_ms_median']:.3f} ms median, {o['total_ms_p95']:.3f} p95; medians: trackers library "
        f"{o['library_ms_median']:.3f}, our tracker adapter {o['adapter_ms_median']:.3f}, zones+lines+events "
        f"{o['regions_events_ms_median']:.3f}"
    )
    off, on = (", ".join(f"{x:.1f}" for x in runs[k]) for k in ("off", "on"))
    print(f"2. pipeline FPS, person clip: analytics off {np.median(runs['off']):.1f} ({off})")
    print(f"   analytics on {np.median(runs['on']):.1f} ({on}): ratio on/off {ratio:.3f}")
    print(
        f"   process CPU per frame: off {np.median(cpu['off']):.1f} ms, on {np.median(cpu['on']):.1f} ms: "
        f"throughput ratio from CPU {cpu_ratio:.3f} (target >= 0.95)"
    )
    print("3. detect every Nth frame (truth: 6 people, 6 table entries; 4 cars, 2 in, 2 out)")
    print(
        f"   {'stride':>6}{'infer/frame':>12}{'FPS':>8}{'vs 1':>7}{'CPU ms':>8}   {'people':>6}{'entries':>8}"
        f"   {'cars':>5}{'in':>4}{'out':>4}  correct"
    )
    for r in strides:
        p, c = r["one-by-one-person-detection.mp4"], r["car-detection.mp4"]
        ok = "yes" if p["correct"] and c["correct"] else "no"
        print(
            f"   {r['stride']:>6}{r['inferences_per_frame']:>12.2f}{r['fps']:8.1f}{r['fps_vs_stride1']:7.2f}"
            f"{r['cpu_ms_per_frame']:8.1f}   "
            f"{p['people']:>6}{p['zone_entries']:>8}   {c['tracks']:>5}{c['in']:>4}{c['out']:>4}  {ok}"
        )
    write_json(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
