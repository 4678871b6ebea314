"""The build report: typed, written by the build (report.json + report.png), read by the CLI summary and the UI.

`BuildReport.to_dict` fixes the JSON layout; `BuildReport.from_dict` reads it back, including reports written
before intervals and typed reports existed (flat accuracy-control fields, no `vs_fp32`). Light imports only
(the UI reads reports without OpenVINO or NNCF); matplotlib is imported when a picture is drawn.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from yolovino.inference.core.fileio import write_bytes, write_json
from yolovino.quantize.metrics import LABELS, Difference, Metrics
from yolovino.quantize.overlap import Overlap

VARIANT_LABELS = {"fp32": "FP32", "int8": "INT8", "int8-ac": "INT8-AC"}


class ReportError(ValueError):
    """A report.json that cannot be read as a build report (the message says why)."""


def _known(cls: type, d: dict[str, Any]) -> dict[str, Any]:
    """The keys of `d` that are fields of the dataclass `cls` (newer or older files may carry others)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}


@dataclass
class Throughput:
    fps: float
    frames: int = 0
    seconds: float = 0.0
    method: str = ""
    cpu_inference_precision: str | None = None


@dataclass
class AccuracyControl:
    """What NNCF's accuracy control did for the int8-ac variant."""

    max_drop: float
    validation_images: int
    metric: str = "task mAP50-95"
    reverted_to_fp32: list[str] = field(default_factory=list)
    reverted_source: str = ""
    nncf_log: list[str] = field(default_factory=list)


@dataclass
class Variant:
    """One IR of the build (fp32, int8, int8-ac) and what was measured on it."""

    path: str
    size_mb: float = 0.0
    fake_quantize_nodes: int | None = None
    metrics: Metrics | None = None
    throughput: Throughput | None = None
    drop_vs_fp32: float | None = None  # FP32 minus this, on the task's headline metric (fraction)
    vs_fp32: dict[str, Difference] = field(default_factory=dict)  # this - FP32 per metric, paired interval
    accuracy_control: AccuracyControl | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path, "size_mb": self.size_mb}
        if self.fake_quantize_nodes is not None:
            d["fake_quantize_nodes"] = self.fake_quantize_nodes
        if self.metrics is not None:
            d["metrics"] = self.metrics.to_dict()
        if self.throughput is not None:
            d["throughput"] = asdict(self.throughput)
        if self.drop_vs_fp32 is not None:
            d["drop_vs_fp32"] = self.drop_vs_fp32
        if self.vs_fp32:
            d["vs_fp32"] = {k: diff.to_dict() for k, diff in self.vs_fp32.items()}
        if self.accuracy_control is not None:
            d["accuracy_control"] = asdict(self.accuracy_control)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Variant:
        v = cls(path=str(d.get("path", "")), size_mb=float(d.get("size_mb") or 0.0))
        v.fake_quantize_nodes = d.get("fake_quantize_nodes")
        v.metrics = Metrics.from_dict(d["metrics"]) if d.get("metrics") else None
        v.throughput = Throughput(**_known(Throughput, d["throughput"])) if d.get("throughput") else None
        v.drop_vs_fp32 = d.get("drop_vs_fp32")
        v.vs_fp32 = {k: Difference.from_dict(k, x) for k, x in (d.get("vs_fp32") or {}).items()}
        ac = d.get("accuracy_control")
        if ac is None and "reverted_to_fp32" in d:  # reports before the typed layout kept these flat
            ac = {**d, "validation_images": d.get("validation_images", 0), "max_drop": d.get("max_drop", 0.0)}
        v.accuracy_control = AccuracyControl(**_known(AccuracyControl, ac)) if ac else None
        return v


@dataclass
class Calibration:
    source: str
    images: int
    skipped_unreadable: int = 0
    options: dict[str, Any] = field(default_factory=dict)  # QuantOptions.as_dict()
    preprocessing: str = ""
    images_sha256: str = ""  # overlap.ImageSet.digest of every image of the source (empty in older reports)
    hashes_file: str = ""  # the per-image hashes beside report.json (overlap.HASHES_FILE), for `validate`

    def to_dict(self) -> dict[str, Any]:  # options stay flat, as in every report so far
        d = {k: v for k, v in asdict(self).items() if k != "options"}
        return {**d, **self.options}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        own = {k: v for k, v in _known(cls, d).items() if k != "options"}
        return cls(**own, options={k: v for k, v in d.items() if k not in own})


@dataclass
class IgnoredScope:
    method: str
    nodes: int
    types: dict[str, int] = field(default_factory=dict)
    boundary_convs: list[str] = field(default_factory=list)
    extra_fp32_layers: list[str] = field(default_factory=list)


@dataclass
class Validation:
    data: str
    split: str
    images: int
    settings: str = ""
    cpu_inference_precision: str | None = None
    bootstrap: dict[str, Any] = field(default_factory=dict)  # BootstrapSettings.as_dict() + seconds


@dataclass
class BuildReport:
    name: str
    task: str
    weights: str = ""
    imgsz: int = 640
    created: str = ""
    mode: str = "ptq"
    calibration: Calibration | None = None
    ignored_scope: IgnoredScope | None = None
    variants: dict[str, Variant] = field(default_factory=dict)
    validation: Validation | None = None
    timings: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)  # the checkpoint's classes, id -> name
    overlap: Overlap | None = None  # calibration vs validation images (None: nothing validated)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "task": self.task,
            "weights": self.weights,
            "imgsz": self.imgsz,
            "created": self.created,
            "mode": self.mode,
            "names": {str(k): v for k, v in self.names.items()},
        }
        if self.calibration is not None:
            d["calibration"] = self.calibration.to_dict()
        if self.ignored_scope is not None:
            d["ignored_scope"] = asdict(self.ignored_scope)
        d["variants"] = {k: v.to_dict() for k, v in self.variants.items()}
        if self.validation is not None:
            d["validation"] = asdict(self.validation)
        if self.overlap is not None:
            d["overlap"] = self.overlap.to_dict()
        d["timings"] = self.timings
        d["versions"] = self.versions
        return d

    @classmethod
    def from_dict(cls, d: Any) -> BuildReport:
        if not isinstance(d, dict) or not isinstance(d.get("variants"), dict) or "task" not in d:
            raise ReportError("not a build report (needs task and variants)")
        try:
            return cls(
                name=str(d.get("name", "")),
                task=str(d["task"]),
                weights=str(d.get("weights", "")),
                imgsz=int(d.get("imgsz", 640)),
                created=str(d.get("created", "")),
                mode=str(d.get("mode", "ptq")),
                calibration=Calibration.from_dict(d["calibration"]) if d.get("calibration") else None,
                ignored_scope=IgnoredScope(**_known(IgnoredScope, d["ignored_scope"]))
                if d.get("ignored_scope")
                else None,
                variants={str(k): Variant.from_dict(v) for k, v in d["variants"].items()},
                validation=Validation(**_known(Validation, d["validation"])) if d.get("validation") else None,
                timings=dict(d.get("timings") or {}),
                versions=dict(d.get("versions") or {}),
                names={int(k): str(v) for k, v in (d.get("names") or {}).items()},
                overlap=Overlap.from_dict(d["overlap"]) if d.get("overlap") else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ReportError(f"malformed build report ({type(exc).__name__}: {exc})") from None


def load_report(path: str | Path) -> BuildReport:
    """A report.json read back; ReportError (one line) when it is unreadable or not a build report."""
    import json

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ReportError(f"unreadable {Path(path).name}: {exc}") from None
    return BuildReport.from_dict(data)


def write_report(folder: Path, report: BuildReport) -> None:
    """report.json and report.png, each written atomically."""
    write_json(Path(folder) / "report.json", report.to_dict())
    plot_report(Path(folder) / "report.png", report)


# --- text and picture -----------------------------------------------------------------------------------


def class_line(names: dict[int, str], show: int = 8) -> str:
    """`classes (3): walker, vehicle, pet`; long lists end in `... (+72 more)`."""
    shown = [names[k] for k in sorted(names)[:show]]
    more = f", ... (+{len(names) - show} more)" if len(names) > show else ""
    return f"classes ({len(names)}): {', '.join(shown)}{more}"


def summary_lines(report: BuildReport, folder: Path | None = None) -> list[str]:
    """The table `yolovino-quantize build` prints: accuracy with intervals, change vs FP32, speed, size."""
    keys = [
        k
        for k in ("box_map", "mask_map", "pose_map")
        if any(_value(v, k) is not None for v in report.variants.values())
    ]
    head = f"{'variant':9s} " + " ".join(f"{LABELS[k] + ' [95% CI]':>28s}" for k in keys)
    lines = [
        f"{report.name} ({report.task})" + (f" -> {folder}" if folder else ""),
        *([class_line(report.names)] if report.names else []),
        *data_lines(report),
        head + f" {'frames/s':>9s} {'MB':>6s}",
    ]
    for key, v in report.variants.items():
        cells = []
        for k in keys:
            value = _value(v, k)
            iv = v.metrics.intervals.get(k) if v.metrics else None
            cells.append(f"{'-' if value is None else f'{value * 100:.2f}':>6s} {iv.text() if iv else '':>21s}")
        fps = v.throughput.fps if v.throughput else None
        lines.append(f"{key:9s} " + " ".join(cells) + f" {(f'{fps:.1f}' if fps else '-'):>9s} {v.size_mb:6.1f}")
    for key, v in report.variants.items():
        for diff in v.vs_fp32.values():
            if diff.metric in keys:
                lines.append(f"  {key} vs FP32, {LABELS[diff.metric]}: {diff.text()} points")
        if v.accuracy_control is not None:
            lines.append(
                f"  {key}: {len(v.accuracy_control.reverted_to_fp32)} op(s) reverted to FP32 by accuracy control"
            )
    if report.validation is not None and report.validation.bootstrap.get("resamples"):
        b = report.validation.bootstrap
        lines.append(
            f"mAP50-95 in points on {report.validation.images} images; intervals: paired bootstrap over images, "
            f"{b['resamples']} resamples, {b.get('confidence', 0.95):.0%}; 'within noise' = the interval holds 0"
        )
    return lines


def data_lines(report: BuildReport) -> list[str]:
    """Which images calibrated and which scored the figures, and the warning when they share images."""
    lines = []
    if report.calibration is not None:
        lines.append(f"calibration: {report.calibration.source} ({report.calibration.images} images used)")
    if report.validation is not None:
        o = report.overlap
        shared = (
            ""
            if o is None
            else f"; shares {o.shared_images} image(s) with calibration"
            if o.shared_images
            else "; no image shared with calibration"
        )
        v = report.validation
        lines.append(f"validation: {v.data} ({v.split}, {v.images} images{shared})")
    warning = report.overlap.warning() if report.overlap is not None else None
    if warning:
        lines.append(warning)
    return lines


def _value(v: Variant, key: str) -> float | None:
    return getattr(v.metrics, key) if v.metrics is not None else None


def save_png(fig: Any, path: Path, dpi: int = 100) -> None:
    """A matplotlib figure as a PNG, written atomically; the figure is closed."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    write_bytes(path, buf.getvalue())


def plot_report(path: Path, report: BuildReport) -> None:
    """Left: mAP50-95 per variant and metric with its 95 % interval; middle: change vs FP32 with the paired
    interval (a bar crossing 0 is noise); right: engine throughput."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report.variants)
    variants = [report.variants[n] for n in names]
    keys = [k for k in ("box_map", "mask_map", "pose_map") if any(_value(v, k) is not None for v in variants)]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 4))
    width = 0.8 / max(1, len(keys))
    for j, k in enumerate(keys):
        vals = [(_value(v, k) or 0.0) * 100 for v in variants]
        err = _errors([v.metrics.intervals.get(k) if v.metrics else None for v in variants], vals)
        xs = [i + j * width for i in range(len(names))]
        bars = ax1.bar(xs, vals, width, yerr=err, capsize=3, label=LABELS[k])
        ax1.bar_label(bars, fmt="%.1f", fontsize=7, label_type="center")
    ax1.set_xticks([i + width * (len(keys) - 1) / 2 for i in range(len(names))], names)
    ax1.set_ylabel("mAP50-95 (%)")
    ax1.legend(fontsize=8)
    ax1.set_title("accuracy (95% bootstrap interval)")
    rows = [(n, report.variants[n].vs_fp32[k]) for n in names for k in keys if k in report.variants[n].vs_fp32]
    for i, (n, diff) in enumerate(rows):
        color = "tab:gray" if diff.within_noise else ("tab:green" if diff.delta > 0 else "tab:red")
        lo, hi = diff.interval.lo * 100, diff.interval.hi * 100
        ax2.errorbar(
            diff.delta * 100,
            i,
            xerr=[[diff.delta * 100 - lo], [hi - diff.delta * 100]],
            fmt="o",
            color=color,
            capsize=3,
        )
    ax2.axvline(0.0, color="black", lw=0.8)
    ax2.set_yticks(range(len(rows)), [f"{n} {LABELS[d.metric].split()[0]}" for n, d in rows])
    ax2.set_xlabel("change vs FP32 (mAP50-95 points)")
    ax2.set_title("vs FP32: paired 95% interval (gray = noise)")
    fps = [(v.throughput.fps if v.throughput else 0.0) for v in variants]
    bars = ax3.bar(names, fps, color="tab:green")
    ax3.bar_label(bars, fmt="%.1f", fontsize=8)
    ax3.set_ylabel("frames/s (AsyncEngine)")
    ax3.set_title("throughput")
    title = f"{report.name} ({report.task})"
    if report.calibration is not None and report.validation is not None:
        title += (
            f" - calibrated on {Path(report.calibration.source).name}, validated on {Path(report.validation.data).name}"
        )
    if report.overlap is not None and report.overlap.shared_images:
        title += f"\nWARNING: {report.overlap.shared_images} validation images are calibration images (--allow-overlap)"
    fig.suptitle(title, color="tab:red" if report.overlap is not None and report.overlap.shared_images else "black")
    fig.tight_layout()
    save_png(fig, path)


def _errors(intervals: list, values: list[float]) -> list[list[float]] | None:
    """Matplotlib's asymmetric error bars from intervals (points); None when no variant has one."""
    if not any(intervals):
        return None
    lower = [max(0.0, v - iv.lo * 100) if iv else 0.0 for iv, v in zip(intervals, values)]
    upper = [max(0.0, iv.hi * 100 - v) if iv else 0.0 for iv, v in zip(intervals, values)]
    return [lower, upper]
