"""Where a frame's CPU goes: decode, colour conversion, inference, results, tracker, zones/lines, drawing, encode.

    .venv/bin/python -m bench.stages_bench [--model models/yolov8n/int8] [--clip VIDEO] [--frames 300]
                                          [--out bench/results/stages.json]

The pipeline's own code for each stage, run one stage at a time over the same frames of a sample clip
(default car-detection.mp4, 768x432, the cameras bench's size), so that all the CPU a stage's interval
takes is that stage's:
  decode      PyAV decoding packets to YUV frames, as the file source does (frame threads), and with the
              decoder's other threading choices: slice threads (the live sources' choice) and one thread
  colour      av.VideoFrame.to_ndarray("bgr24") (swscale), the BGR copy the graph and the drawing take
  inference   one synchronous infer of the compiled graph (letterbox, RGB, /255 in the graph) per frame
  results     the task's decode of the output tensors into Results (boxes, NMS)
  tracker     Tracker.update inside the analytics stage (the batched ByteTrack), and the same frames through
              the library's per-object ByteTrack (reference, not in the total)
  zones/lines the rest of Analytics.process: a line and a zone, events, the scene to draw
  draw        Annotator.annotate with the scene (boxes, labels, trails, zone, line, counts)
  encode      VideoFileSink.write_image: BGR -> I420 and x264 (ultrafast), the annotated recording
Columns: this thread's CPU (`time.thread_time`) and the whole process's (`time.process_time`: a stage with
its own threads, decode, inference and encode, counts them there) per frame, the process column's share,
and the total with and without a video output (drawing and encoding happen only for a source whose outputs
show pictures, Pipeline(draw_for_sinks=True) in the service). Prints the CPU model / ISA, a table, the JSON.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np

from bench.benchlib import REPO, default_clip, default_model, machine_info, machine_line, write_json
from yolovino.inference import InferenceConfig, YoloModel
from yolovino.inference.analytics.config import parse_analytics, resolve_classes
from yolovino.inference.analytics.stage import Analytics
from yolovino.inference.analytics.tracker import Tracker, TrackerConfig, library_bytetrack
from yolovino.inference.core.results import Frame, Results
from yolovino.inference.draw.annotate import Annotator
from yolovino.inference.outputs.video_file import VideoFileSink
from yolovino.inference.sources import SourceStats

ANALYTICS = {  # a line across the lane and a zone over its lower half (fractions of the frame)
    "lines": [{"name": "middle", "points": [[0.0, 0.5], [1.0, 0.5]], "anchor": "center"}],
    "zones": [{"name": "lower", "points": [[0.2, 0.55], [0.8, 0.55], [0.8, 0.98], [0.2, 0.98]]}],
}


WARM = 5  # the first frames of each per-frame stage are left out (first-call set-up: state, buffers)


class Clock:
    """Thread and process CPU seconds of each `with clock.timing():` block (one per frame)."""

    def __init__(self) -> None:
        self.threads: list[float] = []
        self.processes: list[float] = []

    @contextmanager
    def timing(self):
        t, p = time.thread_time(), time.process_time()
        try:
            yield
        finally:
            self.threads.append(time.thread_time() - t)
            self.processes.append(time.process_time() - p)

    def per_frame(self, frames: int | None = None) -> dict:
        """ms per frame: the mean over the blocks after WARM, or (one block for all) its total / frames."""
        if frames is not None:
            return {"thread_ms": sum(self.threads) / frames * 1e3, "process_ms": sum(self.processes) / frames * 1e3}
        return {
            "thread_ms": float(np.mean(self.threads[WARM:])) * 1e3,
            "process_ms": float(np.mean(self.processes[WARM:])) * 1e3,
        }


def decode(clip: Path, frames: int, thread_type: str, threads: int) -> tuple[list, Clock, float]:
    """The clip's first `frames` frames as av.VideoFrames, with the CPU and wall time of decoding them."""
    clock = Clock()
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        stream.thread_type = thread_type
        stream.codec_context.thread_count = threads
        out: list = []
        wall = time.perf_counter()
        with clock.timing():
            for packet in container.demux(stream):
                out.extend(packet.decode())
                if len(out) >= frames:
                    break
        wall = time.perf_counter() - wall
    return out[:frames], clock, wall


class Source:
    """What the analytics stage reads of a source."""

    def __init__(self, fps: float) -> None:
        self.id, self.fps, self.stats = "clip", fps, SourceStats()


def stage_table(model_path: Path, clip: Path, frames: int) -> dict:
    clocks: dict[str, Clock] = {}
    decoding = {}
    for name, thread_type, threads in (
        ("frame threads", "AUTO", 0),
        ("slice threads", "SLICE", 0),
        ("1 thread", "NONE", 1),
    ):
        decoded, clock, wall = decode(clip, frames, thread_type, threads)
        decoding[name] = {**clock.per_frame(len(decoded)), "wall_ms": wall / len(decoded) * 1e3}
        if name == "frame threads":
            clocks["decode"], n = clock, len(decoded)
    with av.open(str(clip)) as c:
        fps = float(c.streams.video[0].average_rate or 25)

    clocks["colour"] = Clock()
    images = []
    for f in decoded:
        with clocks["colour"].timing():
            images.append(f.to_ndarray(format="bgr24"))

    model = YoloModel.load(model_path, InferenceConfig())
    prepared = model.prepare(images[0].shape[:2])
    request = prepared.compiled.create_infer_request()
    request.infer({0: images[0][None]}, share_inputs=True)  # warm-up (first-infer allocations)
    clocks["inference"], raw = Clock(), []
    for image in images:
        with clocks["inference"].timing():
            request.infer({0: image[None]}, share_inputs=True)
        raw.append([request.get_output_tensor(i).data.copy() for i in range(model.task.num_outputs)])

    clocks["results"], results = Clock(), []
    for outputs in raw:
        with clocks["results"].timing():
            results.append(model.decode(outputs, prepared.letterbox))

    analytics = Analytics(resolve_classes(parse_analytics(ANALYTICS), model.names))
    clocks["tracker"], clocks["zones/lines"], src = Clock(), Clock(), Source(fps)
    tracker_update: Callable = Tracker.update
    inner = Clock()  # the tracker's time within each frame's analytics.process

    def timed_update(self, res: Results, t: float) -> Results:
        with inner.timing():
            return tracker_update(self, res, t)

    total, tracked, infos = Clock(), [], []
    Tracker.update = timed_update  # type: ignore[method-assign,assignment]  # this bench's probe, undone below
    try:
        for k, (image, res) in enumerate(zip(images, results, strict=True)):
            frame = Frame(image, k, src.id, k / fps, time.monotonic())
            inner.threads, inner.processes = [], []
            with total.timing():
                res, info = analytics.process(src, frame, res)
            tracked.append(res)
            infos.append(info)
            clocks["tracker"].threads.append(sum(inner.threads))
            clocks["tracker"].processes.append(sum(inner.processes))
    finally:
        Tracker.update = tracker_update  # type: ignore[method-assign]
    analytics.close()
    clocks["zones/lines"].threads = [a - b for a, b in zip(total.threads, clocks["tracker"].threads, strict=True)]
    clocks["zones/lines"].processes = [a - b for a, b in zip(total.processes, clocks["tracker"].processes, strict=True)]
    reference, ref = Clock(), Tracker(TrackerConfig(), fps=fps, library=library_bytetrack)
    for k, res in enumerate(results):
        with reference.timing():
            ref.update(res, k / fps)

    clocks["draw"], annotated, annotator = Clock(), [], Annotator()
    for image, res, info in zip(images, tracked, infos, strict=True):
        with clocks["draw"].timing():
            annotated.append(annotator.annotate(image, res, None, scene=info.scene if info else None))

    clocks["encode"] = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        sink = VideoFileSink(Path(tmp) / "stages.mp4", fps)
        with clocks["encode"].timing():
            for k, image in enumerate(annotated):
                sink.write_image(image, k / fps)
            sink.close()

    whole = {"decode": n, "encode": n}  # one block for all frames (the decoder and encoder work ahead/behind)
    rows = {name: c.per_frame(whole.get(name)) for name, c in clocks.items()}
    return {
        "clip": clip.name,
        "frames": n,
        "frame_hw": list(images[0].shape[:2]),
        "model": str(model_path),
        "hint": model.config.hint,
        "detections_per_frame": float(np.mean([len(r) for r in results])),
        "stages": rows,
        "tracker_per_object_reference": reference.per_frame(),
        "decoding": decoding,
        "total_ms": sum(r["process_ms"] for r in rows.values()),
        "total_no_video_output_ms": sum(r["process_ms"] for k, r in rows.items() if k not in ("draw", "encode")),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--clip", type=Path, default=None)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "stages.json")
    args = ap.parse_args()
    clip = args.clip or default_clip("car-detection.mp4")
    if not clip.is_file() or args.frames < 10:
        print(
            f"stages_bench: {clip}: no such clip" if not clip.is_file() else "stages_bench: --frames >= 10",
            file=sys.stderr,
        )
        return 2
    model = args.model or default_model(script="stages_bench")
    r = stage_table(model, clip, args.frames)
    print(machine_line())
    h, w = r["frame_hw"]
    print(f"{r['clip']} {w}x{h}, {r['frames']} frames, {r['detections_per_frame']:.1f} detections/frame")
    print(f"model {r['model']} ({r['hint']}); CPU ms per frame")
    print(f"{'stage':<13}{'thread ms':>10}{'process ms':>11}{'share':>7}")
    for name, row in r["stages"].items():
        print(f"{name:<13}{row['thread_ms']:10.3f}{row['process_ms']:11.3f}{row['process_ms'] / r['total_ms']:7.1%}")
    print(
        f"{'total':<13}{'':>10}{r['total_ms']:11.3f}   (no video output: {r['total_no_video_output_ms']:.3f} ms, "
        f"{r['total_no_video_output_ms'] / r['total_ms']:.0%})"
    )
    ref = r["tracker_per_object_reference"]
    print(
        f"tracker, the library's per-object ByteTrack on the same frames: {ref['thread_ms']:.3f} ms (not in the total)"
    )
    print("decoder threading (per frame):  thread ms  process ms  wall ms")
    for name, d in r["decoding"].items():
        print(f"  {name:<28}{d['thread_ms']:10.3f}{d['process_ms']:12.3f}{d['wall_ms']:9.3f}")
    write_json(args.out, {"machine": machine_info(), **r})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
