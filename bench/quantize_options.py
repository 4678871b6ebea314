"""INT8 options compared: preset, bias correction, range estimator, calibration subset, head branches in float.

    .venv/bin/python -m bench.quantize_options [--tasks detect,segment,pose] [--variants default,full-bc,...]
    .venv/bin/python -m bench.quantize_options --tasks segment --variants default,full-bc,float-box,float-mask,...
    # segment boxes on held-out val2017 images (box labels only), calibrated on coco128's train2017 images:
    .venv/bin/python -m bench.quantize_options --tasks segment --calib ../shared/datasets/coco128/images/train2017 \
        --val-data ../shared/datasets/coco-val128/coco-val128.yaml --box-only

Per task (data as in bench/quantize_bench.py and DATA.md: calibration and validation never overlap), the
checkpoint is exported once and the calibration tensors are made once; then every variant is one
`nncf.quantize` run (quantize/ptq.py, same ignored scope as `build` plus the variant's float branches)
validated by our COCO validator in f32 on the task's validation set. Prints, per variant, box and
mask/keypoint mAP50-95 with the change vs FP32 and vs NNCF's defaults, each with its paired 95 % bootstrap
interval over the validation images (one set of resamples for all variants of a task), and the
quantization time; writes bench/results/quantize_options.json. A variant becomes a default only when its
gain is more than noise, or when it removes a loss that is more than noise.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

from bench.benchlib import REPO, write_json
from bench.quantize_bench import TASKS, assets, data_overlap, validation_yaml
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
) -> dict:
    from yolovino.quantize.bootstrap import BootstrapSettings, PairedBootstrap
    from yolovino.quantize.calibration import ImageSource
    from yolovino.quantize.export import export_fp32, save_ir
    from yolovino.quantize.ptq import quantize_ptq, quantized_ops
    from yolovino.quantize.validate import validate_ir

    cfg = TASKS[task]
    root = assets()
    pt, calib_dir = root / cfg["pt"], calib or root / cfg["calib"]
    overlap = data_overlap(calib_dir, val, allow_overlap)  # refused before the export unless allowed
    fp32, meta = export_fp32(pt, 640)
    tensors = ImageSource.from_args(None, calib_dir, "train").check().tensors(meta.imgsz, meta.stride, limit=300)
    measured = {"fp32": validate_ir(save_ir(fp32, tmp / "fp32", task), val, box_only=box_only)}
    pairs = PairedBootstrap(measured["fp32"].evaluation["box"].image_ids, BootstrapSettings(resamples=resamples))
    pairs.intervals(measured["fp32"])
    rows: dict[str, dict] = {"fp32": {"metrics": measured["fp32"].to_dict(), "seconds": None}}
    print(f"[{task}] fp32 {measured['fp32'].line()}", file=sys.stderr, flush=True)
    for name in variants:
        options = VARIANTS[name]
        if any(b not in BRANCH_OF_TASK[task] for b in options.float_branches):
            continue  # the task has no such branch: the same graph as the default
        t = time.perf_counter()
        q = quantize_ptq(fp32, meta, tensors, options)
        seconds = time.perf_counter() - t
        m = measured[name] = validate_ir(save_ir(q, tmp / name, task), val, box_only=box_only)
        pairs.intervals(m)
        rows[name] = {
            "options": options.as_dict(),
            "int8_ops": len(quantized_ops(q)),
            "metrics": m.to_dict(),
            "vs_fp32": {k: d.to_dict() for k, d in pairs.compare(measured["fp32"], m).items()},
            "seconds": seconds,
        }
        if "default" in measured and name != "default":
            rows[name]["vs_default"] = {k: d.to_dict() for k, d in pairs.compare(measured["default"], m).items()}
        print(f"[{task}] {name} {m.line()} ({seconds:.0f} s)", file=sys.stderr, flush=True)
    return {
        "task": task,
        "calibration": str(calib_dir),
        "calibration_images": len(tensors),
        "validation": str(val),
        "validation_images": measured["fp32"].images,
        "overlap": overlap,
        "bootstrap": BootstrapSettings(resamples=resamples).as_dict(),
        "variants": rows,
    }


def _diff(d: dict | None) -> str:
    """A difference read back from the JSON, as quantize/metrics.py words it."""
    from yolovino.quantize.metrics import Difference

    return Difference.from_dict("", d).text() if d else "-"


def print_table(results: list[dict]) -> None:
    print(
        f"\n{'task':8s} {'variant':17s} {'box':>6s} {'box vs FP32 [95% CI]':>36s} {'mask/kpt':>8s} "
        f"{'mask/kpt vs FP32 [95% CI]':>36s} {'box vs default':>36s} {'INT8':>4s} {'quant. s':>8s}"
    )
    for r in results:
        for name, v in r["variants"].items():
            m = v["metrics"]
            second = "mask_map" if m.get("mask_map") is not None else "pose_map"
            vs, vs_def = v.get("vs_fp32") or {}, v.get("vs_default") or {}
            value = m.get(second)
            secs = f"{v['seconds']:.0f}" if v["seconds"] else "-"
            print(
                f"{r['task']:8s} {name:17s} {m['box_map'] * 100:6.2f} {_diff(vs.get('box_map')):>36s} "
                f"{(f'{value * 100:.2f}' if value is not None else '-'):>8s} {_diff(vs.get(second)):>36s} "
                f"{_diff(vs_def.get('box_map')):>36s} {v.get('int8_ops', '-'):>4} {secs:>8s}"
            )
    print(
        "mAP50-95 in points (%), our validator in f32; vs FP32 / vs default: change with its paired 95 % bootstrap "
        "interval over the validation images ('within noise' = it holds 0); INT8 = ops computing in INT8; "
        "quant. s = nncf.quantize time here"
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

    t0 = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="qopts-") as tmp:
        vals = {task: a.val_data or validation_yaml(task, Path(tmp) / task) for task in tasks}
        try:  # every task's data before the first export: no accuracy figure from calibration images
            for task in tasks:
                data_overlap(a.calib or assets() / TASKS[task]["calib"], vals[task], a.allow_overlap)
        except QuantizeError as exc:
            print(f"error: {task}: {exc}", file=sys.stderr)
            return 2
        for task in tasks:
            val = vals[task]
            results.append(
                bench_task(task, variants, Path(tmp) / task, val, a.bootstrap, a.calib, a.box_only, a.allow_overlap)
            )
            doc = {"benchmark": "quantize_options", "seconds": round(time.perf_counter() - t0), "results": results}
            write_json(a.out, doc)  # after each task
    print_table(results)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
