"""Find the models `yolovino-quantize` wrote: models/<name>/{fp32,int8,int8-ac}/<name>.xml + report.json/png.

Only the IR's metadata is read (task, class names, precision); nothing is compiled here. A folder that is
not a usable model is listed in `Catalog.problems` with a readable reason instead of breaking discovery.
report.json is read as the build's typed report (quantize/report.py), older builds' files included.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import openvino as ov

from yolovino.inference.core.config import InferenceConfig
from yolovino.inference.core.errors import InferenceError, ModelError
from yolovino.inference.model.ir import ModelMeta, YoloModel, find_xml, read_meta
from yolovino.quantize.metrics import LABELS
from yolovino.quantize.report import BuildReport, ReportError, load_report

# Folder name -> label shown in the UI, in display order.
PRECISIONS: dict[str, str] = {"fp32": "FP32", "int8": "INT8", "int8-ac": "INT8-AC"}

NO_MODELS_HINT = (
    "No models found in `{dir}`. Build one with `yolovino-quantize build-default` (or `make run`), then press Refresh."
)


@dataclass(frozen=True)
class Variant:
    precision: str  # label: FP32 / INT8 / INT8-AC
    xml: Path
    meta: ModelMeta


@dataclass(frozen=True)
class ModelEntry:
    name: str
    task: str
    names: dict[int, str]
    variants: dict[str, Variant]  # label -> variant, in PRECISIONS order
    report_json: Path | None = None
    report_png: Path | None = None

    @property
    def precisions(self) -> list[str]:
        return list(self.variants)

    def default_precision(self) -> str:
        """INT8 when it exists (what the product is about), else the first one found."""
        for label in ("INT8", "INT8-AC", "FP32"):
            if label in self.variants:
                return label
        return next(iter(self.variants))


@dataclass
class Catalog:
    models_dir: Path
    models: dict[str, ModelEntry] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return list(self.models)

    def get(self, name: str | None) -> ModelEntry:
        if not self.models:
            raise ModelError(NO_MODELS_HINT.format(dir=self.models_dir))
        if name not in self.models:
            raise ModelError(f"model {name!r} not found in {self.models_dir} (have: {', '.join(self.models)})")
        return self.models[name]

    def variant(self, name: str | None, precision: str | None) -> Variant:
        entry = self.get(name)
        if precision not in entry.variants:
            raise ModelError(f"{entry.name} has no {precision} variant (have: {', '.join(entry.precisions)})")
        return entry.variants[precision]

    def default_model(self) -> str | None:
        """yolov8n when present (the model `make run` builds), else the first detect model, else any."""
        if "yolov8n" in self.models:
            return "yolov8n"
        for name, entry in self.models.items():
            if entry.task == "detect":
                return name
        return next(iter(self.models), None)


def discover(models_dir: str | Path, core: ov.Core | None = None) -> Catalog:
    """Every model folder with at least one readable IR variant, sorted by name."""
    models_dir = Path(models_dir)
    catalog = Catalog(models_dir)
    if not models_dir.is_dir():
        return catalog
    core = core or ov.Core()
    for folder in sorted(p for p in models_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        variants: dict[str, Variant] = {}
        for sub, label in PRECISIONS.items():
            vdir = folder / sub
            if not vdir.is_dir():
                continue
            try:
                xml = find_xml(vdir)
                meta = read_meta(core.read_model(xml), xml)
            except (InferenceError, RuntimeError) as exc:
                catalog.problems.append(f"{vdir}: {str(exc).splitlines()[0][:200]}")
                continue
            variants[label] = Variant(label, xml, meta)
        if not variants:
            continue
        first = next(iter(variants.values())).meta
        report_json, report_png = folder / "report.json", folder / "report.png"
        catalog.models[folder.name] = ModelEntry(
            name=folder.name,
            task=first.task,
            names=dict(first.names),
            variants=variants,
            report_json=report_json if report_json.is_file() else None,
            report_png=report_png if report_png.is_file() else None,
        )
    return catalog


class ModelCache:
    """Loaded YoloModels shared by all sessions (read-only network + compiled graphs per frame size).

    Each session gets its own thresholds through `YoloModel.reconfigured`, so sharing is safe; at most
    `capacity` networks stay in memory.
    """

    def __init__(self, capacity: int = 4):
        self.capacity = capacity
        self._models: OrderedDict[tuple, YoloModel] = OrderedDict()
        self._lock = threading.Lock()
        self._core = ov.Core()

    def get(self, xml: Path, config: InferenceConfig) -> YoloModel:
        xml = Path(xml)
        key = (str(xml.resolve()), xml.stat().st_mtime if xml.exists() else 0.0, *config.graph_key())
        with self._lock:
            model = self._models.get(key)
            if model is None:
                model = YoloModel.load(xml, config, core=self._core)
                self._models[key] = model
                while len(self._models) > self.capacity:
                    self._models.popitem(last=False)
            else:
                self._models.move_to_end(key)
        return model.reconfigured(config)


# --- report.json -> table -------------------------------------------------------------------------------


def _load(path: Path | None) -> BuildReport | str | None:
    """The report, or the reason it cannot be read, or None when there is none."""
    if path is None or not Path(path).is_file():
        return None
    try:
        return load_report(path)
    except ReportError as exc:
        return str(exc)


def _points(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.2f}"


def report_table(path: Path | None) -> tuple[list[str], list[list]]:
    """One row per variant: each mAP50-95 with its 95 % interval, the change vs FP32 with its paired interval
    (and whether it is within noise), throughput and size. mAP in points."""
    report = _load(path)
    if report is None:
        return ["field", "value"], []
    if isinstance(report, str):
        return ["field", "value"], [["error", report]]
    keys = [
        k
        for k in ("box_map", "mask_map", "pose_map")
        if any(_metric(v, k) is not None for v in report.variants.values())
    ]
    headers = ["variant"]
    for k in keys:
        headers += [LABELS[k], f"{LABELS[k]} 95% CI", f"{LABELS[k].split()[0]} vs FP32 [95% CI]"]
    headers += ["frames/s", "size MB"]
    rows = []
    for key, v in report.variants.items():
        row: list = [PRECISIONS.get(key, key)]
        for k in keys:
            iv = v.metrics.intervals.get(k) if v.metrics else None
            diff = v.vs_fp32.get(k)
            row += [_points(_metric(v, k)), iv.text() if iv else "", diff.text() if diff else ""]
        row += [round(v.throughput.fps, 1) if v.throughput else "", v.size_mb]
        rows.append(row)
    return headers, rows


def _metric(v, key: str) -> float | None:
    return getattr(v.metrics, key) if v.metrics is not None else None


def report_verdicts(path: Path | None) -> list[str]:
    """One line per INT8 variant and metric: its change vs FP32 with the paired interval, real or within noise."""
    report = _load(path)
    if not isinstance(report, BuildReport):
        return []
    return [
        f"{PRECISIONS.get(key, key)} vs FP32, {LABELS[diff.metric]}: {diff.text()} points"
        for key, v in report.variants.items()
        for diff in v.vs_fp32.values()
        if diff.metric.endswith("_map")
    ]


def report_notes(path: Path | None, limit: int = 30) -> list[str]:
    """Short lines for the report's settings (calibration, validation, intervals, timings)."""
    report = _load(path)
    if not isinstance(report, BuildReport):
        return []
    notes = []
    notes.append(f"task: {report.task}, image size {report.imgsz}, built {report.created}, mode {report.mode}")
    if report.calibration is not None:
        c = report.calibration
        options = ", ".join(f"{k} {v}" for k, v in c.options.items())
        notes.append(f"calibration: {c.images} images from {c.source}; {options}")
    if report.validation is not None:
        val = report.validation
        notes.append(
            f"validation: {val.images} images of {val.data} ({val.split}), CPU precision {val.cpu_inference_precision}"
        )
        warning = report.overlap.warning() if report.overlap is not None else None
        if warning:
            notes.append(warning)
        if val.bootstrap.get("resamples"):
            notes.append(
                f"intervals: paired bootstrap over images, {val.bootstrap['resamples']} resamples, "
                f"{val.bootstrap.get('confidence', 0.95):.0%}; 'within noise' = the interval holds 0"
            )
    if report.ignored_scope is not None:
        notes.append(f"kept in float: {report.ignored_scope.nodes} decode nodes (quantize/scopes.py)")
    if report.timings:
        notes.append("timings: " + ", ".join(f"{k} {v}" for k, v in report.timings.items()))
    return notes[:limit]
