"""Pipeline throughput vs the OpenVINO ceiling, square vs rect letterbox, on one clip in one run.

    .venv/bin/python -m bench.pipeline_bench [--model models/yolov8n/int8] [--clip VIDEO] [--frames 300]
                                             [--seconds 10] [--out bench/results/pipeline.json]

For each letterbox mode (square = the model's 640x640, rect = the smallest stride-multiple rectangle,
384x640 for 16:9) it measures, on the graph our runtime really compiles (uint8 BGR frame in, letterbox
in the graph):
  ceiling   OpenVINO's own `benchmark_app` (THROUGHPUT hint, random input) on that graph; if benchmark_app
            is missing, a tight AsyncInferQueue loop on the compiled graph with one fixed frame (labelled)
  engine    our AsyncEngine over pre-decoded frames (infer + result decoding, no I/O)
  pipeline  the whole Pipeline: PyAV decode -> engine -> Annotator -> H.264 mp4 encode (VideoFileSink)
and prints a table with each row's ratio to the ceiling of the same mode, then writes the JSON.
Numbers are only comparable within one run on one machine (shared CPUs make them noisy).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

import av  # noqa: E402
import numpy as np  # noqa: E402
import openvino as ov  # noqa: E402

from bench.benchlib import default_clip, default_model, write_json  # noqa: E402
from yolovino.inference import AsyncEngine, InferenceConfig, YoloModel  # noqa: E402
from yolovino.inference.draw.annotate import Annotator  # noqa: E402
from yolovino.inference.model.ir import build_graph  # noqa: E402
from yolovino.inference.outputs.video_file import VideoFileSink  # noqa: E402
from yolovino.inference.pipeline import Pipeline  # noqa: E402
from yolovino.inference.sources import open_source  # noqa: E402


def decode(clip: Path, n: int) -> list[np.ndarray]:
    frames = []
    with av.open(str(clip)) as c:
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="bgr24"))
            if len(frames) >= n:
                break
    return frames


def _benchmark_app() -> str | None:
    local = Path(sys.executable).parent / "benchmark_app"
    return shutil.which("benchmark_app") or (str(local) if local.exists() else None)


def _run_benchmark_app(tool: str, xml: Path, device: str, seconds: float, precision: str | None) -> float | None:
    extra = ["-infer_precision", precision] if precision else []
    proc = subprocess.run(
        [tool, "-m", str(xml), "-d", device, "-hint", "throughput", "-t", str(int(seconds)), *extra],
        capture_output=True,
        text=True,
        timeout=seconds * 6 + 120,
    )
    m = re.search(r"Throughput:\s*([\d.]+)\s*FPS", proc.stdout)
    if not m:
        print(f"benchmark_app failed ({proc.returncode}): {(proc.stdout + proc.stderr)[-300:]}", file=sys.stderr)
    return float(m.group(1)) if m else None


def ceiling(
    model: YoloModel, frame: np.ndarray, seconds: float, tmp: Path, precision: str | None = None
) -> tuple[float, str]:
    """benchmark_app on the graph we compile: uint8 frame in, letterbox in the graph. `precision` is
    benchmark_app's -infer_precision, for runs whose engine was compiled with that INFERENCE_PRECISION_HINT."""
    prepared = model.prepare(frame.shape[:2])
    tool = _benchmark_app()
    if tool:
        graph = build_graph(model.network, prepared.letterbox)
        xml = tmp / f"graph_{frame.shape[0]}x{frame.shape[1]}_{int(model.config.rect)}.xml"
        ov.save_model(graph, xml, compress_to_fp16=False)
        fps = _run_benchmark_app(tool, xml, model.config.device, seconds, precision)
        if fps:
            return fps, "benchmark_app (THROUGHPUT hint, random u8 input)"
        print("falling back to AsyncInferQueue", file=sys.stderr)
    compiled = prepared.compiled
    nreq = compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
    q = ov.AsyncInferQueue(compiled, nreq)
    x = frame[None]
    for _ in range(nreq * 2):
        q.start_async({0: x})
    q.wait_all()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        q.start_async({0: x})
        n += 1
    q.wait_all()
    return n / (time.perf_counter() - t0), f"AsyncInferQueue loop ({nreq} requests, fixed frame)"


def network_ceiling(
    model: YoloModel, input_hw: tuple[int, int], seconds: float, tmp: Path, precision: str | None = None
) -> float | None:
    """benchmark_app on the bare IR reshaped to the input shape (float NCHW in, no preprocessing at all):
    the literal "same IR and input shape" bar, stricter than our graph by the cost of the in-graph letterbox."""
    tool = _benchmark_app()
    if not tool:
        return None
    bare = model.network.clone()
    bare.reshape({bare.inputs[0]: ov.PartialShape([1, 3, *input_hw])})
    xml = tmp / f"network_{input_hw[0]}x{input_hw[1]}.xml"
    ov.save_model(bare, xml, compress_to_fp16=False)
    return _run_benchmark_app(tool, xml, model.config.device, seconds, precision)


WARM = 5  # results not timed: first requests and encoder start-up (Ultralytics peers are timed the same way)


def _thread_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds (utime + stime) of each live thread of this process (Linux /proc; empty elsewhere), with
    its group."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else []:
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        comm, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        out[int(tid)] = (_thread_group(names.get(int(tid)), comm), (int(fields[11]) + int(fields[12])) / tick)
    return out


def _thread_group(python_name: str | None, os_name: str) -> str:
    """Python threads by their threading name; native ones by OS name (OpenVINO's and x264's workers
    keep the interpreter's name, so they share a group)."""
    if python_name == "MainThread":
        return "main thread (Python)"
    if python_name and python_name.startswith("source:"):
        return "reader threads (Python, YUV->BGR)"
    if python_name:
        return f"other Python ({python_name})"
    return "FFmpeg decoder threads" if os_name.startswith("av:") else "OpenVINO (+ x264) workers"


class _Clock:
    """Wall and process CPU time (all threads: OpenVINO's, the decoder's, the encoder's) since start(), and
    CPU per thread group between start() and stop_threads() (taken while the pipeline's threads still live)."""

    def start(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        self.threads_before = _thread_cpu()
        self.threads_after: dict = {}

    def stop_threads(self) -> None:
        self.threads_after = _thread_cpu()

    def per_frame(self, frames: int) -> tuple[float, float]:
        """(frames per second, CPU milliseconds per frame)."""
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        return frames / wall, cpu * 1000.0 / max(frames, 1)

    def by_thread(self, frames: int) -> dict[str, float]:
        """CPU milliseconds per frame of each thread group, up to stop_threads()."""
        groups: dict[str, float] = {}
        for tid, (group, cpu) in self.threads_after.items():
            groups[group] = groups.get(group, 0.0) + cpu - self.threads_before.get(tid, (group, 0.0))[1]
        per = {g: round(v * 1000.0 / max(frames, 1), 2) for g, v in sorted(groups.items(), key=lambda kv: -kv[1])}
        return {g: v for g, v in per.items() if v > 0}


def engine_fps(engine: AsyncEngine, frames: list[np.ndarray], n: int) -> tuple[float, float]:
    """(frames/s, CPU ms/frame) of infer + result decoding over pre-decoded frames."""
    for _ in engine.stream(frames[:8]):  # warm-up (compile + first requests)
        pass
    feed = (frames[i % len(frames)] for i in range(n))
    clock = _Clock()
    clock.start()
    count = sum(1 for _ in engine.stream(feed))
    return clock.per_frame(count)


def _after_warmup(results: Iterator, clock: _Clock, n: int) -> Iterator:
    """Yield the results after the first WARM, starting the clock at result WARM and taking the per-thread
    CPU at result WARM + n (the pipeline's threads end before run() returns)."""
    for k, item in enumerate(results, 1):
        if k == WARM:
            clock.start()
        elif k > WARM:
            if k == WARM + n:
                clock.stop_threads()
            yield item


def pipeline_fps(engine: AsyncEngine, clip: Path, n: int, out: Path) -> tuple[float, dict]:
    """Steady-state frames/s of decode -> engine -> annotate -> H.264 mp4, from result WARM to the mp4
    being closed (flush included)."""
    sink = VideoFileSink(out, 10)
    pipe = Pipeline(engine, [open_source(str(clip))], [sink], Annotator())
    clock = _Clock()
    lat = [fr.latency_ms for fr in _after_warmup(pipe.run(max_frames=n + WARM), clock, n)]
    fps, cpu_ms = clock.per_frame(len(lat))  # run() closed the sink (mp4 flushed) before returning
    return fps, {
        "frames": len(lat),
        "cpu_ms_per_frame": cpu_ms,
        "cpu_ms_by_thread": clock.by_thread(len(lat)),
        "latency_p50_ms": float(np.percentile(lat, 50)),
        "latency_p95_ms": float(np.percentile(lat, 95)),
        "encoder": sink.codec,
    }


def pipeline_infer_only_fps(engine: AsyncEngine, clip: Path, n: int) -> tuple[float, float, dict[str, float]]:
    """(frames/s, CPU ms/frame, CPU ms/frame by thread group) of decode -> engine -> Results, no drawing, no
    encoding (what Ultralytics' predict(stream=True) does)."""
    clock = _Clock()
    pipe = Pipeline(engine, [open_source(str(clip))], annotator=None)
    frames = sum(1 for _ in _after_warmup(pipe.run(max_frames=n + WARM), clock, n))
    return (*clock.per_frame(frames), clock.by_thread(frames))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--clip", type=Path, default=None)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=10.0, help="benchmark_app / ceiling duration")
    ap.add_argument("--modes", default="square,rect")
    ap.add_argument("--repeat", type=int, default=2, help="best of N runs per measurement (shared CPUs are noisy)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "pipeline.json")
    args = ap.parse_args()
    model_path = args.model or default_model(script="pipeline_bench")
    clip = args.clip or default_clip()
    if not clip.exists():
        sys.exit(f"bench: clip {clip} not found (set YOLO_APP_ASSETS)")
    frames = decode(clip, min(args.frames, 200))
    h, w = frames[0].shape[:2]
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            cfg = InferenceConfig(rect=(mode == "rect"))
            model = YoloModel.load(model_path, cfg)
            lb = model.prepare((h, w)).letterbox
            ceil = e_fps = p_fps = i_fps = 0.0
            i_threads: dict[str, float] = {}
            for _ in range(max(args.repeat, 1)):  # interleaved, best of N
                c, how = ceiling(model, frames[0], args.seconds, tmp)
                ceil = max(ceil, c)
                e_fps = max(e_fps, engine_fps(AsyncEngine(model), frames, args.frames)[0])
                noenc = pipeline_infer_only_fps(AsyncEngine(model), clip, args.frames)
                if noenc[0] > i_fps:
                    i_fps, i_threads = noenc[0], noenc[2]
                p, ex = pipeline_fps(AsyncEngine(model), clip, args.frames, tmp / f"{mode}.mp4")
                if p > p_fps:
                    p_fps, extra = p, ex
            results[mode] = {
                "input_hw": list(lb.input_hw),
                "ceiling_fps": ceil,
                "ceiling_method": how,
                "engine_fps": e_fps,
                "pipeline_noenc_fps": i_fps,
                "pipeline_fps": p_fps,
                **extra,
                "pipeline_noenc_cpu_ms_by_thread": i_threads,
            }
            for name, fps in (("ceiling", ceil), ("engine", e_fps), ("pipeline_noenc", i_fps), ("pipeline", p_fps)):
                rows.append((mode, f"{lb.input_hw[0]}x{lb.input_hw[1]}", name, fps, fps / ceil))
            print(f"[{mode}] done", file=sys.stderr, flush=True)
    sq = results.get("square", {})
    print(
        f"\nmodel {model_path}  clip {clip.name} ({w}x{h})  frames {args.frames}  "
        f"cpu {platform.processor() or platform.machine()} x{os.cpu_count()}"
    )
    print(f"ceiling: {next(iter(results.values()))['ceiling_method']}; best of {args.repeat} interleaved runs")
    print(f"{'mode':<7} {'input':<8} {'stage':<26} {'FPS':>8} {'vs ceiling':>10} {'vs square':>10}")
    for mode, inp, name, fps, ratio in rows:
        vs_sq = fps / sq[f"{name}_fps"] if sq else float("nan")
        print(f"{mode:<7} {inp:<8} {name:<26} {fps:8.1f} {ratio:10.2f} {vs_sq:10.2f}")
    print(
        "stages: engine = infer+decode on pre-decoded frames; pipeline_noenc = PyAV decode+infer+decode "
        "(like predict(stream=True)); pipeline = + annotate + H.264 encode"
    )
    for mode, r in results.items():
        print(
            f"{mode}: pipeline latency p50 {r['latency_p50_ms']:.0f} ms, p95 {r['latency_p95_ms']:.0f} ms "
            f"(capture -> annotated, incl. queueing), encoder {r['encoder']}"
        )
        for stage, key in (("pipeline_noenc", "pipeline_noenc_cpu_ms_by_thread"), ("pipeline", "cpu_ms_by_thread")):
            print(f"{mode}: {stage} CPU ms/frame by thread: " + ", ".join(f"{g} {v:.2f}" for g, v in r[key].items()))
    write_json(
        args.out,
        {
            "model": str(model_path),
            "clip": str(clip),
            "frame_hw": [h, w],
            "frames": args.frames,
            "cpu_count": os.cpu_count(),
            "repeat": args.repeat,
            "load_avg_1m": os.getloadavg()[0],
            "openvino": ov.__version__,
            "modes": results,
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
