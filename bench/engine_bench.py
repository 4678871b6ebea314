"""Issue-5 headline: our engine and pipeline vs OpenVINO's ceiling and vs Ultralytics, per task, in one run.

    .venv/bin/python -m bench.engine_bench [--tasks detect,segment,pose] [--frames 150] [--seconds 6]

For each task (yolov8n, -seg, -pose), precision (FP32, INT8 PTQ) and letterbox mode (square 640x640,
rect 384x640 for the 768x432 clip), on the same clip:
  ceiling         benchmark_app on the exact graph we compile (uint8 frame in, letterbox in the graph)
  network         benchmark_app on the bare IR at the same input shape (float NCHW in, no preprocessing):
                  the stricter "same IR and input shape" bar
  engine          AsyncEngine over pre-decoded frames (infer + decode of results)
  pipeline_noenc  PyAV decode -> engine -> Results (what Ultralytics' predict(stream=True) does)
  pipeline        + annotate + H.264 encode to mp4
and the peers, end to end on the same clip: Ultralytics predict(stream=True) with PyTorch (.pt, its own
rect letterbox) and with Ultralytics' own OpenVINO INT8 export (static 640x640).
Missing IRs are built first with `yolovino-quantize build` (calibration sets as in DATA.md).
Prints one table with ratios and writes bench/results/engine.json. Only ratios within one run mean
anything: these machines are shared and noisy.

To measure as on a CPU without AVX-512/VNNI/bf16 (the project's reference box is an AVX2 Zen 3), cap
oneDNN's ISA and run float layers in f32, as OpenVINO does on such a CPU; applies to ceilings and engine:
    ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python -m bench.engine_bench --infer-precision f32
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

import openvino as ov  # noqa: E402

from bench.benchlib import ASSETS, TASKS, ensure_models, machine_info, machine_line, write_json  # noqa: E402
from bench.pipeline_bench import ceiling, decode, engine_fps, network_ceiling, pipeline_fps, pipeline_infer_only_fps  # noqa: E402
from yolovino.inference import AsyncEngine, InferenceConfig, YoloModel  # noqa: E402


def timed_ultralytics(model, clip: Path, n: int, **kw) -> float:
    k, t0, warm = 0, time.perf_counter(), 5
    for _ in model.predict(source=str(clip), stream=True, verbose=False, **kw):
        k += 1
        if k == warm:
            t0 = time.perf_counter()
        if k >= n + warm:
            break
    return (k - warm) / (time.perf_counter() - t0)


def peers(task: str, clip: Path, n: int, cache: Path) -> dict[str, float]:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import shutil

    from ultralytics import YOLO

    name, pt, _, _, calib_yaml = TASKS[task]
    src = ASSETS / "models/reconstructed" / pt
    out = {"ultralytics_torch": timed_ultralytics(YOLO(str(src)), clip, n, imgsz=640)}
    folder = cache / f"{name}_int8_openvino_model"
    if not any(folder.glob("*.xml")):
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:  # datasets copied: Ultralytics writes label caches
            data = Path(tmp) / "data"
            shutil.copytree((ASSETS / calib_yaml).parent, data)
            local = cache / pt
            shutil.copy(src, local)
            exported = Path(
                YOLO(str(local)).export(
                    format="openvino", int8=True, imgsz=640, verbose=False, data=str(data / Path(calib_yaml).name)
                )
            )
        if exported.resolve() != folder.resolve():
            shutil.rmtree(folder, ignore_errors=True)
            exported.rename(folder)
    out["ultralytics_ov_int8"] = timed_ultralytics(YOLO(str(folder), task=task), clip, n, imgsz=640)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="detect,segment,pose")
    ap.add_argument("--precisions", default="fp32,int8")
    ap.add_argument("--modes", default="square,rect")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--seconds", type=float, default=6.0, help="benchmark_app duration")
    ap.add_argument("--clip", type=Path, default=ASSETS / "videos" / "one-by-one-person-detection.mp4")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument(
        "--infer-precision",
        choices=["f32", "bf16"],
        default=None,
        help="INFERENCE_PRECISION_HINT for ceilings and engine (default: the plugin's)",
    )
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "engine.json")
    args = ap.parse_args()
    if not args.clip.exists():
        sys.exit(f"error: clip {args.clip} not found (set YOLO_APP_ASSETS)")
    core = ov.Core()
    if args.infer_precision:
        core.set_property("CPU", {"INFERENCE_PRECISION_HINT": args.infer_precision})
    frames = decode(args.clip, min(args.frames, 200))
    hw = frames[0].shape[:2]
    rows: list[dict] = []
    peer_rows: dict[str, dict[str, float]] = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
            root = ensure_models(task)
            for precision in args.precisions.split(","):
                for mode in args.modes.split(","):
                    model = YoloModel.load(root / precision, InferenceConfig(rect=mode == "rect"), core=core)
                    lb = model.prepare(hw).letterbox
                    ceil, how = ceiling(model, frames[0], args.seconds, tmp, args.infer_precision)
                    net = network_ceiling(model, lb.input_hw, args.seconds, tmp, args.infer_precision)
                    row = {
                        "task": task,
                        "precision": precision,
                        "mode": mode,
                        "input_hw": list(lb.input_hw),
                        "ceiling_fps": ceil,
                        "ceiling_method": how,
                        "network_fps": net or float("nan"),
                    }
                    row["engine_fps"], row["engine_cpu_ms"] = engine_fps(AsyncEngine(model), frames, args.frames)
                    row["pipeline_noenc_fps"], row["pipeline_noenc_cpu_ms"], row["pipeline_noenc_cpu_ms_by_thread"] = (
                        pipeline_infer_only_fps(AsyncEngine(model), args.clip, args.frames)
                    )
                    row["pipeline_fps"], extra = pipeline_fps(
                        AsyncEngine(model), args.clip, args.frames, tmp / f"{task}-{precision}-{mode}.mp4"
                    )
                    row.update(extra)
                    rows.append(row)
                    print(
                        f"[{task} {precision} {mode}] ceiling {ceil:.1f} engine {row['engine_fps']:.1f} "
                        f"pipeline {row['pipeline_fps']:.1f}; pipeline CPU ms/frame by thread "
                        f"{row['cpu_ms_by_thread']}",
                        file=sys.stderr,
                        flush=True,
                    )
            if not args.no_peers:
                peer_rows[task] = peers(
                    task, args.clip, min(args.frames, 100), REPO / "bench" / "results" / "peer_cache"
                )
                print(f"[{task}] peers {peer_rows[task]}", file=sys.stderr, flush=True)

    print(
        f"\nclip {args.clip.name} ({hw[1]}x{hw[0]}), {args.frames} frames per measurement, "
        f"CPU inference precision for FP32 IRs: {core.get_property('CPU', 'INFERENCE_PRECISION_HINT')}\n"
        + machine_line()
    )
    print(
        f"{'task':<8}{'prec':<6}{'mode':<7}{'input':<9}{'network':>8}{'ceiling':>8}{'engine':>8}{'pipe-noenc':>11}"
        f"{'pipeline':>9}{'pipe/ceil':>10}{'noenc/ceil':>11}{'pipe/net':>9}{'CPU ms/frame: engine':>22}{'noenc':>7}"
        f"{'pipeline':>9}"
    )
    for r in rows:
        print(
            f"{r['task']:<8}{r['precision']:<6}{r['mode']:<7}{r['input_hw'][0]}x{r['input_hw'][1]:<5}"
            f"{r['network_fps']:8.1f}{r['ceiling_fps']:8.1f}{r['engine_fps']:8.1f}{r['pipeline_noenc_fps']:11.1f}"
            f"{r['pipeline_fps']:9.1f}{r['pipeline_fps'] / r['ceiling_fps']:10.2f}"
            f"{r['pipeline_noenc_fps'] / r['ceiling_fps']:11.2f}{r['pipeline_fps'] / r['network_fps']:9.2f}"
            f"{r['engine_cpu_ms']:22.1f}{r['pipeline_noenc_cpu_ms']:7.1f}{r['cpu_ms_per_frame']:9.1f}"
        )
    summary = {}
    if peer_rows:
        print("\nend to end on the same clip (decode + infer + results), frames per second:")
        print(
            f"{'task':<8}{'ours INT8 rect':>15}{'ours INT8 square':>17}{'Ultralytics torch':>18}"
            f"{'Ultralytics OV INT8':>20}{'vs torch':>9}{'vs UL-OV':>9}"
        )
        for task, p in peer_rows.items():
            best = {r["mode"]: r["pipeline_noenc_fps"] for r in rows if r["task"] == task and r["precision"] == "int8"}
            ours = best.get("rect", best.get("square", float("nan")))
            summary[task] = {
                "ours_int8_rect": ours,
                "ours_int8_square": best.get("square"),
                **p,
                "x_vs_torch": ours / p["ultralytics_torch"],
                "x_vs_ultralytics_ov_int8": ours / p["ultralytics_ov_int8"],
            }
            print(
                f"{task:<8}{ours:15.1f}{best.get('square', float('nan')):17.1f}{p['ultralytics_torch']:18.1f}"
                f"{p['ultralytics_ov_int8']:20.1f}{summary[task]['x_vs_torch']:9.2f}"
                f"{summary[task]['x_vs_ultralytics_ov_int8']:9.2f}"
            )
    print(
        "stages: engine = infer+decode on pre-decoded frames; pipeline_noenc = PyAV decode + engine; "
        "pipeline = + annotate + H.264 encode. Ceiling = benchmark_app on our compiled graph; network = "
        "benchmark_app on the bare IR at the input shape (no preprocessing).\n"
        f"CPU ms/frame = process CPU time (all threads) per frame; {os.cpu_count()} cores x 1000 / ceiling = "
        "the CPU a frame may cost at the ceiling, so (pipeline - engine) CPU over that budget is the share "
        "that decode/annotate/encode take from inference."
    )
    write_json(
        args.out,
        {
            "clip": str(args.clip),
            "frame_hw": list(hw),
            "frames": args.frames,
            "cpu_count": os.cpu_count(),
            "openvino": ov.__version__,
            "infer_precision": core.get_property("CPU", "INFERENCE_PRECISION_HINT"),
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
            "machine": machine_info(),
            "load_avg_1m_at_end": os.getloadavg()[0],
            "seconds": time.perf_counter() - start,
            "rows": rows,
            "peers": peer_rows,
            "summary": summary,
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
