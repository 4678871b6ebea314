"""Issue 25 item 3 / issue 27 item 1: the CPU of recording one camera by packet copy vs annotated (encoded)
recording, and of event clips (copied vs encoded) against none.

    .venv/bin/python -m bench.record_bench [--clip one-by-one-person-detection.mp4] [--seconds 40] [--rounds 3]
                                          [--event-every 10] [--pipeline ROUNDS] [--model models/yolov8n/int8]
                                          [--out bench/results/record.json]

One camera = the sample clip (768x432 H.264, 10 fps) read from a file as fast as it decodes, every frame
decoded to BGR as the pipeline's reader does. Per mode, the process CPU time (every thread: reader, FFmpeg,
the recorders' writer threads, x264) per frame over the first `--seconds` of the clip:
  decode            the source alone: the baseline every mode pays anyway (detection needs the frames)
  record-copy       + PacketRecorder: the tap's copies of the packets, muxed into 60 s segments
  record-annotated  + SegmentRecorder: every frame converted to I420 and encoded by x264 (what `record:` did
                    before; drawing the boxes, which annotated recording also needs, is not counted)
  clips-copy        + ClipRecorder on the packets, an event every `--event-every` s (pre 5 s, post 5 s)
  clips-encoded     + ClipRecorder on the frames (webcams, image folders, `annotated: true`), same events;
                    the reader waits while 30 frames are queued for the encoder, so none is dropped
The events are synthetic (an Event at the frame time every `--event-every` s, marked as the hub marks them)
so that the detector's cost, the same in every mode, does not drown the difference. `--pipeline` adds the
whole thing on the car clip: detector (the INT8 model), tracker, a line across the lane, events through the
hub, with and without copied clips (pre/post 2 s; every crossing gets one), alternating, CPU per frame.
Modes alternate within each round; each mode's figure is the median over rounds; the recording cost of a
mode is its CPU per frame minus the decode baseline's (negative: below the run's noise), and the table gives
copy / annotated and clips / none ratios.
Prints one table and writes bench/results/record.json. Only ratios within one run mean anything.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.benchlib import REPO, default_clip, machine_info, machine_line, write_json
from yolovino.inference.core.events import Event, EventKind
from yolovino.inference.core.results import Frame, FrameResult, Results
from yolovino.inference.notify.config import ClipOutput
from yolovino.inference.outputs.base import Sink
from yolovino.inference.outputs.clips import ClipRecorder
from yolovino.inference.outputs.record_copy import PacketRecorder
from yolovino.inference.outputs.recording import SegmentRecorder
from yolovino.inference.sources import open_source

MODES = ("decode", "record-copy", "record-annotated", "clips-copy", "clips-encoded")


def run_mode(mode: str, clip: Path, seconds: float, event_every: float, folder: Path) -> dict:
    """CPU seconds per frame of reading `seconds` of the clip with `mode`'s recorder; its files' sizes."""
    src = open_source(str(clip), live=False, name="cam")
    fps = src.fps or 25.0
    sink: Sink | None = None
    if mode == "record-copy":
        assert src.packets is not None
        sink = PacketRecorder(folder, "cam", src.packets, segment_seconds=60)
    elif mode == "record-annotated":
        sink = SegmentRecorder(folder, "cam", fps=fps, segment_seconds=60)
    elif mode.startswith("clips"):
        cfg = ClipOutput(dir=str(folder), pre_s=5, post_s=5)
        sink = ClipRecorder("cam", cfg, tap=src.packets if mode == "clips-copy" else None, fps=fps)
    frames, next_event = 0, event_every
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for frame in src:
        t = frame.pts if frame.pts is not None else 0.0
        if t >= seconds:
            break
        frames += 1
        if isinstance(sink, SegmentRecorder):
            sink.write_image(frame.image, t)
        elif isinstance(sink, ClipRecorder):
            sink.write(FrameResult(frame, _no_results(frame), None, 0.0, 0.0))
            while sink.backlog > 30:  # a file decodes faster than real time; a camera's frames come at 10 fps
                time.sleep(0.002)  # (waiting costs no CPU: the figures stay CPU per frame)
            if t >= next_event:
                next_event += event_every
                sink.mark([_event(frame, t)])
    if sink is not None:
        sink.close()  # the writer threads' last work is inside the measured CPU time
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    src.close()
    files = sorted(folder.rglob("*.mp4"))
    return {
        "frames": frames,
        "cpu_ms_per_frame": 1000 * cpu / max(frames, 1),
        "wall_s": wall,
        "files": len(files),
        "mb": sum(p.stat().st_size for p in files) / 1e6,
    }


def _no_results(frame: Frame) -> Results:
    import numpy as np

    h, w = frame.image.shape[:2]
    return Results(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32), {}, (h, w))


def _event(frame: Frame, t: float) -> Event:
    return Event(EventKind.CROSSED, time.time(), "cam", 1, 2, "car", 0.9, (0, 0, 10, 10), frame.index, t, line="gate")


def run_pipeline(model_dir: Path, clip: Path, clips_dir: Path | None) -> dict:
    """The real pipeline on `clip` with a line and events; with copied clips into `clips_dir` when given."""
    from yolovino.inference import AsyncEngine, InferenceConfig, YoloModel
    from yolovino.inference.analytics.config import parse_analytics, resolve_classes
    from yolovino.inference.analytics.stage import Analytics
    from yolovino.inference.notify.hub import EventHub
    from yolovino.inference.pipeline import Pipeline

    model = YoloModel.load(next(model_dir.glob("*.xml")), InferenceConfig())
    events: dict = {"kinds": ["line_crossed"]}
    if clips_dir is not None:
        events["clips"] = {"dir": str(clips_dir), "pre_s": 2, "post_s": 2}
    line = {"name": "middle", "points": [[0.0, 0.5], [1.0, 0.5]], "anchor": "center"}
    cfg = resolve_classes(parse_analytics({"lines": [line], "events": events}), model.names)
    src = open_source(str(clip), live=False, name="cam")
    hub = EventHub.build({"cam": cfg.events})
    sinks: list[Sink] = []
    if cfg.events.clips is not None:
        rec = ClipRecorder("cam", cfg.events.clips, tap=src.packets, fps=src.fps or 25.0)
        hub.attach_clips("cam", rec)
        sinks.append(rec)
    stage = Analytics({"cam": cfg}, hub=hub)
    frames, crossings = 0, 0
    cpu0 = time.process_time()
    with AsyncEngine(model) as engine:
        for fr in Pipeline(engine, [src], sinks=sinks, analytics=stage).run():
            frames += 1
            crossings += sum(e.kind == EventKind.CROSSED for e in fr.analytics.events) if fr.analytics else 0
    stage.close()
    cpu = time.process_time() - cpu0
    files = len(list(clips_dir.rglob("*.mp4"))) if clips_dir is not None else 0
    return {"frames": frames, "crossings": crossings, "clips": files, "cpu_ms_per_frame": 1000 * cpu / max(frames, 1)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clip", default="one-by-one-person-detection.mp4")
    ap.add_argument("--seconds", type=float, default=40.0, help="of the clip read per mode and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--event-every", type=float, default=10.0)
    ap.add_argument("--out", default=str(REPO / "bench/results/record.json"))
    ap.add_argument("--pipeline", type=int, default=0, metavar="ROUNDS", help="also the real pipeline, N rounds")
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: models/yolov8n/int8)")
    args = ap.parse_args(argv)
    clip = default_clip(args.clip)
    info = machine_info()
    print(machine_line(info), flush=True)
    runs: dict[str, list[dict]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for mode in MODES:
                folder = Path(tmp) / f"{mode}-{r}"
                runs[mode].append(run_mode(mode, clip, args.seconds, args.event_every, folder))
                print(f"round {r + 1} {mode}: {runs[mode][-1]}", flush=True)
    med = {m: statistics.median(x["cpu_ms_per_frame"] for x in runs[m]) for m in MODES}
    cost = {m: med[m] - med["decode"] for m in MODES}
    rows = []
    print(f"\n{args.seconds:.0f} s of {clip.name} per mode, {args.rounds} rounds (median), CPU of the whole process")
    print(f"{'mode':<18}{'CPU ms/frame':>14}{'recording ms/frame':>20}{'% of a core @ fps':>19}{'files':>7}{'MB':>8}")
    fps = runs["decode"][0]["frames"] / args.seconds
    for m in MODES:
        last = runs[m][-1]
        core = 100 * cost[m] * fps / 1000
        rows.append({"mode": m, "cpu_ms_per_frame": med[m], "cost_ms_per_frame": cost[m], "core_pct": core, **last})
        print(f"{m:<18}{med[m]:>14.2f}{cost[m]:>20.2f}{core:>18.1f}%{last['files']:>7}{last['mb']:>8.1f}")
    ratio = cost["record-copy"] / cost["record-annotated"] if cost["record-annotated"] > 0 else float("nan")
    clips_copy = med["clips-copy"] / med["decode"]
    clips_enc = med["clips-encoded"] / med["decode"]
    noise = " (copy's cost is below this run's noise)" if ratio <= 0 else ""
    print(f"\nrecording by copy / annotated recording (cost over decode): {ratio:.3f} (target <= 0.2){noise}")
    print(f"run with copied clips / without: {clips_copy:.3f}; with encoded clips / without: {clips_enc:.3f}")
    pipeline: dict = {}
    if args.pipeline:
        from bench.benchlib import default_model

        model_dir = args.model or default_model(script="record_bench")
        cars = default_clip("car-detection.mp4")
        pipe_runs: dict[str, list[dict]] = {"no clips": [], "copied clips": []}
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.pipeline):
                for name in pipe_runs:
                    into = Path(tmp) / f"{r}" if name == "copied clips" else None
                    pipe_runs[name].append(run_pipeline(model_dir, cars, into))
                    print(f"round {r + 1} pipeline {name}: {pipe_runs[name][-1]}", flush=True)
        pmed = {k: statistics.median(x["cpu_ms_per_frame"] for x in v) for k, v in pipe_runs.items()}
        print(f"\nthe pipeline on {cars.name} (detector {model_dir}, a line, events), {args.pipeline} rounds (median)")
        print(f"{'run':<16}{'CPU ms/frame':>14}{'crossings':>11}{'clips':>7}")
        for k, v in pipe_runs.items():
            print(f"{k:<16}{pmed[k]:>14.2f}{v[-1]['crossings']:>11}{v[-1]['clips']:>7}")
        ratio_p = pmed["copied clips"] / pmed["no clips"]
        print(f"with copied clips / without: {ratio_p:.3f}")
        pipeline = {"model": str(model_dir), "clip": cars.name, "runs": pipe_runs, "ratio": ratio_p}
    write_json(
        args.out,
        {
            "machine": info,
            "clip": clip.name,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "event_every_s": args.event_every,
            "rows": rows,
            "runs": runs,
            "copy_over_annotated": ratio,
            "clips_copy_over_none": clips_copy,
            "clips_encoded_over_none": clips_enc,
            "pipeline": pipeline,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
