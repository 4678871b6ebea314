"""INT8 options compared: preset, bias correction, range estimator, calibration subset, head branches in float.

    .venv/bin/python -m bench.quantize_options [--tasks detect,segment,pose] [--variants default,full-bc,...]
    .venv/bin/python -m bench.quantize_options --tasks segment --variants default,full-bc,float-box,float-mask,...
    # segment on disjoint data (calibrated on coco-val128's images, scored on coco128-seg), with accuracy
    # control, SmoothQuant and a larger calibration set (coco-mini-pose's images added):
    .venv/bin/python -m bench.quantize_options --tasks segment \
        --variants default,full-bc,float-box,more-calib,ac,smoothquant \
        --more-calib ../shared/datasets/coco-mini-pose/images/train2017 \
        --more-calib ../shared/datasets/coco-mini-pose/images/val2017
    # segment boxes on held-out val2017 images (box labels only), calibrated on coco128's train2017 images:
    .venv/bin/python -m bench.quantize_options --tasks segment --calib ../shared/datasets/coco128/images/train2017 \
        --val-data ../shared/datasets/coco-val128/coco-val128.yaml --box-only

Per task (data as in bench/quantize_bench.py and DATA.md: calibration and validation never overlap), the
checkpoint is exported once and the calibration tensors are made once; then every variant is one
`nncf.quantize` run (quantize/ptq.py, same ignored scope as `build` plus the variant's float branches)
validated by our COCO validator in f32 on the task's validation set. Prints, per variant, box and
mask/keypoint mAP50-95 with the change vs FP32 and vs NNCF's defaults, each with its paired 95 % bootstrap
interval over the validation images (one set of resamples for all variants of a task), the quantization
time, and the speed of each IR against FP32 (CPU time per frame, alternated rounds in the same run: a
ratio, which load on the shared box disturbs less than wall time); writes bench/results/quantize_options.json.
A variant becomes a default only when its gain is more than noise, or when it removes a loss that is more
than noise.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

from bench.benchlib import REPO, machine_info, machine_line, write_json
from bench.quantize_bench import TASKS, assets, data_overlap, ultralytics_int8, validation_yaml
from yolovino.quantize.options import QuantOptions

VARIANTS = {
    "default": QuantOptions(),
    "full-bc": QuantOptions(fast_bias_correction=False),
    "performance": QuantOptions(preset="performance"),
    "minmax": QuantOptions(range_estimator="minmax"),
    "mean_minmax": QuantOptions(range_estimator="mean_minmax"),
    "mean_quantile": QuantOptions(range_estimator="mean_quantile"),
    "subset-64": QuantOptions(subset_size=64),
    # head branches kept in float (quantize/scopes.py head_branches); a branch the task lacks changes nothing
    "float-box": QuantOptions(float_branches=("box",)),
    "float-mask": QuantOptions(float_branches=("mask",)),
    "float-proto": QuantOptions(float_branches=("proto",)),
    "float-mask-proto": QuantOptions(float_branches=("mask", "proto")),
    "float-kpt": QuantOptions(float_branches=("kpt",)),
    "full-bc-float-box": QuantOptions(fast_bias_correction=False, float_branches=("box",)),
    # SmoothQuant on the convolutions, NNCF's own alpha for them (smooth_quant/algorithm.py ALPHA_MAP); NNCF runs
    # it only with model_type=TRANSFORMER, which this sets too
    "smoothquant": QuantOptions(smooth_quant=0.05),
    # NNCF's defaults on a larger calibration set: the task's images plus --more-calib folders
    "more-calib": QuantOptions(),
    # accuracy control (quantize/accuracy_control.py: the worst drop of box and mask/keypoints, max drop 1 point)
    # from the default PTQ, watching the first --ac-images validation images
    "ac": QuantOptions(),
    # the anchor: Ultralytics' own INT8 export of the same checkpoint, calibrated on the same images
    # (bench/quantize_bench.py ultralytics_int8); its row's "vs default" is theirs minus ours
    "ultralytics": QuantOptions(),
}
BRANCH_OF_TASK = {"detect": (), "segment": ("box", "mask", "proto"), "pose": ("box", "kpt")}


def bench_task(
    task: str,
    variants: list[str],
    tmp: Path,
    val: Path,
    resamples: int,
    calib: Path | None,
    box_only: bool,
    allow_overlap: bool = False,
    more_calib: list[Path] | None = None,
    ac_images: int = 64,
    speed_rounds: int = 3,
    progress: Callable[[dict], None] | None = None,
) -> dict:
    import openvino as ov

    from yolovino.quantize.accuracy_control import quantize_ac
    from yolovino.quantize.bootstrap import BootstrapSettings, PairedBootstrap
    from yolovino.quantize.calibration import ImageSource
    from yolovino.quantize.errors import QuantizeError
    from yolovino.quantize.export import export_fp32, save_ir
    from yolovino.quantize.ptq import quantize_ptq, quantized_ops
    from yolovino.quantize.validate import validate_ir

    cfg = TASKS[task]
    root = assets()
    pt, calib_dir = root / cfg["pt"], calib or root / cfg["calib"]
    overlap = data_overlap(calib_dir, val, allow_overlap)  # refused before the export unless allowed
    fp32, meta = export_fp32(pt, 640)
    tensors = ImageSource.from_args(None, calib_dir, "train").check().tensors(meta.imgsz, meta.stride, limit=300)
    more = list(tensors)
    for folder in more_calib or []:
        if "more-calib" in variants:
            data_overlap(folder, val, allow_overlap)
            more += ImageSource.from_args(None, folder, "train").check().tensors(meta.imgsz, meta.stride, limit=300)
    irs = {"fp32": save_ir(fp32, tmp / "fp32", task)}
    measured = {"fp32": validate_ir(irs["fp32"], val, box_only=box_only)}
    pairs = PairedBootstrap(measured["fp32"].evaluation["box"].image_ids, BootstrapSettings(resamples=resamples))
    pairs.intervals(measured["fp32"])
    rows: dict[str, dict] = {"fp32": {"metrics": measured["fp32"].to_dict(), "seconds": None}}
    print(f"[{task}] fp32 {measured['fp32'].line()}", file=sys.stderr, flush=True)

    def summary(rows: dict[str, dict]) -> dict:
        return {
            "task": task,
            "calibration": str(calib_dir),
            "calibration_images": len(tensors),
            "more_calibration": [str(f) for f in more_calib or []],
            "more_calibration_images": len(more),
            "ac_images": ac_images,
            "validation": str(val),
            "validation_images": measured["fp32"].images,
            "overlap": overlap,
            "bootstrap": BootstrapSettings(resamples=resamples).as_dict(),
            "variants": rows,
        }

    for name in variants:
        options = VARIANTS[name]
        if any(b not in BRANCH_OF_TASK[task] for b in options.float_branches):
            continue  # the task has no such branch: the same graph as the default
        if name == "more-calib" and len(more) == len(tensors):
            continue  # no --more-calib folder: the same calibration as the default
        t = time.perf_counter()
        try:
            if name == "ultralytics":
                irs[name], _ = ultralytics_int8(pt, calib_dir, tmp / "ul")
                q = ov.Core().read_model(next(irs[name].glob("*.xml")))
            elif name == "ac":
                ptq = quantize_ptq(fp32, meta, tensors, options)
                q = quantize_ac(fp32, meta, tensors, val, options=options, val_images=ac_images, ptq_model=ptq).model
            else:
                q = quantize_ptq(fp32, meta, more if name == "more-calib" else tensors, options)
        except QuantizeError as exc:  # an option NNCF cannot apply to this graph is a result, not the end of the run
            rows[name] = {"options": options.as_dict(), "error": str(exc).splitlines()[0][:300]}
            print(f"[{task}] {name} failed: {rows[name]['error']}", file=sys.stderr, flush=True)
            continue
        seconds = time.perf_counter() - t
        if name != "ultralytics":
            irs[name] = save_ir(q, tmp / name, task)
        m = measured[name] = validate_ir(irs[name], val, box_only=box_only)
        pairs.intervals(m)
        rows[name] = {
            "options": {"exporter": "ultralytics"} if name == "ultralytics" else options.as_dict(),
            "int8_ops": len(quantized_ops(q)),
            "metrics": m.to_dict(),
            "vs_fp32": {k: d.to_dict() for k, d in pairs.compare(measured["fp32"], m).items()},
            "seconds": seconds,
        }
        if "default" in measured and name != "default":
            rows[name]["vs_default"] = {k: d.to_dict() for k, d in pairs.compare(measured["default"], m).items()}
        # its speed against FP32, the two alternated now (a ratio from one stretch of the shared box's load)
        speed = cpu_per_frame({"fp32": irs["fp32"], name: irs[name]}, val, speed_rounds)
        rows[name]["cpu_ms_per_frame"] = round(speed[name] * 1000, 2)
        rows[name]["fp32_cpu_ms_per_frame"] = round(speed["fp32"] * 1000, 2)
        rows[name]["speed_vs_fp32"] = round(speed["fp32"] / speed[name], 3)
        diffs = "; ".join(
            f"{k} {_diff(d)} vs {ref}"
            for ref in ("vs_fp32", "vs_default")
            for k, d in rows[name].get(ref, {}).items()
            if k.endswith("_map")
        )
        print(
            f"[{task}] {name} {m.line()} ({seconds:.0f} s) | {diffs} | speed {rows[name]['speed_vs_fp32']:.2f}x FP32",
            file=sys.stderr,
            flush=True,
        )
        if progress is not None:
            progress(summary(rows))
    return summary(rows)


def cpu_per_frame(irs: dict[str, Path], val: Path, rounds: int) -> dict[str, float]:
    """CPU seconds per frame of each IR (process CPU time, all threads), synchronous predict on the same
    validation frames at the square 640 letterbox, the IRs alternated in `rounds` rounds so that a load
    change on the shared box hits them alike; the plugin's default precision, as the app runs."""
    from yolovino.inference.core.config import InferenceConfig
    from yolovino.inference.model.ir import YoloModel
    from yolovino.quantize.calibration import load_dataset_yaml
    from yolovino.quantize.validate import throughput_frames

    frames = throughput_frames(list(load_dataset_yaml(val).images), limit=24)
    models = {k: YoloModel.load(p, InferenceConfig(rect=False)) for k, p in irs.items()}
    for m in models.values():
        m.predict(frames[0])  # compile outside the timing
    cpu = dict.fromkeys(models, 0.0)
    for _ in range(rounds):
        for k, m in models.items():
            t = time.process_time()
            for f in frames:
                m.predict(f)
            cpu[k] += time.process_time() - t
    return {k: c / (rounds * len(frames)) for k, c in cpu.items()}


def _diff(d: dict | None) -> str:
    """A difference read back from the JSON, as quantize/metrics.py words it."""
    from yolovino.quantize.metrics import Difference

    return Difference.from_dict("", d).text() if d else "-"


def print_table(results: list[dict]) -> None:
    print(
        f"\n{'task':8s} {'variant':17s} {'box':>6s} {'box vs FP32 [95% CI]':>36s} {'mask/kpt':>8s} "
        f"{'mask/kpt vs FP32 [95% CI]':>36s} {'box vs default':>36s} {'INT8':>4s} {'speed':>5s} {'quant. s':>8s}"
    )
    for r in results:
        for name, v in r["variants"].items():
            if "error" in v:
                print(f"{r['task']:8s} {name:17s} failed: {v['error']}")
                continue
            m = v["metrics"]
            second = "mask_map" if m.get("mask_map") is not None else "pose_map"
            vs, vs_def = v.get("vs_fp32") or {}, v.get("vs_default") or {}
            value = m.get(second)
            secs = f"{v['seconds']:.0f}" if v["seconds"] else "-"
            speed = f"{v['speed_vs_fp32']:.2f}" if v.get("speed_vs_fp32") else "-"
            print(
                f"{r['task']:8s} {name:17s} {m['box_map'] * 100:6.2f} {_diff(vs.get('box_map')):>36s} "
                f"{(f'{value * 100:.2f}' if value is not None else '-'):>8s} {_diff(vs.get(second)):>36s} "
                f"{_diff(vs_def.get('box_map')):>36s} {v.get('int8_ops', '-'):>4} {speed:>5s} {secs:>8s}"
            )
    print(
        "mAP50-95 in points (%), our validator in f32; vs FP32 / vs default: change with its paired 95 % bootstrap "
        "interval over the validation images ('within noise' = it holds 0); INT8 = ops computing in INT8; "
        "speed = FP32 CPU time per frame / the variant's (same frames, alternated rounds, one run); "
        "quant. s = quantization time here"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="detect,segment,pose")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"subset of {','.join(VARIANTS)}")
    ap.add_argument(
        "--val-data",
        type=Path,
        help="another labelled yaml to validate on (one task only), e.g. a split "
        "disjoint from the reported one, to choose options without looking at the reported set",
    )
    ap.add_argument("--calib", type=Path, help="calibration image folder instead of the task's (one task only)")
    ap.add_argument(
        "--box-only",
        action="store_true",
        help="score boxes only, e.g. segment on held-out images with box labels: "
        "--tasks segment --calib <coco128 images> --val-data <coco-val128 yaml> --box-only",
    )
    ap.add_argument(
        "--more-calib",
        type=Path,
        action="append",
        default=[],
        help="image folder added to the calibration set of the more-calib variant (repeatable)",
    )
    ap.add_argument("--ac-images", type=int, default=64, help="validation images accuracy control watches (64)")
    ap.add_argument("--speed-rounds", type=int, default=3, help="alternated rounds of the CPU-time measurement")
    ap.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the intervals (1000)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "quantize_options.json")
    ap.add_argument(
        "--allow-overlap",
        action="store_true",
        help="measure even where calibration and validation share images (the results then say so)",
    )
    a = ap.parse_args()
    variants = [v for v in a.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    tasks = [t for t in a.tasks.split(",") if t]
    if any(t not in TASKS for t in tasks):
        ap.error(f"tasks must be among {list(TASKS)}")
    if (a.val_data or a.calib) and len(tasks) != 1:
        ap.error("--val-data and --calib need exactly one task in --tasks")
    from yolovino.quantize.errors import QuantizeError

    print(machine_line(), flush=True)
    t0 = time.perf_counter()
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="qopts-") as tmp:
        vals = {task: a.val_data or validation_yaml(task, Path(tmp) / task) for task in tasks}
        try:  # every task's data before the first export: no accuracy figure from calibration images
            for task in tasks:
                data_overlap(a.calib or assets() / TASKS[task]["calib"], vals[task], a.allow_overlap)
        except QuantizeError as exc:
            print(f"error: {task}: {exc}", file=sys.stderr)
            return 2
        machine = machine_info()

        def save(partial: dict | None = None) -> None:
            """The results so far (after each variant: a run stopped early keeps what it measured)."""
            doc = {
                "benchmark": "quantize_options",
                "machine": machine,
                "seconds": round(time.perf_counter() - t0),
                "results": results + ([partial] if partial else []),
            }
            write_json(a.out, doc)

        for task in tasks:
            val = vals[task]
            results.append(
                bench_task(
                    task,
                    variants,
                    Path(tmp) / task,
                    val,
                    a.bootstrap,
                    a.calib,
                    a.box_only,
                    a.allow_overlap,
                    a.more_calib,
                    a.ac_images,
                    a.speed_rounds,
                    progress=save,
                )
            )
            save()
    print_table(results)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
