"""`yolovino-quantize`: YOLOv8/YOLO11 .pt -> FP32 + INT8 OpenVINO IRs, validated through our own runtime.

    yolovino-quantize build --weights yolov8n.pt --data coco128.yaml --val-data coco-val128.yaml
    yolovino-quantize build-default            # what `make run` calls when the default model is missing
    yolovino-quantize validate --model models/yolov8n/int8 --data coco-val128.yaml --reference models/yolov8n/fp32
    yolovino-quantize sensitivity --weights yolov8n.pt --data coco128.yaml --val-data coco-val128.yaml

Bad input (missing or non-YOLO checkpoint, dataset paths that do not exist, unreadable image folder,
task mismatch, out-of-range options) prints one `error: ...` line on stderr and exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from yolovino.quantize.checks import check_not_negative, check_positive
from yolovino.quantize.console import install_interrupt_handler, interrupted, quiet_ultralytics
from yolovino.quantize.errors import QuantizeError
from yolovino.quantize.options import BRANCHES, DEFAULT_BUILDS, PRESETS, RANGE_ESTIMATORS, BuildSettings

if TYPE_CHECKING:
    from yolovino.quantize.overlap import Overlap

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one `error: ...` line and exit code 2 like every other error."""

    def error(self, message: str) -> NoReturn:
        print(
            f"error: {message} (see `yolovino-quantize {self.prog.split()[-1]} --help`)"
            if " " in self.prog
            else f"error: {message} (see --help)",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_USAGE)


def branches(text: str) -> tuple[str, ...]:
    """--float-branches: comma-separated names from options.BRANCHES ('none' = none)."""
    names = tuple(b.strip() for b in text.split(",") if b.strip() and b.strip() != "none")
    unknown = [b for b in names if b not in BRANCHES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown branch(es) {', '.join(unknown)}; choose from {', '.join(BRANCHES)}")
    return names


def _add_quant_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--imgsz",
        type=int,
        help="square network input size, multiple of 32 (default: the size the checkpoint was trained at, else 640)",
    )
    p.add_argument(
        "--data",
        type=Path,
        help="Ultralytics dataset yaml: calibration images from its train split "
        "(and validation from its val split unless --val-data)",
    )
    p.add_argument(
        "--calib-images",
        type=Path,
        help="folder of calibration images instead of --data "
        "(recursive; jpg/png/bmp/webp; unreadable files are skipped)",
    )
    p.add_argument("--val-data", type=Path, help="labelled dataset yaml for COCO metrics (val split)")
    p.add_argument("--subset-size", type=int, default=300, help="calibration images used by NNCF (default 300)")
    p.add_argument(
        "--preset",
        choices=PRESETS,
        default="mixed",
        help="NNCF preset: mixed = symmetric weights + asymmetric activations (default), "
        "performance = symmetric everything",
    )
    p.add_argument(
        "--fast-bias-correction",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="NNCF fast bias correction (default: the task's, see quantize/options.py TASK_DEFAULTS; "
        "off = full BiasCorrection, slower)",
    )
    p.add_argument(
        "--range-estimator",
        choices=RANGE_ESTIMATORS,
        default="default",
        help="activation range estimator (default: NNCF's for the preset; min/max of each batch, their "
        "means, quantiles, ...; compared in bench/quantize_options.py)",
    )
    p.add_argument(
        "--float-branches",
        type=branches,
        default=None,
        help=f"head branches kept in float, comma-separated from {', '.join(BRANCHES)} or 'none' "
        "(default: the task's, see quantize/options.py TASK_DEFAULTS)",
    )
    p.add_argument("--out", type=Path, help="output root (default: the checkout's models/, or $YOLO_APP_MODELS)")
    _allow_overlap_opt(p)
    p.add_argument(
        "--task",
        choices=["detect", "segment", "pose"],
        help="expected task; an error if the checkpoint is another task (default: from the checkpoint)",
    )


def _allow_overlap_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-overlap",
        action="store_true",
        help="score on validation images that are also calibration images (the same file bytes or a "
        "re-encoded copy, quantize/overlap.py); refused without this option; every report then says so",
    )


def _bootstrap_opt(p: argparse.ArgumentParser, default: int) -> None:
    p.add_argument(
        "--bootstrap",
        type=int,
        default=default,
        help=f"resamples of the paired bootstrap over images for the 95%% intervals (default {default}; 0 = none)",
    )


def make_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="yolovino-quantize",
        description=(__doc__ or "").split("\n\n")[0],
        epilog="Exit codes: 0 ok, 2 bad input (one `error:` line on stderr), 130 interrupted.",
    )
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=Parser)

    b = sub.add_parser(
        "build",
        help="export + quantize + validate a checkpoint into <out>/<name>/",
        description="Writes <out>/<name>/fp32/<name>.xml, int8/ (PTQ), int8-ac/ (accuracy control), "
        "report.json and report.png. The folder is swapped in atomically at the end: a "
        "failed or interrupted build leaves the previous one intact.",
    )
    b.add_argument(
        "--weights",
        type=Path,
        required=True,
        help="Ultralytics YOLOv8/YOLO11 .pt (detect, segment or pose; any size, any classes)",
    )
    b.add_argument("--name", help="model name (default: the checkpoint's file stem)")
    b.add_argument(
        "--mode",
        choices=["ptq", "ac", "both"],
        default="ptq",
        help="ptq = nncf.quantize; ac = quantize_with_accuracy_control; both (default ptq)",
    )
    b.add_argument(
        "--max-drop",
        type=float,
        default=0.01,
        help="accuracy control: largest allowed ABSOLUTE drop of each task mAP50-95 (box; box and mask; box and "
        "keypoints), as a fraction 0 < x < 1 (0.01 = 1 mAP point; default 0.01)",
    )
    b.add_argument("--ac-val-images", type=int, default=64, help="validation images used by accuracy control (64)")
    b.add_argument("--ac-max-iterations", type=int, default=5, help="accuracy control: max revert iterations (5)")
    b.add_argument("--val-limit", type=int, help="validate on the first N images only")
    b.add_argument("--bench-seconds", type=float, default=5.0, help="throughput run per IR, seconds (0 = skip)")
    _bootstrap_opt(b, 1000)
    _add_quant_opts(b)

    bd = sub.add_parser(
        "build-default",
        help="build models/yolov8n (or --task segment / pose) from the reference data, calibration and "
        "validation disjoint",
        description="The reference models: <assets>/models/reconstructed/yolov8n[-seg|-pose].pt into "
        "models/<name>/. detect (what `make run` builds): calibrated on coco128's 128 images, validated on "
        "coco-val128; segment: calibrated on coco-val128's images, validated on coco128-seg; pose: calibrated "
        "on coco128's images, validated on coco-mini-pose (val2017). Assets root: ../shared or "
        "$YOLO_APP_ASSETS. About 1-2 minutes on 2 cores for detect, 5-6 for segment and pose.",
    )
    bd.add_argument("--task", choices=sorted(DEFAULT_BUILDS), default="detect", help="which model (detect)")

    v = sub.add_parser(
        "validate",
        help="COCO metrics of an IR on a labelled dataset, with 95%% intervals",
        description="Runs the IR through the app's own engine (in-graph letterbox, our NMS/decoding) "
        "with conf 0.001, iou 0.7, multi-label, max_det 300; faster-coco-eval metrics, each with a 95%% interval "
        "from a bootstrap over images. With --reference, also the difference to that model on the same images "
        "with its paired interval ('within noise' when it holds 0).",
    )
    v.add_argument("--model", type=Path, required=True, help="IR folder or .xml")
    v.add_argument("--data", type=Path, required=True, help="labelled Ultralytics dataset yaml (val split)")
    v.add_argument("--reference", type=Path, help="another IR (e.g. the FP32 one) to compare with, paired")
    v.add_argument("--limit", type=int, help="first N images only")
    v.add_argument("--bench-seconds", type=float, default=0.0, help="also measure throughput for N seconds")
    v.add_argument("--json", action="store_true", help="print the metrics as JSON")
    _allow_overlap_opt(v)
    _bootstrap_opt(v, 1000)
    v.add_argument(
        "--precision",
        choices=["f32", "bf16", "f16", "default"],
        default="f32",
        help="the CPU plugin's inference precision for float layers (default f32, so FP32 means FP32; "
        "'default' = the plugin's own choice, bf16 on CPUs that have it)",
    )

    s = sub.add_parser(
        "sensitivity",
        help="per-layer INT8 sensitivity ranking (+ build with top-K kept in FP32)",
        description="Quantizes once, then for each quantized conv restores just that layer to FP32 "
        "(original weights, no input FakeQuantize) and measures the task mAP on a small "
        "validation subset: the gain over full INT8 is that layer's sensitivity. Writes "
        "sensitivity.json + sensitivity.png; --keep-fp32 K builds an INT8 IR with the top-K "
        "layers in the ignored scope.",
    )
    s.add_argument("--weights", type=Path, required=True, help="Ultralytics YOLOv8/YOLO11 .pt")
    s.add_argument("--name", help="model name (default: checkpoint stem)")
    s.add_argument("--val-images", type=int, default=32, help="validation images per measurement (32)")
    s.add_argument("--max-layers", type=int, help="only measure the first N quantized layers (quick look)")
    s.add_argument("--top-k", type=int, default=10, help="rows in the printed table (10)")
    s.add_argument(
        "--keep-fp32",
        type=int,
        default=0,
        help="build <out>/<name>/int8-keep<K> with the top-K layers in FP32 (0 = no build)",
    )
    _add_quant_opts(s)
    return parser


def _models_root() -> Path:
    from yolovino.common.paths import models_root

    return models_root()


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.cmd is None:
        parser.print_help()
        return EXIT_USAGE
    from yolovino.common.extras import require

    missing = require(NEEDS[args.cmd], f"yolovino-quantize {args.cmd}")
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return EXIT_USAGE
    install_interrupt_handler()
    stopped = "error: interrupted; the previous model folder (if any) is unchanged"
    try:
        return COMMANDS[args.cmd](args)
    except QuantizeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(stopped, file=sys.stderr)
        return 130
    except ImportError as exc:  # a runtime-only install: torch, NNCF, Ultralytics come with the extra
        from yolovino.common.extras import missing_extra

        message = missing_extra(exc, f"yolovino-quantize {args.cmd}")
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # disk full, permissions, a path component that is a file...
        if interrupted():
            print(stopped, file=sys.stderr)
            return 130
        print(f"error: {exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # runtime errors of our own packages are still one line
        from yolovino.inference.core.errors import InferenceError

        if interrupted():
            print(stopped, file=sys.stderr)
            return 130
        if isinstance(exc, InferenceError):
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        raise


def cmd_build(a: argparse.Namespace) -> int:
    settings = BuildSettings(
        weights=a.weights,
        name=a.name,
        imgsz=a.imgsz,
        mode=a.mode,
        data=a.data,
        calib_images=a.calib_images,
        val_data=a.val_data,
        subset_size=a.subset_size,
        preset=a.preset,
        fast_bias_correction=a.fast_bias_correction,
        range_estimator=a.range_estimator,
        float_branches=a.float_branches,
        max_drop=a.max_drop,
        out=a.out or _models_root(),
        task=a.task,
        val_limit=a.val_limit,
        ac_val_images=a.ac_val_images,
        ac_max_iterations=a.ac_max_iterations,
        bench_seconds=a.bench_seconds,
        bootstrap=a.bootstrap,
        allow_overlap=a.allow_overlap,
    )
    return _build_and_summarise(settings, progress=sys.stderr.isatty())


def default_build_settings(task: str = "detect") -> BuildSettings:
    """The reference build of `task` (options.DEFAULT_BUILDS): calibration images that are never scored."""
    from yolovino.common.paths import assets_root, models_root

    root, d = assets_root(), DEFAULT_BUILDS[task]
    return BuildSettings(
        weights=root / d["pt"],
        name=d["name"],
        calib_images=root / d["calib"],
        val_data=root / d["val"],
        subset_size=300,
        out=models_root(),
        bench_seconds=3.0,
    )


def cmd_build_default(a: argparse.Namespace) -> int:
    s = default_build_settings(a.task)
    for path in (s.weights, s.calib_images, s.val_data):
        if path is not None and not Path(path).exists():
            raise QuantizeError(f"{path} is missing (assets root {Path(s.weights).parents[2]}; set YOLO_APP_ASSETS)")
    return _build_and_summarise(s, progress=True)


def _build_and_summarise(s: BuildSettings, progress: bool) -> int:
    from yolovino.quantize.build import build
    from yolovino.quantize.report import summary_lines

    report = build(s, progress=progress)
    print("\n".join(summary_lines(report, Path(s.out) / s.model_name)))
    return 0


def cmd_validate(a: argparse.Namespace) -> int:
    from yolovino.quantize.bootstrap import BootstrapSettings, PairedBootstrap
    from yolovino.quantize.calibration import load_dataset_yaml
    from yolovino.quantize.metrics import LABELS
    from yolovino.quantize.validate import throughput, throughput_frames, validate_ir

    check_positive(limit=a.limit)
    check_not_negative(bench_seconds=a.bench_seconds, bootstrap=a.bootstrap)
    overlap = validate_overlap(a.model, a.data, a.limit, a.allow_overlap)
    quiet_ultralytics()
    precision = None if a.precision == "default" else a.precision
    tty = sys.stderr.isatty()
    m = validate_ir(a.model, a.data, limit=a.limit, progress=tty, precision=precision)
    ref = validate_ir(a.reference, a.data, limit=a.limit, progress=tty, precision=precision) if a.reference else None
    diffs = {}
    if a.bootstrap > 0:
        pairs = PairedBootstrap(m.evaluation["box"].image_ids, BootstrapSettings(resamples=a.bootstrap))
        pairs.intervals(m)
        if ref is not None:
            pairs.intervals(ref)
            diffs = pairs.compare(ref, m)
    out = m.to_dict()
    out["validation"] = f"{a.data} (val)"
    out["calibration"] = overlap.calibration if overlap is not None else None
    out["overlap"] = overlap.to_dict() if overlap is not None else None
    if ref is not None:
        out["reference"] = {"model": str(a.reference), "metrics": ref.to_dict()}
        out["vs_reference"] = {k: d.to_dict() for k, d in diffs.items()}
    if a.bench_seconds > 0:
        frames = throughput_frames(list(load_dataset_yaml(a.data).images))
        out["throughput"] = throughput(a.model, frames, a.bench_seconds)
    if a.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{a.model} on {a.data}: {m.line()} [CPU precision {m.extra.get('cpu_inference_precision')}]")
    if overlap is None:
        print("calibration set: unknown (no calibration-images.txt from a build beside the model): overlap not checked")
    else:
        shared = f"shares {overlap.shared_images}" if overlap.shared_images else "shares no"
        print(f"calibration set: {overlap.calibration}; {shared} image with validation (file bytes or re-encoded copy)")
        if overlap.warning():
            print(overlap.warning())
    if ref is not None:
        print(f"{a.reference} (reference): {ref.line()}")
        for k, d in diffs.items():
            print(f"  {LABELS[k]}: {d.text()} points vs reference")
    if a.bootstrap > 0:
        print(f"[intervals: 95% bootstrap over the {m.images} images, {a.bootstrap} resamples; differences paired]")
    if "throughput" in out:
        print(f"throughput: {out['throughput']['fps']:.1f} frames/s ({out['throughput']['method']})")
    return 0


def validate_overlap(model: Path, data: Path, limit: int | None, allow: bool) -> Overlap | None:
    """The overlap of the images `validate` scores with the calibration set the model's build recorded
    (overlap.recorded_calibration); None when no build recorded one. Refused (QuantizeError) unless `allow`."""
    from yolovino.quantize.calibration import load_dataset_yaml
    from yolovino.quantize.overlap import ImageSet, compare, recorded_calibration

    calib = recorded_calibration(model)
    if calib is None:
        return None
    images = load_dataset_yaml(data, "val").images
    return compare(calib, ImageSet.of(f"{data} (val)", images[:limit] if limit else images), allow=allow)


def cmd_sensitivity(a: argparse.Namespace) -> int:
    from yolovino.quantize.sensitivity import run_sensitivity

    quiet_ultralytics()
    run_sensitivity(a)
    return 0


# what each command imports beyond the runtime (all from the `quantize` extra), checked before it starts
_BUILD_NEEDS = ("torch", "ultralytics", "nncf", "faster_coco_eval", "matplotlib")
NEEDS = {
    "build": _BUILD_NEEDS,
    "build-default": _BUILD_NEEDS,
    "validate": ("faster_coco_eval",),
    "sensitivity": _BUILD_NEEDS,
}

COMMANDS = {
    "build": cmd_build,
    "build-default": cmd_build_default,
    "validate": cmd_validate,
    "sensitivity": cmd_sensitivity,
}
