"""Cheap checks of the commands' inputs, run before any slow step so that a typo fails in seconds.

Each failure is a QuantizeError, which the CLI prints as one `error: ...` line with exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from yolovino.quantize.errors import QuantizeError
from yolovino.quantize.options import BuildSettings, QuantOptions

if TYPE_CHECKING:
    from yolovino.quantize.calibration import Dataset


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


def check_positive(**values: int | None) -> None:
    """Options that must be >= 1 when given (None = not given)."""
    for name, value in values.items():
        if value is not None and value < 1:
            raise QuantizeError(f"--{name.replace('_', '-')} must be >= 1, got {value}")


def check_not_negative(**values: float) -> None:
    for name, value in values.items():
        if value < 0:
            raise QuantizeError(f"--{name.replace('_', '-')} must be >= 0, got {value}")


def check_build(s: BuildSettings) -> None:
    """Every build setting that can be judged without reading a file."""
    if s.imgsz is not None:
        check_imgsz(s.imgsz)
    if s.mode not in ("ptq", "ac", "both"):
        raise QuantizeError(f"--mode must be ptq, ac or both, got {s.mode!r}")
    if s.mode != "ptq":
        check_max_drop(s.max_drop)
    check_positive(subset_size=s.subset_size)
    QuantOptions(s.preset, s.subset_size, True, s.range_estimator, s.float_branches or ())  # rejects bad values
    check_positive(val_limit=s.val_limit, ac_val_images=s.ac_val_images, ac_max_iterations=s.ac_max_iterations)
    check_not_negative(bench_seconds=s.bench_seconds, bootstrap=s.bootstrap)
    check_out(s.out)


def checkpoint_task(weights: Path, task: str | None) -> tuple[str, int, int]:
    """(task, number of classes, training image size) of a checkpoint; an error when it is not the task asked
    for. The image size is the square `imgsz` it was trained at (train_args), 640 when it does not say."""
    from yolovino.quantize.export import load_yolo

    yolo = load_yolo(weights)
    if task and task != yolo.task:
        raise QuantizeError(f"--task {task} but {Path(weights).name} is a {yolo.task} model")
    trained = (getattr(yolo.model, "args", None) or {}).get("imgsz")
    imgsz = trained if isinstance(trained, int) and trained > 0 and trained % 32 == 0 else 640
    return yolo.task, len(yolo.names), imgsz


def check_val_data(data: Path, task: str, nc: int) -> Dataset:
    from yolovino.quantize.calibration import load_dataset_yaml
    from yolovino.quantize.validate import check_task

    ds = load_dataset_yaml(data, "val")
    check_task(ds, task, nc)
    return ds
