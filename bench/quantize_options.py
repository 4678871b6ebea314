"""NNCF calibration options compared: preset, fast vs full bias correction, activation range estimator.

    .venv/bin/python bench/quantize_options.py [--tasks detect,segment,pose] [--variants default,full-bc,...]

Per task (data as in bench/quantize_bench.py and DATA.md: calibration and validation never overlap), the
checkpoint is exported once and the calibration tensors are made once; then every variant is one
`nncf.quantize` run (quantize/ptq.py, same ignored scope as `build`) validated by our COCO validator in f32
on the task's validation set. Prints accuracy (box and mask/keypoint mAP50-95, change vs FP32) and
quantization time per variant; writes bench/results/quantize_options.json. The differences are small and
the validation sets are 32-128 images, so a variant must win on every task before it becomes a default.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("YOLO_OFFLINE", "1")

from benchlib import REPO, write_json
from quantize_bench import TASKS, assets

from quantize.options import QuantOptions

VARIANTS = {
    "default": QuantOptions(),
    "full-bc": QuantOptions(fast_bias_correction=False),
    "performance": QuantOptions(preset="performance"),
    "minmax": QuantOptions(range_estimator="minmax"),
    "mean_minmax": QuantOptions(range_estimator="mean_minmax"),
    "mean_quantile": QuantOptions(range_estimator="mean_quantile"),
}


def bench_task(task: str, variants: list[str], tmp: Path, val_data: Path | None = None) -> dict:
    from quantize.calibration import ImageSource
    from quantize.export import export_fp32, save_ir
    from quantize.ptq import quantize_ptq
    from quantize.validate import validate_ir

    cfg = TASKS[task]
    root = assets()
    pt, calib_dir, val = root / cfg["pt"], root / cfg["calib"], val_data or root / cfg["val"]
    fp32, meta = export_fp32(pt, 640)
    calib = ImageSource.from_args(None, calib_dir, "train").check().tensors(meta.imgsz, meta.stride, limit=300)
    rows = {"fp32": {"metrics": validate_ir(save_ir(fp32, tmp / "fp32", task), val).to_dict(), "seconds": None}}
    print(f"[{task}] fp32 {rows['fp32']['metrics']['primary']:.4f}", file=sys.stderr, flush=True)
    for name in variants:
        t = time.perf_counter()
        q = quantize_ptq(fp32, meta, calib, VARIANTS[name])
        seconds = time.perf_counter() - t
        m = validate_ir(save_ir(q, tmp / name, task), val).to_dict()
        rows[name] = {"options": VARIANTS[name].as_dict(), "metrics": m, "seconds": seconds}
        print(f"[{task}] {name} {m['primary']:.4f} ({seconds:.0f} s)", file=sys.stderr, flush=True)
    return {
        "task": task,
        "calibration": str(calib_dir),
        "calibration_images": len(calib),
        "validation": str(val),
        "variants": rows,
    }


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
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "quantize_options.json")
    a = ap.parse_args()
    variants = [v for v in a.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    tasks = [t for t in a.tasks.split(",") if t]
    if any(t not in TASKS for t in tasks):
        ap.error(f"tasks must be among {list(TASKS)}")
    if a.val_data and len(tasks) != 1:
        ap.error("--val-data needs exactly one task in --tasks")
    t0 = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="qopts-") as tmp:
        for task in tasks:
            results.append(bench_task(task, variants, Path(tmp) / task, a.val_data))
    print(
        f"\n{'task':8s} {'variant':14s} {'box mAP':>8s} {'mask/pose':>9s} {'main':>7s} {'vs fp32':>8s} "
        f"{'vs default':>10s} {'quantize s':>10s}"
    )
    for r in results:
        fp32 = r["variants"]["fp32"]["metrics"]["primary"]
        default = r["variants"].get("default", {}).get("metrics", {}).get("primary")
        for name, v in r["variants"].items():
            m = v["metrics"]
            second = m.get("mask_map") if m.get("mask_map") is not None else m.get("pose_map")
            vs_def = f"{(m['primary'] - default) * 100:+.2f}" if default is not None and name != "fp32" else "-"
            secs = f"{v['seconds']:.0f}" if v["seconds"] else "-"
            print(
                f"{r['task']:8s} {name:14s} {m['box_map'] * 100:8.2f} "
                f"{(f'{second * 100:.2f}' if second is not None else '-'):>9s} {m['primary'] * 100:7.2f} "
                f"{(m['primary'] - fp32) * 100:+8.2f} {vs_def:>10s} "
                f"{secs:>10s}"
            )
    print(
        "mAP50-95 in %, our validator in f32; main = the task's metric (box / mask / keypoints); "
        "quantize s = nncf.quantize time on this machine"
    )
    write_json(a.out, {"benchmark": "quantize_options", "seconds": round(time.perf_counter() - t0), "results": results})
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
