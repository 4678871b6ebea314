"""Throughput per video format, as a ratio to the H.264 768x432 sample clip, all in one run.

    .venv/bin/python -m bench.formats_bench [--frames 100] [--min-seconds 2] [--formats h265,4k-h265,...]
                                           [--model models/yolov8n/int8] [--out bench/results/formats.json]

Each format (tests/media_formats.py, plus 4K H.264 and a 640x360 camera sub-stream) is made once with
ffmpeg from --frames frames of the sample clip (25 s in, 10 fps), at camera-like bit rates, and cached in
bench/results/formats_cache/. Per format, frames per second after a warm-up (graphs compiled first), the
file run again until --min-seconds are measured; the baseline is measured first and last, and ratios are
to the mean of the two:
  decode    PyAV decoding with frame threads (as files are read) + YUV -> BGR + display matrix
  slice     the same with slice threads, as live streams decode (frame threads add latency)
  pipeline  file source -> INT8 AsyncEngine -> results (no drawing, no output)
  full      + drawing + the annotated H.264 mp4 (VideoFileSink), as `app.py --headless --save` does
  CPU ms    process CPU time (all threads) per frame of `full`
and each as a ratio to the baseline's. Verdict: "works" (every frame delivered, the person found in most
of them) or "refused" with the one-line error. Prints the machine (benchlib.machine_line: CPU model, ISA,
OpenVINO's view), a table; writes JSON.
Only ratios within one run mean anything; the machine here is a shared 2-core VM.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

from bench.benchlib import REPO, default_clip, default_model, machine_info, machine_line, write_json
from tests.media_formats import FORMATS, X264, Format, make_format
from yolovino.inference import AsyncEngine, InferenceConfig, YoloModel
from yolovino.inference.core.errors import InferenceError
from yolovino.inference.draw.annotate import Annotator
from yolovino.inference.outputs.video_file import VideoFileSink
from yolovino.inference.pipeline import Pipeline
from yolovino.inference.sources import open_source
from yolovino.inference.sources.packets import upright

ROWS: dict[str, Format] = {
    **FORMATS,
    "4k-h264": Format(("-vf", "scale=3840:2160", *X264), ".mp4", (2160, 3840), 640),
    "substream-640x360": Format(("-vf", "scale=640:360", *X264), ".mp4", (360, 640), 20),
}
WARMUP = 5  # results before the clock starts (the first waits for the graph of its size to compile)
METRICS = ("decode", "slice", "pipeline", "full")


def repeat(one_pass, min_seconds: float, max_passes: int = 50) -> dict:
    """Run `one_pass()` (-> frames measured, seconds, CPU seconds, extras) until `min_seconds` are measured;
    frames per second and CPU ms per frame over all passes."""
    frames = seconds = cpu = 0.0
    extras: dict = {}
    for _ in range(max_passes):
        n, dt, dc, extras = one_pass()
        if n <= 0:
            break
        frames, seconds, cpu = frames + n, seconds + dt, cpu + dc
        if seconds >= min_seconds:
            break
    if not frames:
        return {"fps": None, "cpu_ms": None, **extras}
    return {"fps": frames / seconds, "cpu_ms": cpu * 1000 / frames, "seconds": seconds, **extras}


def decode_pass(path: Path, thread_type: str):
    """One pass of PyAV decoding + BGR conversion (+ display matrix), timed after WARMUP frames."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_type = thread_type
        t0 = t1 = c0 = c1 = 0.0
        n = 0
        for frame in c.decode(stream):
            upright(frame)
            n += 1
            t1, c1 = time.perf_counter(), time.process_time()
            if n == WARMUP:
                t0, c0 = t1, c1
    return n - WARMUP, t1 - t0, c1 - c0, {}


def pipeline_pass(model: YoloModel, path: Path, out: Path | None):
    """One pass of the pipeline, timed after WARMUP results; with `out`, drawing and an mp4 as well."""
    src = open_source(str(path))
    sinks = [VideoFileSink(out, src.fps or 25.0)] if out else []
    pipe = Pipeline(AsyncEngine(model), [src], sinks, Annotator() if out else None)
    t0 = c0 = t1 = c1 = 0.0
    frames = found = 0
    for fr in pipe.run():  # the clock stops at the last result, before the sinks are closed
        frames += 1
        found += bool((fr.results.class_ids == 0).any())
        t1, c1 = time.perf_counter(), time.process_time()
        if frames == WARMUP:
            t0, c0 = t1, c1
    return frames - WARMUP, t1 - t0, c1 - c0, {"frames": frames, "person_found": found}


def measure(model: YoloModel, path: Path, out: Path, min_seconds: float) -> dict:
    return {
        "decode": repeat(lambda: decode_pass(path, "AUTO"), min_seconds),
        "slice": repeat(lambda: decode_pass(path, "SLICE"), min_seconds),
        "pipeline": repeat(lambda: pipeline_pass(model, path, None), min_seconds),
        "full": repeat(lambda: pipeline_pass(model, path, out), min_seconds),
    }


def make_all(frames: int, names: list[str]) -> dict[str, Path | str]:
    """Every format's file (cached by recipe), or the error that stopped ffmpeg."""
    clip = default_clip()
    recipes = repr([(n, ROWS[n]) for n in names]) + str(frames)
    cache = REPO / "bench" / "results" / "formats_cache" / hashlib.sha1(recipes.encode()).hexdigest()[:12]
    cache.mkdir(parents=True, exist_ok=True)
    cut = cache / "sample.mp4"
    if not cut.exists():
        cmd = ["ffmpeg", "-v", "error", "-y", "-ss", "25", "-i", str(clip), "-t", f"{frames / 10 + 1:g}"]
        subprocess.run([*cmd, "-c", "copy", "-an", str(cut)], check=True, timeout=120)
    files: dict[str, Path | str] = {}
    for name in names:
        fmt = ROWS[name]
        done = cache / f"{name}{fmt.suffix}"
        if not done.exists():
            print(f"[make] {name}", file=sys.stderr, flush=True)
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    made = make_format(name, cut, Path(tmp), frames, fmt=fmt)
                except RuntimeError as exc:
                    files[name] = str(exc).splitlines()[-1][:200]
                    continue
                made.replace(done)
        files[name] = done
    return files


def describe(path: Path) -> str:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return f"{s.codec_context.name} {s.codec_context.format.name if s.codec_context.format else '?'}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100, help="frames per format (10 fps: 10 s of the clip)")
    ap.add_argument("--formats", default=",".join(ROWS), help="comma-separated, of: " + ", ".join(ROWS))
    ap.add_argument("--min-seconds", type=float, default=2.0, help="each figure repeats the file until this long")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "formats.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    names = [n.strip() for n in args.formats.split(",") if n.strip()]
    if unknown := [n for n in names if n not in ROWS]:
        ap.error(f"unknown formats: {', '.join(unknown)}")
    if "h264" not in names:
        names.insert(0, "h264")  # the baseline
    machine = machine_info()
    model_path = args.model or default_model(script="formats_bench")
    model = YoloModel.load(model_path, InferenceConfig())
    files = make_all(args.frames, names)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:

        def row_for(name: str) -> dict:
            fmt, path = ROWS[name], files[name]
            row: dict = {"format": name, "size": f"{fmt.hw[1]}x{fmt.hw[0]}"}
            if isinstance(path, str):
                return {**row, "verdict": "not made", "error": path}
            try:
                row["codec"] = describe(path)
                row.update(measure(model, path, Path(tmp) / f"{name}.mp4", args.min_seconds))
            except InferenceError as exc:
                return {**row, "verdict": "refused", "error": str(exc)}
            expected = 1 if name == "one-frame" else args.frames
            full = row["full"]
            ok = full["frames"] == expected and full["person_found"] >= full["frames"] // 2
            row["verdict"] = "works" if ok else f"wrong ({full['frames']} frames, person in {full['person_found']})"
            print(f"[{name}] {row}", file=sys.stderr, flush=True)
            return row

        rows = [row_for(name) for name in names]
        after = row_for("h264")  # the baseline again: ratios are taken to the mean of both measurements
    before = next(r for r in rows if r["format"] == "h264")
    base = {k: (before[k]["fps"] + after[k]["fps"]) / 2 for k in METRICS}
    for r in rows:
        r["ratio"] = {k: r[k]["fps"] / base[k] if r.get(k, {}).get("fps") else None for k in METRICS}
    f = lambda v, d=1: "-" if v is None else f"{v:.{d}f}"  # noqa: E731
    print(
        f"\n{args.frames} frames per format, at least {args.min_seconds:g} s per figure; model {model_path}; "
        f"PyAV {av.__version__} (libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))})\n"
        + machine_line(machine)
    )
    print(
        "baseline h264 768x432 before / after the rows (FPS): "
        + ", ".join(f"{k} {before[k]['fps']:.1f} / {after[k]['fps']:.1f}" for k in METRICS)
    )
    head = [*METRICS, "CPU ms", *(f"{k} x" for k in METRICS)]
    print(f"{'format':<18}{'codec':<22}{'size':<10}{'verdict':<9}" + "".join(f"{h:>11}" for h in head))
    for r in rows:
        cells = [f(r.get(k, {}).get("fps")) for k in METRICS] + [f(r.get("full", {}).get("cpu_ms"))]
        cells += [f(r.get("ratio", {}).get(k), 2) for k in METRICS]
        print(
            f"{r['format']:<18}{r.get('codec', '-'):<22}{r['size']:<10}{r['verdict']:<9}"
            + "".join(f"{c:>11}" for c in cells)
            + (f"  {r['error']}" if "error" in r else "")
        )
    print(
        "FPS. decode / slice: PyAV decoding + BGR conversion with frame / slice threads (slice: as live streams "
        "decode); pipeline: file source + INT8 inference + results; full: + drawing + annotated H.264 mp4; "
        "CPU ms: per frame of full, all threads; x: ratio to the h264 768x432 baseline. One frame has no rate."
    )
    write_json(
        args.out,
        {
            "frames": args.frames,
            "min_seconds": args.min_seconds,
            "model": str(model_path),
            "machine": machine,
            "baseline_after": after,
            "rows": rows,
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
