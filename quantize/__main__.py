"""`python -m quantize`: YOLOv8 .pt -> FP32 + INT8 OpenVINO IRs, validated through our own runtime.

    python -m quantize build --weights yolov8n.pt --data coco128.yaml --val-data coco-val128.yaml
    python -m quantize build-default            # what `make run` calls when the default model is missing
    python -m quantize validate --model models/yolov8n/int8 --data coco-val128.yaml
    python -m quantize sensitivity --weights yolov8n.pt --data coco128.yaml --val-data coco-val128.yaml

Bad input (missing or non-YOLO checkpoint, dataset paths that do not exist, unreadable image folder,
task mismatch, out-of-range options) prints one `error: ...` line on stderr and exits with code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from .errors import QuantizeError
from .options import PRESETS, RANGE_ESTIMATORS, QuantOptions

REPO_ROOT = Path(__file__).resolve().parents[1]
EXIT_USAGE = 2


def log(msg: str) -> None:
    print(f"[quantize] {msg}", file=sys.stderr, flush=True)


def quiet_ultralytics() -> None:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    for name in ("ultralytics", "nncf"):
        logging.getLogger(name).setLevel(logging.WARNING)


# --- argument checks (cheap, before any heavy work) -----------------------------------------------------


def check_imgsz(imgsz: int) -> int:
    if imgsz <= 0 or imgsz % 32:
        raise QuantizeError(f"--imgsz {imgsz} must be a positive multiple of 32 (the YOLOv8 stride)")
    return imgsz


def check_max_drop(value: float) -> float:
    """0 < max_drop < 1 as an mAP fraction (0.01 = 1 mAP point)."""
    if not 0.0 < value < 1.0:
        raise QuantizeError(
            f"--max-drop {value} out of range: give an mAP fraction, 0 < max-drop < 1 (0.01 = 1 mAP point)"
        )
    return value


def check_out(out: Path) -> Path:
    """The output root must be (or become) a folder."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise QuantizeError(f"--out {out} is a file; give a folder (it is created if missing)")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise QuantizeError(f"--out {out}: {parent} is a file, not a folder")
            break
    return out


def check_positive(**values) -> None:
    """Options that must be >= 1 when given (None = not given)."""
    for name, value in values.items():
        if value is not None and value < 1:
            raise QuantizeError(f"--{name.replace('_', '-')} must be >= 1, got {value}")


def checkpoint_task(weights: Path, task: str | None) -> tuple[str, int]:
    from .export import load_yolo

    yolo = load_yolo(weights)
    if task and task != yolo.task:
        raise QuantizeError(f"--task {task} but {weights.name} is a {yolo.task} model")
    return yolo.task, len(yolo.names)


def check_val_data(data: Path, task: str, nc: int):
    from .calibration import load_dataset_yaml
    from .validate import check_task

    ds = load_dataset_yaml(data, "val")
    check_task(ds, task, nc)
    return ds


# --- build ----------------------------------------------------------------------------------------------


def build(
    weights: Path,
    *,
    name: str | None = None,
    imgsz: int = 640,
    mode: str = "ptq",
    data: Path | None = None,
    calib_images: Path | None = None,
    val_data: Path | None = None,
    subset_size: int = 300,
    preset: str = "mixed",
    fast_bias_correction: bool | None = None,
    range_estimator: str = "default",
    max_drop: float = 0.01,
    out: Path = Path("models"),
    task: str | None = None,
    val_limit: int | None = None,
    ac_val_images: int = 64,
    ac_max_iterations: int = 5,
    bench_seconds: float = 5.0,
    progress: bool = False,
    keep_fp32: list[str] | None = None,
) -> dict:
    """Export, quantize, validate and benchmark; everything lands in out/<name>/ in one atomic swap."""

    from .calibration import ImageSource, load_dataset_yaml, read_image
    from .export import StagedFolder, export_fp32, ir_size_mb, save_ir
    from .ptq import count_fake_quantize, quantize_ptq
    from .report import write_report
    from .scopes import find_decode_scope
    from .validate import throughput, validate_ir

    t_start = time.perf_counter()
    weights = Path(weights)
    check_imgsz(imgsz)
    if mode not in ("ptq", "ac", "both"):
        raise QuantizeError(f"--mode must be ptq, ac or both, got {mode!r}")
    if mode != "ptq":
        check_max_drop(max_drop)
    if subset_size < 1:
        raise QuantizeError(f"--subset-size must be >= 1, got {subset_size}")
    QuantOptions(preset, subset_size, True, range_estimator)  # rejects bad values before any slow step
    check_positive(val_limit=val_limit, ac_val_images=ac_val_images, ac_max_iterations=ac_max_iterations)
    if bench_seconds < 0:
        raise QuantizeError(f"--bench-seconds must be >= 0, got {bench_seconds}")
    check_out(out)
    if data is None and calib_images is None:
        raise QuantizeError("calibration data needed: --data <dataset.yaml> or --calib-images <folder>")
    quiet_ultralytics()
    # Validate every input before the slow steps, so a typo fails in seconds.
    source = ImageSource.from_args(data if calib_images is None else None, calib_images, split="train").check()
    task, nc = checkpoint_task(weights, task)
    options = QuantOptions.for_task(
        task,
        preset=preset,
        subset_size=subset_size,
        fast_bias_correction=fast_bias_correction,
        range_estimator=range_estimator,
    )
    if val_data is None and data is not None:
        val_data = data
    if val_data is not None:
        check_val_data(val_data, task, nc)
    if mode != "ptq" and val_data is None:
        raise QuantizeError("--mode ac needs labelled validation data: --val-data <dataset.yaml>")
    name = name or weights.stem
    steps = (
        ["export", "calibrate", "quantize"]
        + (["accuracy-control"] if mode != "ptq" else [])
        + (["validate"] if val_data else [])
        + (["benchmark"] if bench_seconds > 0 else [])
        + ["report"]
    )
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(steps), desc=f"build {name}", unit="step", file=sys.stderr)

    def stage(label: str) -> None:
        _raise_if_interrupted()
        if bar is not None:
            bar.set_postfix_str(label)
            bar.refresh()
        log(f"{name}: {label}")

    def done() -> None:
        if bar is not None:
            bar.update(1)

    timings: dict[str, float] = {}
    report: dict = {
        "name": name,
        "task": task,
        "weights": str(weights.resolve()),
        "imgsz": imgsz,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": mode,
    }
    with StagedFolder(Path(out) / name) as staged:
        t = time.perf_counter()
        stage("export FP32")
        fp32, meta = export_fp32(weights, imgsz)
        save_ir(fp32, staged.path / "fp32", name)
        timings["export_s"] = time.perf_counter() - t
        done()

        t = time.perf_counter()
        stage(f"calibration tensors (up to {subset_size} images from {source.origin})")
        calib = source.tensors(meta.imgsz, meta.stride, limit=subset_size)
        timings["calibration_data_s"] = time.perf_counter() - t
        report["calibration"] = {
            "source": source.origin,
            "images": len(calib),
            "skipped_unreadable": source.skipped,
            **options.as_dict(),
            "preprocessing": "host letterbox (Letterbox.numpy_letterbox, rect=False) + "
            "BGR->RGB + /255, identical to the in-graph preprocessing",
        }
        if source.skipped:
            log(f"{source.skipped} unreadable calibration image(s) skipped")
        done()

        scope = find_decode_scope(fp32)
        report["ignored_scope"] = {
            "method": "graph walk from outputs back to the head's last learned convs (quantize/scopes.py)",
            "nodes": len(scope.names),
            "types": scope.types,
            "boundary_convs": scope.boundary_convs,
            "extra_fp32_layers": keep_fp32 or [],
        }
        variants: dict[str, dict] = {"fp32": {"path": f"fp32/{name}.xml"}}
        t = time.perf_counter()
        stage("PTQ (nncf.quantize)")
        ptq = quantize_ptq(fp32, meta, calib, options, extra_ignored=keep_fp32)
        timings["ptq_s"] = time.perf_counter() - t
        if mode in ("ptq", "both"):
            save_ir(ptq, staged.path / "int8", name)
            variants["int8"] = {"path": f"int8/{name}.xml", "fake_quantize_nodes": count_fake_quantize(ptq)}
        done()

        if mode != "ptq":
            from .accuracy_control import quantize_ac

            t = time.perf_counter()
            stage(f"accuracy control (max drop {max_drop}, {ac_val_images} val images)")
            ac = quantize_ac(
                fp32,
                meta,
                calib,
                val_data,
                max_drop=max_drop,
                options=options,
                val_images=ac_val_images,
                max_iterations=ac_max_iterations,
                ptq_model=ptq,
            )
            save_ir(ac.model, staged.path / "int8-ac", name)
            timings["accuracy_control_s"] = time.perf_counter() - t
            variants["int8-ac"] = {
                "path": f"int8-ac/{name}.xml",
                "fake_quantize_nodes": count_fake_quantize(ac.model),
                "reverted_to_fp32": ac.reverted,
                "reverted_source": ac.reverted_source,
                "max_drop": max_drop,
                "validation_images": ac_val_images,
                "nncf_log": ac.log,
            }
            done()
        del ptq

        for v in variants.values():
            v["size_mb"] = ir_size_mb(staged.path / v["path"])
        if val_data is not None:
            t = time.perf_counter()
            ds = load_dataset_yaml(val_data, "val")
            report["validation"] = {
                "data": str(val_data),
                "split": ds.split,
                "images": min(len(ds.images), val_limit or len(ds.images)),
                "settings": "conf 0.001, iou 0.7, multi-label, max_det 300, square letterbox; "
                "COCO mAP (faster-coco-eval), maxDets 100 (keypoints 20)",
            }
            for key, v in variants.items():
                stage(f"validate {key}")
                m = validate_ir(staged.path / v["path"], val_data, limit=val_limit, progress=progress)
                v["metrics"] = m.to_dict()
                report["validation"]["cpu_inference_precision"] = m.extra.get("cpu_inference_precision")
                log(f"{key:8s} {m.line()}")
            timings["validate_s"] = time.perf_counter() - t
            done()
        if bench_seconds > 0:
            t = time.perf_counter()
            bench_ds = load_dataset_yaml(val_data, "val") if val_data else None
            paths = list(bench_ds.images) if bench_ds else list(source.paths)
            frames = [f for f in (read_image(p) for p in paths[:32]) if f is not None]
            frames = _most_common_size(frames)
            for key, v in variants.items():
                stage(f"benchmark {key}")
                v["throughput"] = throughput(staged.path / v["path"], frames, bench_seconds)
                log(f"{key:8s} {v['throughput']['fps']:.1f} frames/s")
            timings["benchmark_s"] = time.perf_counter() - t
            done()
        stage("report")
        if "fp32" in variants and variants["fp32"].get("metrics"):
            base = variants["fp32"]["metrics"]["primary"]
            for v in variants.values():
                if v.get("metrics"):
                    v["drop_vs_fp32"] = round(base - v["metrics"]["primary"], 5)
        report["variants"] = variants
        timings["total_s"] = time.perf_counter() - t_start
        report["timings"] = {k: round(v, 1) for k, v in timings.items()}
        report["versions"] = _versions()
        write_report(staged.path, report)
        done()
        _raise_if_interrupted()  # a Ctrl-C that a library swallowed must not publish the new model
        staged.commit()
    if bar is not None:
        bar.close()
    log(f"wrote {Path(out) / name} in {timings['total_s']:.0f}s")
    return report


def _most_common_size(frames: list) -> list:
    """Frames of the most frequent size only: one compiled graph, a throughput number that means one thing."""
    from collections import Counter

    if not frames:
        return frames
    shape = Counter(f.shape for f in frames).most_common(1)[0][0]
    return [f for f in frames if f.shape == shape]


def _versions() -> dict:
    out = {}
    for mod in ("openvino", "nncf", "ultralytics", "torch"):
        try:
            out[mod] = __import__(mod).__version__
        except (ImportError, AttributeError):
            pass
    return out


# --- CLI ------------------------------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one `error: ...` line and exit code 2 like every other error."""

    def error(self, message):
        print(
            f"error: {message} (see `python -m quantize {self.prog.split()[-1]} --help`)"
            if " " in self.prog
            else f"error: {message} (see --help)",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_USAGE)


def _add_quant_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--imgsz", type=int, default=640, help="square network input size, multiple of 32 (default 640)")
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
        help="NNCF fast bias correction (default: on, except for pose where full BiasCorrection "
        "measured better, see quantize/options.py; off = full BiasCorrection, slower)",
    )
    p.add_argument(
        "--range-estimator",
        choices=RANGE_ESTIMATORS,
        default="default",
        help="activation range estimator (default: NNCF's for the preset; min/max of each batch, their "
        "means, quantiles, ...; compared in bench/quantize_options.py)",
    )
    p.add_argument("--out", type=Path, default=Path("models"), help="output root (default models/)")
    p.add_argument(
        "--task",
        choices=["detect", "segment", "pose"],
        help="expected task; an error if the checkpoint is another task (default: from the checkpoint)",
    )


def make_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m quantize",
        description=__doc__.split("\n\n")[0],
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
    b.add_argument("--weights", type=Path, required=True, help="Ultralytics YOLOv8 .pt (detect, segment or pose)")
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
        help="accuracy control: largest allowed ABSOLUTE drop of the task's mAP50-95, as a fraction "
        "0 < x < 1 (0.01 = 1 mAP point; default 0.01)",
    )
    b.add_argument("--ac-val-images", type=int, default=64, help="validation images used by accuracy control (64)")
    b.add_argument("--ac-max-iterations", type=int, default=5, help="accuracy control: max revert iterations (5)")
    b.add_argument("--val-limit", type=int, help="validate on the first N images only")
    b.add_argument("--bench-seconds", type=float, default=5.0, help="throughput run per IR, seconds (0 = skip)")
    _add_quant_opts(b)

    sub.add_parser(
        "build-default",
        help="build models/yolov8n (PTQ on coco128, validated on coco-val128)",
        description="The default model for `make run`: <assets>/models/reconstructed/yolov8n.pt, "
        "calibrated on 128 coco128 images, validated on coco-val128, into models/yolov8n/. "
        "Assets root: ../shared or $YOLO_APP_ASSETS. About 1-2 minutes on 2 cores.",
    )

    v = sub.add_parser(
        "validate",
        help="COCO metrics of an IR on a labelled dataset",
        description="Runs the IR through the app's own engine (in-graph letterbox, our NMS/decoding) "
        "with conf 0.001, iou 0.7, multi-label, max_det 300; faster-coco-eval metrics.",
    )
    v.add_argument("--model", type=Path, required=True, help="IR folder or .xml")
    v.add_argument("--data", type=Path, required=True, help="labelled Ultralytics dataset yaml (val split)")
    v.add_argument("--limit", type=int, help="first N images only")
    v.add_argument("--bench-seconds", type=float, default=0.0, help="also measure throughput for N seconds")
    v.add_argument("--json", action="store_true", help="print the metrics as JSON")
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
    s.add_argument("--weights", type=Path, required=True, help="Ultralytics YOLOv8 .pt")
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


_INTERRUPTED = False


def _on_sigint(signum, frame):
    """Remember the Ctrl-C: libraries (torch tracing, OpenVINO conversion) may re-raise it as another type."""
    global _INTERRUPTED
    _INTERRUPTED = True
    raise KeyboardInterrupt


def _raise_if_interrupted() -> None:
    """torch tracing and NNCF's progress bars sometimes catch the KeyboardInterrupt: re-raise it ourselves."""
    if _INTERRUPTED:
        raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    import signal

    parser = make_parser()
    args = parser.parse_args(argv)
    if args.cmd is None:
        parser.print_help()
        return EXIT_USAGE
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)
    interrupted = "error: interrupted; the previous model folder (if any) is unchanged"
    try:
        return COMMANDS[args.cmd](args)
    except QuantizeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
    except OSError as exc:  # disk full, permissions, a path component that is a file...
        if _INTERRUPTED:
            print(interrupted, file=sys.stderr)
            return 130
        print(f"error: {exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # runtime errors of our own packages are still one line
        from inference.errors import InferenceError

        if _INTERRUPTED:
            print(interrupted, file=sys.stderr)
            return 130
        if isinstance(exc, InferenceError):
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        raise


def cmd_build(a) -> int:
    build(
        a.weights,
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
        max_drop=a.max_drop,
        out=a.out,
        task=a.task,
        val_limit=a.val_limit,
        ac_val_images=a.ac_val_images,
        ac_max_iterations=a.ac_max_iterations,
        bench_seconds=a.bench_seconds,
        progress=sys.stderr.isatty(),
    )
    _print_summary(a.out / (a.name or a.weights.stem) / "report.json")
    return 0


def default_build_args() -> dict:
    from inference.assets import assets_root

    root = assets_root()
    return dict(
        weights=root / "models/reconstructed/yolov8n.pt",
        name="yolov8n",
        imgsz=640,
        mode="ptq",
        data=root / "datasets/coco128/coco128.yaml",
        val_data=root / "datasets/coco-val128/coco-val128.yaml",
        subset_size=128,
        out=REPO_ROOT / "models",
        bench_seconds=3.0,
    )


def cmd_build_default(_a) -> int:
    kw = default_build_args()
    for key in ("weights", "data", "val_data"):
        if not Path(kw[key]).exists():
            raise QuantizeError(
                f"{kw[key]} is missing (assets root {Path(kw['weights']).parents[2]}; set YOLO_APP_ASSETS)"
            )
    build(progress=True, **kw)
    _print_summary(kw["out"] / "yolov8n" / "report.json")
    return 0


def _print_summary(report_json: Path) -> None:
    import json

    r = json.loads(Path(report_json).read_text())
    print(f"{r['name']} ({r['task']}) -> {Path(report_json).parent}")
    print(f"{'variant':9s} {'primary mAP50-95':>17s} {'box mAP50-95':>13s} {'frames/s':>9s} {'size MB':>8s}")
    for key, v in r["variants"].items():
        m = v.get("metrics") or {}
        fps = (v.get("throughput") or {}).get("fps")
        print(
            f"{key:9s} {_fmt(m.get('primary')):>17s} {_fmt(m.get('box_map')):>13s} "
            f"{(f'{fps:.1f}' if fps else '-'):>9s} {v.get('size_mb', 0):8.1f}"
        )
        if v.get("reverted_to_fp32") is not None and key == "int8-ac":
            print(f"          reverted to FP32 by accuracy control: {len(v['reverted_to_fp32'])} op(s)")


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.4f}"


def cmd_validate(a) -> int:
    import json

    from .validate import throughput, validate_ir

    check_positive(limit=a.limit)
    if a.bench_seconds < 0:
        raise QuantizeError(f"--bench-seconds must be >= 0, got {a.bench_seconds}")
    quiet_ultralytics()
    m = validate_ir(
        a.model,
        a.data,
        limit=a.limit,
        progress=sys.stderr.isatty(),
        precision=None if a.precision == "default" else a.precision,
    )
    out = m.to_dict()
    if a.bench_seconds > 0:
        from .calibration import load_dataset_yaml, read_image

        frames = [f for f in (read_image(p) for p in load_dataset_yaml(a.data).images[:32]) if f is not None]
        out["throughput"] = throughput(a.model, _most_common_size(frames), a.bench_seconds)
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{a.model} on {a.data}: {m.line()} [CPU precision {m.extra.get('cpu_inference_precision')}]")
        if "throughput" in out:
            print(f"throughput: {out['throughput']['fps']:.1f} frames/s ({out['throughput']['method']})")
    return 0


def cmd_sensitivity(a) -> int:
    from .sensitivity import run_sensitivity

    quiet_ultralytics()
    run_sensitivity(a)
    return 0


COMMANDS = {
    "build": cmd_build,
    "build-default": cmd_build_default,
    "validate": cmd_validate,
    "sensitivity": cmd_sensitivity,
}

if __name__ == "__main__":
    sys.exit(main())
