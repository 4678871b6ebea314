"""`build`: checkpoint -> FP32 IR -> INT8 IR(s) -> validation with intervals -> benchmark -> report, in one folder.

Everything lands in <out>/<name>/ in one atomic swap (export.StagedFolder): a failed or interrupted build leaves
the previous model as it was. Each step is timed and shown (a progress bar on a terminal, one log line each).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yolovino.quantize.checks import check_build, check_val_data, checkpoint_task
from yolovino.quantize.console import log, quiet_ultralytics, raise_if_interrupted
from yolovino.quantize.errors import QuantizeError
from yolovino.quantize.options import BuildSettings, QuantOptions
from yolovino.quantize.report import (
    AccuracyControl,
    BuildReport,
    Calibration,
    IgnoredScope,
    Validation,
    Variant,
    write_report,
)

if TYPE_CHECKING:
    import numpy as np
    import openvino as ov

    from yolovino.inference.model.ir import ModelMeta
    from yolovino.quantize.bootstrap import BootstrapSettings

PREPROCESSING = (
    "host letterbox (Letterbox.numpy_letterbox, rect=False) + BGR->RGB + /255, identical to the in-graph preprocessing"
)
VALIDATION_SETTINGS = (
    "conf 0.001, iou 0.7, multi-label, max_det 300, square letterbox; COCO mAP (faster-coco-eval), "
    "maxDets 100 (keypoints 20); 95 % intervals: paired bootstrap over images"
)


class Steps:
    """The build's steps: one log line each, a progress bar on a terminal, the seconds each took."""

    def __init__(self, name: str, labels: list[str], progress: bool):
        self.name = name
        self.timings: dict[str, float] = {}
        self.bar: Any = None
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(total=len(labels), desc=f"build {name}", unit="step", file=sys.stderr)

    def note(self, label: str) -> None:
        raise_if_interrupted()
        if self.bar is not None:
            self.bar.set_postfix_str(label)
            self.bar.refresh()
        log(f"{self.name}: {label}")

    @contextmanager
    def step(self, label: str, timing: str | None = None) -> Iterator[None]:
        self.note(label)
        t = time.perf_counter()
        yield
        if timing:
            self.timings[timing] = self.timings.get(timing, 0.0) + time.perf_counter() - t
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def build(s: BuildSettings, progress: bool = False) -> BuildReport:
    """Export, quantize, validate (with intervals vs FP32) and benchmark; returns the report it wrote."""
    from yolovino.quantize.bootstrap import BootstrapSettings
    from yolovino.quantize.calibration import ImageSource, load_dataset_yaml
    from yolovino.quantize.export import StagedFolder, export_fp32, ir_size_mb, save_ir
    from yolovino.quantize.overlap import HASHES_FILE, ImageSet, compare
    from yolovino.quantize.scopes import find_decode_scope

    t_start = time.perf_counter()
    check_build(s)
    # every input is read once before the slow steps, so that a typo fails in seconds
    source = ImageSource.from_args(s.data if s.calib_images is None else None, s.calib_images, split="train")
    quiet_ultralytics()
    source.check()
    task, nc, trained_imgsz = checkpoint_task(s.weights, s.task)
    imgsz = s.imgsz or trained_imgsz
    options = s.options_for(task)
    val_data = s.validation_data
    if val_data is not None:
        check_val_data(val_data, task, nc)
    if s.mode != "ptq" and val_data is None:
        raise QuantizeError("--mode ac needs labelled validation data: --val-data <dataset.yaml>")
    # no accuracy figure (nor accuracy control) from calibration images, unless --allow-overlap
    calib_set = ImageSet.of(source.origin, source.paths)
    overlap = None
    if val_data is not None:
        val_set = ImageSet.of(f"{val_data} (val)", load_dataset_yaml(val_data, "val").images)
        overlap = compare(calib_set, val_set, allow=s.allow_overlap)
        if overlap.shared_images:
            log(overlap.warning() or "")
    name = s.model_name
    labels = ["export", "calibrate", "quantize"] + (["accuracy-control"] if s.mode != "ptq" else [])
    labels += (["validate"] if val_data else []) + (["benchmark"] if s.bench_seconds > 0 else []) + ["report"]
    steps = Steps(name, labels, progress)
    report = BuildReport(
        name=name,
        task=task,
        weights=str(Path(s.weights).resolve()),
        imgsz=imgsz,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        mode=s.mode,
        overlap=overlap,
    )
    with StagedFolder(Path(s.out) / name) as staged:
        with steps.step("export FP32", "export_s"):
            fp32, meta = export_fp32(s.weights, imgsz)
            save_ir(fp32, staged.path / "fp32", name)
            report.names = dict(meta.names)
        with steps.step(
            f"calibration tensors (up to {s.subset_size} images from {source.origin})", "calibration_data_s"
        ):
            calib = source.tensors(meta.imgsz, meta.stride, limit=s.subset_size)
            report.calibration = Calibration(
                source.origin,
                len(calib),
                source.skipped,
                options.as_dict(),
                PREPROCESSING,
                images_sha256=calib_set.digest,
                hashes_file=HASHES_FILE,
            )
            calib_set.write(staged.path / HASHES_FILE)
            if source.skipped:
                log(f"{source.skipped} unreadable calibration image(s) skipped")
        scope = find_decode_scope(fp32)
        report.ignored_scope = IgnoredScope(
            "graph walk from outputs back to the head's last learned convs (quantize/scopes.py)",
            len(scope.names),
            scope.types,
            scope.boundary_convs,
            list(s.keep_fp32),
        )
        report.variants["fp32"] = Variant(f"fp32/{name}.xml")
        _quantize(report, staged.path, fp32, meta, calib, options, s, steps)
        for v in report.variants.values():
            v.size_mb = ir_size_mb(staged.path / v.path)
        if val_data is not None:
            with steps.step("validate", "validate_s"):
                ds = load_dataset_yaml(val_data, "val")
                report.validation = Validation(
                    str(val_data), ds.split, min(len(ds.images), s.val_limit or len(ds.images)), VALIDATION_SETTINGS
                )
                _validate(report, staged.path, val_data, s, BootstrapSettings(resamples=s.bootstrap), steps, progress)
        if s.bench_seconds > 0:
            with steps.step("benchmark", "benchmark_s"):
                _benchmark(report, staged.path, source.paths, val_data, s.bench_seconds, steps)
        with steps.step("report"):
            report.timings = {k: round(v, 1) for k, v in steps.timings.items()}
            report.timings["total_s"] = round(time.perf_counter() - t_start, 1)
            report.versions = _versions()
            write_report(staged.path, report)
        raise_if_interrupted()  # a Ctrl-C that a library swallowed must not publish the new model
        staged.commit()
    steps.close()
    log(f"wrote {Path(s.out) / name} in {report.timings['total_s']:.0f}s")
    return report


def _quantize(
    report: BuildReport,
    folder: Path,
    fp32: ov.Model,
    meta: ModelMeta,
    calib: list[np.ndarray],
    options: QuantOptions,
    s: BuildSettings,
    steps: Steps,
) -> None:
    """The INT8 variants: PTQ (int8/), and accuracy control (int8-ac/) starting from the same PTQ model."""
    from yolovino.quantize.export import save_ir
    from yolovino.quantize.ptq import count_fake_quantize, quantize_ptq

    name = report.name
    with steps.step("PTQ (nncf.quantize)", "ptq_s"):
        ptq = quantize_ptq(fp32, meta, calib, options, extra_ignored=list(s.keep_fp32))
        if s.mode in ("ptq", "both"):
            save_ir(ptq, folder / "int8", name)
            report.variants["int8"] = Variant(f"int8/{name}.xml", fake_quantize_nodes=count_fake_quantize(ptq))
    val_data = s.validation_data
    if s.mode == "ptq" or val_data is None:
        return
    from yolovino.quantize.accuracy_control import AC_METRIC, quantize_ac

    with steps.step(f"accuracy control (max drop {s.max_drop}, {s.ac_val_images} val images)", "accuracy_control_s"):
        ac = quantize_ac(
            fp32,
            meta,
            calib,
            val_data,
            max_drop=s.max_drop,
            options=options,
            val_images=s.ac_val_images,
            max_iterations=s.ac_max_iterations,
            ptq_model=ptq,
        )
        save_ir(ac.model, folder / "int8-ac", name)
        report.variants["int8-ac"] = Variant(
            f"int8-ac/{name}.xml",
            fake_quantize_nodes=count_fake_quantize(ac.model),
            accuracy_control=AccuracyControl(
                s.max_drop, s.ac_val_images, AC_METRIC[report.task], ac.reverted, ac.reverted_source, ac.log
            ),
        )


def _validate(
    report: BuildReport,
    folder: Path,
    val_data: Path,
    s: BuildSettings,
    boot: BootstrapSettings,
    steps: Steps,
    progress: bool,
) -> None:
    """Every variant's COCO metrics, their intervals, and each INT8 variant's paired difference to FP32."""
    from yolovino.quantize.bootstrap import PairedBootstrap
    from yolovino.quantize.validate import validate_ir

    assert report.validation is not None
    measured = {}
    for key, v in report.variants.items():
        steps.note(f"validate {key}")
        m = validate_ir(folder / v.path, val_data, limit=s.val_limit, progress=progress)
        v.metrics = measured[key] = m
        report.validation.cpu_inference_precision = m.extra.get("cpu_inference_precision")
        log(f"{key:8s} {m.line()}")
    base = measured["fp32"]
    for v in report.variants.values():
        if v.metrics is not None:
            v.drop_vs_fp32 = round(base.primary - v.metrics.primary, 5)
    if boot.resamples == 0:
        return
    steps.note(f"bootstrap intervals ({boot.resamples} resamples)")
    t = time.perf_counter()
    pairs = PairedBootstrap(base.evaluation["box"].image_ids, boot)
    for key, v in report.variants.items():
        pairs.intervals(measured[key])
        if key != "fp32":
            v.vs_fp32 = pairs.compare(base, measured[key])
            log(
                f"{key:8s} vs fp32: " + "; ".join(f"{k} {d.text()}" for k, d in v.vs_fp32.items() if k.endswith("_map"))
            )
    report.validation.bootstrap = {**boot.as_dict(), "seconds": round(time.perf_counter() - t, 1)}


def _benchmark(
    report: BuildReport, folder: Path, calib_paths: list[Path], val_data: Path | None, seconds: float, steps: Steps
) -> None:
    from yolovino.quantize.calibration import load_dataset_yaml
    from yolovino.quantize.report import Throughput
    from yolovino.quantize.validate import throughput, throughput_frames

    paths = list(load_dataset_yaml(val_data, "val").images) if val_data else list(calib_paths)
    frames = throughput_frames(paths)
    for key, v in report.variants.items():
        steps.note(f"benchmark {key}")
        v.throughput = Throughput(**throughput(folder / v.path, frames, seconds))
        log(f"{key:8s} {v.throughput.fps:.1f} frames/s")


def _versions() -> dict[str, str]:
    out = {}
    for mod in ("openvino", "nncf", "ultralytics", "torch"):
        try:
            out[mod] = __import__(mod).__version__
        except (ImportError, AttributeError):
            pass
    return out
