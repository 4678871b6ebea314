"""What the bootstrap intervals cost, and that they score what faster-coco-eval would.

    .venv/bin/python -m bench.bootstrap_bench [--tasks detect,segment,pose] [--resamples 1000] [--full 10]

Per task, the FP32 model's predictions on its validation set (quantize_bench's splits) are scored once by
faster-coco-eval; then:
  - our bootstrap (quantize/bootstrap.py): per-image matches replayed once, `--resamples` resamples
    re-aggregated; seconds for the replay and for the resamples;
  - the naive bootstrap: `--full` resamples each spelled out as a data set (an image drawn k times copied
    k times under new ids) and scored by a full faster-coco-eval run; seconds per resample;
  - agreement: the largest |ours - faster-coco-eval| over those `--full` resamples (and on all images).
Prints a table and writes bench/results/bootstrap.json.
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
from bench.quantize_bench import TASKS, assets, validation_yaml

KINDS = {"detect": ("box",), "segment": ("box", "mask"), "pose": ("box", "pose")}


def bench_task(task: str, resamples: int, full: int, tmp: Path) -> dict:
    import numpy as np

    from yolovino.inference import InferenceConfig, YoloModel
    from yolovino.quantize.bootstrap import resample_as_dataset, resampled_map
    from yolovino.quantize.coco import IOU_TYPES, coco_eval
    from yolovino.quantize.export import export_fp32, save_ir
    from yolovino.quantize.validate import VAL_CONFIG, make_core, validate_model

    val = validation_yaml(task, tmp)
    fp32, _ = export_fp32(assets() / TASKS[task]["pt"], 640)
    model = YoloModel.load(save_ir(fp32, tmp / "fp32", task), InferenceConfig(**VAL_CONFIG), core=make_core("f32"))
    run = validate_model(model, val, keep_predictions=True)
    gt, preds = run.extra["gt"], run.extra["predictions"]
    rows = []
    for kind in KINDS[task]:
        key = {"box": "bbox", "mask": "segmentation", "pose": "keypoints"}[kind]
        mine = [p for p in preds if kind == "box" or key in p]
        t = time.perf_counter()
        result = coco_eval(gt, mine, IOU_TYPES[kind])
        eval_s = time.perf_counter() - t
        t = time.perf_counter()
        matches = result.matches()
        replay_s = time.perf_counter() - t
        n = len(matches.image_ids)
        rng = np.random.default_rng(0)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)
        t = time.perf_counter()
        resampled_map(matches, weights)
        ours_s = time.perf_counter() - t
        point = resampled_map(matches, np.ones((1, n), np.int64))[0][0]
        worst, t = 0.0, time.perf_counter()
        for counts in weights[:full]:
            g, p = resample_as_dataset(gt, mine, counts, matches.image_ids)
            theirs = coco_eval(g, p, IOU_TYPES[kind]).map
            worst = max(worst, abs(resampled_map(matches, counts[None])[0][0] - theirs))
        full_s = (time.perf_counter() - t) / max(1, full)
        rows.append(
            {
                "task": task,
                "metric": f"{kind} mAP50-95",
                "images": n,
                "detections": len(mine),
                "faster_coco_eval_s": eval_s,
                "replay_s": replay_s,
                "resamples": resamples,
                "ours_s": ours_s,
                "full_eval_per_resample_s": full_s,
                "speedup_per_resample": full_s / (ours_s / resamples),
                "max_abs_diff_full_set": abs(point - result.map),
                "max_abs_diff_resamples": worst,
            }
        )
        print(f"[{task}] {kind}: done", file=sys.stderr, flush=True)
    return {"task": task, "validation": str(val), "rows": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="detect,segment,pose")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--full", type=int, default=10, help="resamples also scored by a full faster-coco-eval run")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "bootstrap.json")
    a = ap.parse_args()
    tasks = [t for t in a.tasks.split(",") if t]
    if any(t not in TASKS for t in tasks):
        ap.error(f"tasks must be among {list(TASKS)}")
    results = []
    with tempfile.TemporaryDirectory(prefix="qboot-") as tmp:
        for task in tasks:
            results.append(bench_task(task, a.resamples, a.full, Path(tmp) / task))
    print(
        f"\n{'task':8s} {'metric':15s} {'images':>6s} {'dets':>6s} {'fce s':>6s} {'replay s':>8s} "
        f"{'ours s':>7s} {'full s/res':>10s} {'x faster':>8s} {'|d| all':>8s} {'|d| res':>8s}"
    )
    for r in results:
        for row in r["rows"]:
            print(
                f"{row['task']:8s} {row['metric']:15s} {row['images']:6d} {row['detections']:6d} "
                f"{row['faster_coco_eval_s']:6.2f} {row['replay_s']:8.2f} {row['ours_s']:7.2f} "
                f"{row['full_eval_per_resample_s']:10.3f} {row['speedup_per_resample']:8.0f} "
                f"{row['max_abs_diff_full_set']:8.1e} {row['max_abs_diff_resamples']:8.1e}"
            )
    print(
        "fce s = one faster-coco-eval run on all images; replay s = our per-image matches (once per model); "
        "ours s = all resamples; full s/res = one full faster-coco-eval run per resample; x faster = per "
        "resample; |d| = largest difference to faster-coco-eval (all images / the fully scored resamples)"
    )
    write_json(a.out, {"benchmark": "bootstrap", "results": results})
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
