"""FP32 vs INT8 (our PTQ) vs INT8 (our accuracy control) vs Ultralytics' own INT8 export, per task.

Every IR is validated by OUR validator (quantize/validate.py: our runtime, COCO metrics) on the same
validation set; every mAP has its 95 % interval and every difference (each INT8 vs FP32, ours vs
Ultralytics' INT8) its paired interval, from one bootstrap over the validation images shared by all IRs
of the task (quantize/bootstrap.py; "within noise" when the interval holds 0). Throughput is measured in the
same run by timing our AsyncEngine (THROUGHPUT hint, square 640 letterbox, conf 0.25, decode included) over
validation frames of one size for --seconds seconds, and by OpenVINO's own benchmark_app on the IR
(THROUGHPUT hint, its static 640x640 input). Accuracy is measured with float layers in f32 (so FP32 is FP32);
throughput with the CPU plugin's default precision (bf16 float layers on CPUs that have it), what the app gets.

Data (shared/DATA.md): every labelled image disjoint from calibration that the task's labels allow
  detect : yolov8n.pt      calibrate coco128 (train2017)             validate coco-val128 (128)
  segment: yolov8n-seg.pt  calibrate coco-val128 images, unlabelled  validate coco128-seg (128)
  pose   : yolov8n-pose.pt calibrate coco128 images, unlabelled      validate coco-mini-pose train2017 + val2017 (60)
coco-mini-pose labels persons only, so its boxes cannot join the 80-class detect split (every other
class on those images would count as a false positive); coco128-seg holds the only polygons, so segment
keeps its 128 images; pose gains the 28 train2017 images (they are also disjoint from calibration; pose's
bias-correction default was chosen on them, see quantize/options.py).
Ultralytics' INT8 export is calibrated on the same images (given to it as an unlabelled dataset).

    .venv/bin/python -m bench.quantize_bench                     # all tasks, AC for segment
    .venv/bin/python -m bench.quantize_bench --tasks detect --ac-tasks none --seconds 3

Writes bench/results/quantize.json and bench/results/quantize.png (accuracy with intervals vs throughput).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
from bench.benchlib import write_json  # noqa: E402
from yolovino.quantize.options import DEFAULT_BUILDS  # noqa: E402

os.environ.setdefault("YOLO_OFFLINE", "1")

# the reference data of each task, the same as `yolovino-quantize build-default --task T`; pose also scores
# coco-mini-pose's train2017 split (disjoint from calibration too)
TASKS: dict[str, dict[str, Any]] = {task: dict(d) for task, d in DEFAULT_BUILDS.items()}
TASKS["pose"]["val_splits"] = ["images/train2017", "images/val2017"]


def assets() -> Path:
    from yolovino.common.paths import assets_root

    return assets_root()


def validation_yaml(task: str, tmp: Path) -> Path:
    """The task's validation dataset: its yaml, or a copy whose val split lists every split named in TASKS."""
    import yaml

    cfg = TASKS[task]
    src = assets() / cfg["val"]
    if "val_splits" not in cfg:
        return src
    d = yaml.safe_load(src.read_text())
    d["path"] = str(src.parent)
    d["val"] = list(cfg["val_splits"])
    tmp.mkdir(parents=True, exist_ok=True)
    out = tmp / f"{task}-val.yaml"
    out.write_text(yaml.safe_dump(d))
    return out


def data_overlap(calib: Path, val: Path, allow: bool = False) -> dict:
    """Calibration folder vs validation yaml by content (quantize/overlap.py: same bytes or a re-encoded copy): refused
    (QuantizeError, one line) when they share images and not `allow`; else what they share, for the results."""
    from yolovino.quantize.calibration import list_images, load_dataset_yaml
    from yolovino.quantize.overlap import ImageSet, compare

    calib_set = ImageSet.of(str(calib), list_images(calib))
    return compare(calib_set, ImageSet.of(f"{val} (val)", load_dataset_yaml(val).images), allow).to_dict()


def unlabelled_yaml(images: Path, tmp: Path, names: dict, kpt_shape=None) -> Path:
    """An Ultralytics dataset of just these images (empty label files = background), for its INT8 calibration."""
    root = tmp / "calib-ds"
    (root / "labels" / "calib").mkdir(parents=True)
    (root / "images" / "calib").mkdir(parents=True)
    for p in images.iterdir():  # copies: Ultralytics resolves symlinks and would find the original labels
        shutil.copy(p, root / "images" / "calib" / p.name)
        (root / "labels" / "calib" / f"{p.stem}.txt").write_text("")
    import yaml

    d = {"path": str(root), "train": "images/calib", "val": "images/calib", "names": names}
    if kpt_shape:
        d["kpt_shape"] = list(kpt_shape)
        d["flip_idx"] = list(range(kpt_shape[0]))
    out = root / "calib.yaml"
    out.write_text(yaml.safe_dump(d))
    return out


def ultralytics_int8(pt: Path, calib_images: Path, tmp: Path) -> tuple[Path, float]:
    from ultralytics import YOLO

    tmp.mkdir(parents=True, exist_ok=True)
    src = tmp / pt.name
    shutil.copy(pt, src)
    yolo = YOLO(str(src))
    kpt = getattr(yolo.model, "kpt_shape", None)
    data = unlabelled_yaml(calib_images, tmp, dict(yolo.names), kpt)
    t = time.perf_counter()
    out = yolo.export(format="openvino", int8=True, data=str(data), imgsz=640, batch=1, verbose=False)
    return Path(out), time.perf_counter() - t


def bench_task(
    task: str,
    ac: bool,
    seconds: float,
    tmp: Path,
    max_drop: float,
    ac_val_images: int,
    resamples: int,
    allow_overlap: bool = False,
) -> dict:
    from yolovino.quantize.bootstrap import BootstrapSettings, PairedBootstrap
    from yolovino.quantize.build import build
    from yolovino.quantize.calibration import load_dataset_yaml
    from yolovino.quantize.options import BuildSettings
    from yolovino.quantize.validate import cpu_precision, throughput, throughput_frames, validate_ir

    cfg = TASKS[task]
    root = assets()
    pt, calib, val = root / cfg["pt"], root / cfg["calib"], validation_yaml(task, tmp)
    out = tmp / "models"
    print(f"== {task}: building ours (mode {'both' if ac else 'ptq'})", flush=True)
    settings = BuildSettings(
        pt,
        name=task,
        mode="both" if ac else "ptq",
        calib_images=calib,
        val_data=val,
        subset_size=300,
        max_drop=max_drop,
        ac_val_images=ac_val_images,
        out=out,
        bench_seconds=0.0,
        bootstrap=resamples,
        allow_overlap=allow_overlap,
    )
    report = build(settings)
    frames = throughput_frames(list(load_dataset_yaml(val).images))
    build_s = {
        "fp32": report.timings.get("export_s"),
        "int8": report.timings.get("ptq_s"),
        "int8-ac": report.timings.get("accuracy_control_s"),
    }
    measured = {key: v.metrics for key, v in report.variants.items() if v.metrics is not None}
    rows: dict[str, dict] = {}
    for key, v in report.variants.items():
        rows[key] = {"size_mb": v.size_mb, "build_s": build_s.get(key), "path": str(out / task / v.path)}
        if v.accuracy_control is not None:
            rows[key]["reverted_to_fp32"] = v.accuracy_control.reverted_to_fp32
    print(f"== {task}: Ultralytics INT8 export", flush=True)
    ul_dir, ul_s = ultralytics_int8(pt, calib, tmp / f"ul-{task}")
    measured["ultralytics-int8"] = validate_ir(ul_dir, val)
    rows["ultralytics-int8"] = {
        "build_s": ul_s,
        "path": str(ul_dir),
        "size_mb": round(sum(f.stat().st_size for f in ul_dir.glob("*.bin")) / 1e6, 2),
    }
    # one set of resamples for every IR of the task (same seed and images as the build's own intervals)
    t = time.perf_counter()
    pairs = PairedBootstrap(measured["fp32"].evaluation["box"].image_ids, BootstrapSettings(resamples=resamples))
    for key, m in measured.items():
        pairs.intervals(m)
        rows[key]["metrics"] = m.to_dict()
        if key != "fp32":
            rows[key]["vs_fp32"] = {k: d.to_dict() for k, d in pairs.compare(measured["fp32"], m).items()}
    ours_vs_ul = {
        key: {k: d.to_dict() for k, d in pairs.compare(measured["ultralytics-int8"], measured[key]).items()}
        for key in ("int8", "int8-ac")
        if key in measured
    }
    bootstrap_s = time.perf_counter() - t
    for key, row in rows.items():
        print(f"== {task}: throughput {key}", flush=True)
        row["throughput"] = throughput(row["path"], frames, seconds)
        row["benchmark_app_fps"] = benchmark_app_fps(row["path"], seconds)
    return {
        "task": task,
        "weights": str(pt),
        "calibration": str(calib),
        "validation": str(val),
        "validation_splits": cfg.get("val_splits", ["val"]),
        "validation_images": measured["fp32"].images,
        # the Ultralytics export is calibrated on the same folder, so this holds for every variant
        "overlap": report.overlap.to_dict() if report.overlap is not None else None,
        "bootstrap": {**BootstrapSettings(resamples=resamples).as_dict(), "seconds": round(bootstrap_s, 1)},
        "cpu_inference_precision": cpu_precision(),
        "variants": rows,
        "ours_vs_ultralytics": ours_vs_ul,
    }


def benchmark_app_fps(path: str, seconds: float) -> float | None:
    """OpenVINO's own benchmark tool on the IR as stored (THROUGHPUT hint); None if it is not installed."""
    import re
    import subprocess

    tool = Path(sys.executable).parent / "benchmark_app"
    xml = path if str(path).endswith(".xml") else next(Path(path).glob("*.xml"))
    if not tool.exists():
        return None
    proc = subprocess.run(
        [str(tool), "-m", str(xml), "-d", "CPU", "-hint", "throughput", "-t", str(int(seconds))],
        capture_output=True,
        text=True,
        timeout=seconds * 6 + 120,
    )
    found = re.search(r"Throughput:\s*([\d.]+)\s*FPS", proc.stdout)
    return float(found.group(1)) if found else None


def _diff(d: dict | None) -> str:
    """A difference read back from the JSON, as quantize/metrics.py words it."""
    from yolovino.quantize.metrics import Difference

    return Difference.from_dict("", d).text() if d else "-"


def print_table(results: list[dict]) -> None:
    print()
    print(
        f"{'task':8s} {'variant':17s} {'metric':5s} {'mAP50-95 [95% CI]':>22s} {'vs FP32 [95% CI]':>36s} "
        f"{'vs Ultralytics INT8 [95% CI]':>36s}"
    )
    for r in results:
        for key, v in r["variants"].items():
            m = v["metrics"]
            for kind in ("box", "mask", "pose"):
                value = m.get(f"{kind}_map")
                if value is None:
                    continue
                lo, hi = (m.get("intervals") or {}).get(f"{kind}_map", (None, None))
                ci = f"{value * 100:.2f} [{lo * 100:.2f}, {hi * 100:.2f}]" if lo is not None else f"{value * 100:.2f}"
                vs = (v.get("vs_fp32") or {}).get(f"{kind}_map")
                vs_ul = (r.get("ours_vs_ultralytics", {}).get(key) or {}).get(f"{kind}_map")
                print(f"{r['task']:8s} {key:17s} {kind:5s} {ci:>22s} {_diff(vs):>36s} {_diff(vs_ul):>36s}")
        widths = [
            (d["hi"] - d["lo"]) * 100
            for v in r["variants"].values()
            for k, d in (v.get("vs_fp32") or {}).items()
            if k.endswith("_map")
        ]
        if widths:
            boot = r["bootstrap"]
            print(
                f"{r['task']:8s} interval width of the differences vs FP32: {min(widths):.2f}-{max(widths):.2f} "
                f"points on {r['validation_images']} images ({boot['resamples']} resamples, {boot['seconds']} s)"
            )
    print(
        "mAP50-95 in points (%) by quantize/validate.py, float layers in f32; intervals: paired bootstrap over the "
        "validation images; 'within noise' = the interval holds 0 (these images cannot tell the two apart)"
    )
    print()
    head = f"{'task':8s} {'variant':17s} {'fps':>7s} {'x fp32':>6s} {'bench_app':>9s} {'x fp32':>6s} {'MB':>6s}"
    print(head + f" {'build s':>8s}")
    for r in results:
        fp32 = r["variants"]["fp32"]
        for key, v in r["variants"].items():
            fps = v["throughput"]["fps"]
            ba, ba32 = v.get("benchmark_app_fps"), fp32.get("benchmark_app_fps")
            print(
                f"{r['task']:8s} {key:17s} {fps:7.1f} {fps / fp32['throughput']['fps']:6.2f} "
                f"{(f'{ba:.1f}' if ba else '-'):>9s} {(f'{ba / ba32:.2f}' if ba and ba32 else '-'):>6s} "
                f"{v['size_mb']:6.1f} {_secs(v.get('build_s')):>8s}"
            )
    print("fps = AsyncEngine frames/s (decode included); bench_app = OpenVINO benchmark_app on the IR")


def _secs(x) -> str:
    return f"{x:.0f}" if x else "-"


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from yolovino.quantize.report import save_png

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4), squeeze=False)
    for ax, r in zip(axes[0], results):
        for key, v in r["variants"].items():
            m = v["metrics"]
            x, y = v["throughput"]["fps"], m["primary"] * 100
            main = {"segment": "mask_map", "pose": "pose_map"}.get(r["task"], "box_map")
            lo, hi = (m.get("intervals") or {}).get(main, (m["primary"], m["primary"]))
            ax.errorbar(x, y, yerr=[[y - lo * 100], [hi * 100 - y]], fmt="o", capsize=3)
            ax.annotate(key, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
        ax.set_xlabel("frames/s (AsyncEngine, CPU)")
        ax.set_ylabel("main mAP50-95 (%), 95% interval")
        ax.set_title(f"{r['task']} ({r['validation_images']} validation images)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_png(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", default="detect,segment,pose", help="comma-separated subset of detect,segment,pose")
    p.add_argument("--ac-tasks", default="segment", help="tasks that also get accuracy control ('none' for none)")
    p.add_argument("--seconds", type=float, default=10.0, help="throughput run per IR (default 10)")
    p.add_argument("--max-drop", type=float, default=0.01, help="accuracy control max absolute drop (0.01)")
    p.add_argument("--ac-val-images", type=int, default=64, help="accuracy-control validation images (64)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the intervals (1000)")
    p.add_argument("--out", type=Path, default=REPO / "bench/results", help="results folder")
    p.add_argument(
        "--allow-overlap",
        action="store_true",
        help="measure even where calibration and validation share images (the results then say so)",
    )
    a = p.parse_args(argv)
    tasks = [t for t in a.tasks.split(",") if t]
    bad = [t for t in tasks if t not in TASKS]
    if bad:
        p.error(f"unknown task(s) {bad}")
    from yolovino.quantize.errors import QuantizeError

    with tempfile.TemporaryDirectory(prefix="qbench-check-") as tmp:
        try:  # every task's data before the first build: no accuracy figure from calibration images
            for task in tasks:
                data_overlap(assets() / TASKS[task]["calib"], validation_yaml(task, Path(tmp)), a.allow_overlap)
        except QuantizeError as exc:
            print(f"error: {task}: {exc}", file=sys.stderr)
            return 2
    ac_tasks = set() if a.ac_tasks == "none" else set(a.ac_tasks.split(","))
    import logging

    logging.getLogger("ultralytics").setLevel(logging.WARNING)
    t0 = time.perf_counter()
    a.out.mkdir(parents=True, exist_ok=True)
    previous = []
    if (a.out / "quantize.json").is_file():  # keep other tasks' results when running a subset
        try:
            previous = [
                r for r in json.loads((a.out / "quantize.json").read_text())["results"] if r["task"] not in tasks
            ]
        except (ValueError, KeyError):
            previous = []
    results = previous
    with tempfile.TemporaryDirectory(prefix="qbench-") as tmp:
        for task in tasks:
            results.append(
                bench_task(
                    task,
                    task in ac_tasks,
                    a.seconds,
                    Path(tmp) / task,
                    a.max_drop,
                    a.ac_val_images,
                    a.bootstrap,
                    a.allow_overlap,
                )
            )
            for v in results[-1]["variants"].values():
                v.pop("path", None)
            doc = {
                "benchmark": "quantize",
                "seconds_per_throughput_run": a.seconds,
                "total_s": round(time.perf_counter() - t0),
                "throughput_method": "AsyncEngine end-to-end (in-graph letterbox + infer + decode), THROUGHPUT "
                "hint, square 640 letterbox, conf 0.25, validation frames of one size",
                "results": results,
            }
            write_json(a.out / "quantize.json", doc)  # after each task
            plot(results, a.out / "quantize.png")
            print_table(results)
    print_table(results)
    print(f"wrote {a.out / 'quantize.json'} and quantize.png in {doc['total_s']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
