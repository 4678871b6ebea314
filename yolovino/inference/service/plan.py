"""The headless service's configuration, resolved: `HeadlessConfig` (the validated camera file with the command
line's overrides, built by yolovino.cli) -> one `SourcePlan` per source (supervisor.py), every per-source
setting resolved against the global one, class names against the source's model, devices against this box.

`plan_sources` raises ConfigError naming the source's key path; a live reload runs it again on the edited
file before anything running is touched (runner.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from yolovino.inference.analytics.config import AnalyticsConfig, resolve_classes
from yolovino.inference.core.classes import class_ids
from yolovino.inference.core.config import InferenceConfig
from yolovino.inference.core.errors import ConfigError, InferenceError
from yolovino.inference.model.devices import DeviceError, resolve_device
from yolovino.inference.outputs.recording import Retention
from yolovino.inference.service.settings import (
    DEFAULT_INFER_TIMEOUT,
    DEFAULT_STALL_TIMEOUT,
    RecordSettings,
    ServeSettings,
    SourceSpec,
    load_settings,
)
from yolovino.inference.service.supervisor import Outputs, SourcePlan
from yolovino.inference.sources import default_name


@dataclass
class HeadlessConfig:
    """One headless run: the camera file's validated parts (sources, record, serve, timeouts) with the command
    line's overrides applied (yolovino.cli.headless builds it), the values only the command line has (output,
    save, jsonl, max_frames, ...), and three hooks of the process: `rebuild` (the same command line and the
    edited file again, for a live reload), `names_of` (a model's class names, cached) and `devices` (asked once).
    """

    sources: list[SourceSpec]
    model: Path
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    output: str | None = None
    save: str | None = None
    jsonl: str | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    annotate: bool = True
    max_frames: int | None = None
    output_fps: float | None = None
    report_every: float = 10.0
    max_retries: int | None = None
    wait_for_sources: bool = False
    serve: ServeSettings | None = None
    serve_auth: tuple[str, str] | None = None
    record: RecordSettings | None = None
    stall_timeout: float = DEFAULT_STALL_TIMEOUT
    infer_timeout: float = DEFAULT_INFER_TIMEOUT
    config_path: Path | None = None
    watch_config: bool = False
    # () -> a new HeadlessConfig from the same command line and the edited file (ConfigError if invalid)
    rebuild: Callable[[], HeadlessConfig] | None = None
    # per-source model names, for `classes: [person]`: path -> {id: name}
    names_of: Callable[[Path], dict[int, str]] | None = None
    # the devices OpenVINO sees, asked once at start (asking again once the RTSP server runs crashes)
    devices: list[str] | None = None


def load_yaml(path: str | Path) -> dict:
    """A multi-camera YAML file, validated, as a dict whose 'sources' are SourceSpecs (ConfigError on any problem)."""
    settings = load_settings(path)
    data = settings.model_dump(exclude={"sources"})
    data["sources"] = list(settings.sources)
    return data


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.") or "src"


def _suffixed(target: str, name: str) -> str:
    slug = _slug(name)
    if "://" in target:
        return f"{target.rstrip('/')}-{slug}"
    p = Path(target)
    return str(p.with_name(f"{p.stem}-{slug}{p.suffix}"))


def _names(cfg: HeadlessConfig, model: Path) -> dict[int, str]:
    """The class names of a source's model (from the caller's cache when it has one)."""
    if cfg.names_of is not None:
        return cfg.names_of(model)
    from yolovino.inference.model.ir import YoloModel

    return YoloModel.load(model).names


def _analytics(spec: SourceSpec, model: Path, cfg: HeadlessConfig, where: str) -> AnalyticsConfig | None:
    """The source's `analytics:` (validated with the file) with its class names resolved against its model."""
    if spec.analytics is None:
        return None
    return resolve_classes(spec.analytics, _names(cfg, model), f"{where}.analytics")


def plan_sources(cfg: HeadlessConfig) -> list[SourcePlan]:
    """Each source's settings resolved against the global ones (ConfigError naming the source's key path)."""
    multi = len(cfg.sources) > 1
    plans = []
    for i, spec in enumerate(cfg.sources):
        where = f"sources[{i}]"
        model = Path(spec.model).expanduser() if spec.model else cfg.model
        if spec.model and not model.exists():
            raise ConfigError(f"{where}.model: {spec.model} not found")
        changes: dict = {k: getattr(spec, k) for k in ("conf", "iou", "rect") if getattr(spec, k) is not None}
        if spec.device is not None:
            try:
                changes["device"], cfg.devices = resolve_device(spec.device, cfg.devices)
            except DeviceError as exc:
                raise ConfigError(f"{where}.device: {exc}") from None
        if spec.classes is not None:
            changes["classes"] = class_ids(spec.classes, _names(cfg, model), f"{where}.classes")
        try:
            config = cfg.inference.with_(**changes)
        except InferenceError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        name = spec.name or default_name(spec.url)
        record = None
        if spec.record or (spec.record is None and cfg.record is not None):
            if cfg.record is None:
                raise ConfigError(f"{where}.record: needs the top-level 'record: {{dir: ...}}'")
            record = Path(cfg.record.dir).expanduser() / _slug(name)
            if spec.record_url and cfg.record.mode == "annotated":
                raise ConfigError(
                    f"{where}.record_url: the main stream is recorded by copy; record mode annotated would "
                    "record the detected stream (use mode auto or copy, or drop record_url)"
                )
        if spec.serve and cfg.serve is None:
            raise ConfigError(f"{where}.serve: needs the top-level 'serve:' (or --serve)")
        plans.append(
            SourcePlan(
                key=spec.key,
                url=spec.url,
                name=spec.name,
                live=spec.live,
                model=model,
                config=config,
                output=spec.output or (cfg.output and (_suffixed(cfg.output, name) if multi else cfg.output)),
                save=spec.save or (cfg.save and (_suffixed(cfg.save, name) if multi else cfg.save)),
                jsonl=spec.jsonl,
                record=record,
                record_url=spec.record_url if record is not None else None,
                serve=cfg.serve is not None and spec.serve is not False,
                stall_timeout=spec.stall_timeout or cfg.stall_timeout,
                analytics=_analytics(spec, model, cfg, where),
            )
        )
    return plans


def with_recording(out: Outputs, rec: RecordSettings | None) -> Outputs:
    """`out` with the segment length and retention of `record:` (the one place a Retention is made from it)."""
    if rec is not None:
        out.segment_seconds = rec.segment_seconds
        out.record_mode = rec.mode
        out.retention = Retention(
            Path(rec.dir).expanduser(),
            max_age=rec.max_age_hours * 3600 if rec.max_age_hours else None,
            max_bytes=int(rec.max_size_mb * 1e6) if rec.max_size_mb else None,
        )
    return out


__all__ = ["HeadlessConfig", "load_yaml", "plan_sources", "with_recording"]
