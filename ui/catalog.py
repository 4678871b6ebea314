"""Find the models `python -m quantize` wrote: models/<name>/{fp32,int8,int8-ac}/<name>.xml + report.json/png.

Only the IR's metadata is read (task, class names, precision); nothing is compiled here. A folder that is
not a usable model is listed in `Catalog.problems` with a readable reason instead of breaking discovery.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import openvino as ov

from inference.config import InferenceConfig
from inference.errors import InferenceError, ModelError
from inference.model import ModelMeta, YoloModel, find_xml, read_meta

# Folder name -> label shown in the UI, in display order.
PRECISIONS: dict[str, str] = {"fp32": "FP32", "int8": "INT8", "int8-ac": "INT8-AC"}
LABEL_TO_FOLDER = {v: k for k, v in PRECISIONS.items()}

NO_MODELS_HINT = (
    "No models found in `{dir}`. Build one with `.venv/bin/python -m quantize build-default` "
    "(or `make run`), then press Refresh."
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


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, (list, tuple)) and not any(isinstance(x, (dict, list)) for x in v):
            out[key] = ", ".join(str(x) for x in v)
        elif isinstance(v, (list, tuple)):
            out[key] = json.dumps(v)[:200]
        else:
            out[key] = v
    return out


def _rows_from(obj) -> list[dict] | None:
    """The list of per-variant rows in a report, whatever the exact layout (list, dict of dicts, ...)."""
    if isinstance(obj, list) and obj and all(isinstance(r, dict) for r in obj):
        return [_flatten(r) for r in obj]
    if isinstance(obj, dict):
        for key in ("variants", "rows", "results", "models", "table"):
            if key in obj:
                rows = _rows_from(obj[key])
                if rows is None and isinstance(obj[key], dict) and all(isinstance(v, dict) for v in obj[key].values()):
                    rows = [{"variant": k, **_flatten(v)} for k, v in obj[key].items()]
                if rows:
                    return rows
        if obj and all(isinstance(v, dict) for v in obj.values()):
            return [{"variant": k, **_flatten(v)} for k, v in obj.items()]
    return None


def report_table(path: Path | None) -> tuple[list[str], list[list]]:
    """(headers, rows) for a report.json; a key/value table when it has no per-variant rows."""
    if path is None or not Path(path).is_file():
        return ["field", "value"], []
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        return ["field", "value"], [["error", f"unreadable {Path(path).name}: {exc}"]]
    rows = _rows_from(data)
    if rows is None:
        flat = _flatten(data) if isinstance(data, dict) else {"value": data}
        return ["field", "value"], [[k, _cell(v)] for k, v in flat.items()]
    headers: list[str] = []
    for r in rows:
        headers += [k for k in r if k not in headers]
    # drop columns empty in every row (e.g. mask mAP of a detect model) and long prose (shown as notes)
    headers = [
        h
        for h in headers
        if any(r.get(h) not in (None, "", [], {}) for r in rows)
        and not any(isinstance(r.get(h), str) and len(r[h]) > 60 for r in rows)
    ]
    return headers, [[_cell(r.get(h)) for h in headers] for r in rows]


def report_notes(path: Path | None, limit: int = 30) -> list[str]:
    """Short `key: value` lines for the report's settings outside the per-variant rows."""
    if path is None or not Path(path).is_file():
        return []
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict):
        return []
    notes = []
    for key, value in data.items():
        if key in ("variants", "rows", "results", "models", "table"):
            continue
        flat = _flatten({key: value}) if isinstance(value, dict) else {key: value}
        for k, v in flat.items():
            if k.count(".") > 1:  # deeper detail (e.g. node counts per type) stays in the file
                continue
            if v is None or isinstance(v, (list, dict)) or (isinstance(v, str) and len(v) > 120):
                continue
            notes.append(f"{k}: {_cell(v)}")
    return notes[:limit]


def _cell(v):
    if isinstance(v, float):
        return round(v, 4)
    if v is None or isinstance(v, (int, str, bool)):
        return "" if v is None else v
    return str(v)
