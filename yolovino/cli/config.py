"""The `yolovino` command line and config file -> one `AppConfig` (UI or headless), built once.

Kept apart from the runners in `yolovino.app` so that the fleet builds the same headless config without
importing the UI, and every live reload rebuilds it with the same function.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from yolovino.common.paths import models_root, shown

if TYPE_CHECKING:  # imported lazily at run time to keep --help fast
    from yolovino.common.allow import AllowList
    from yolovino.inference.core.config import InferenceConfig
    from yolovino.inference.service.plan import HeadlessConfig

DEFAULT_MODEL_NAME = "yolov8n"
DEFAULT_CLIP = "videos/one-by-one-person-detection.mp4"


class UsageError(Exception):
    """A CLI/config mistake: one line, exit code 2."""


@dataclass
class UIConfig:
    """Where and how the Gradio UI is served."""

    inference: InferenceConfig
    host: str = "127.0.0.1"
    port: int = 7860
    auth: tuple[str, str] | None = None
    models_dir: Path = field(default_factory=models_root)
    default_source: Path | str | None = None
    allow_sources: AllowList | None = None  # network sources the page may open (None: none)
    event_stores: list[Path] = field(default_factory=list)  # SQLite event stores of the Review tab


@dataclass
class AppConfig:
    """What one run of the app does: exactly one of `headless` and `ui` is set."""

    log_level: str = "INFO"
    headless: HeadlessConfig | None = None
    ui: UIConfig | None = None


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage + message by default)
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="yolovino", description="YOLO INT8 video analytics on CPU (OpenVINO): Gradio UI or headless.")
    p.add_argument("--headless", action="store_true", help="run without UI: sources -> outputs")
    p.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="SPEC",
        help="video file, image, folder, webcam index, rtsp:// or http(s):// URL (repeatable)",
    )
    p.add_argument(
        "--config",
        metavar="YAML",
        help="multi-camera config file (headless; the UI reads the event stores of its sources from it)",
    )
    p.add_argument(
        "--events-db",
        action="append",
        default=[],
        metavar="FILE",
        help="UI: an event store (`events: {db: FILE}` of a run) for the Review tab (repeatable)",
    )
    p.add_argument(
        "--model",
        help="IR folder or .xml for --headless (default: models/yolov8n/int8, else fp32); "
        "the UI offers every model under models/",
    )
    p.add_argument("--output", metavar="RTSP_URL", help="publish annotated video (rtsp://host:port/path)")
    p.add_argument("--save", metavar="FILE.mp4", help="write annotated video to a file")
    p.add_argument("--jsonl", metavar="FILE", help="write one JSON line of detections per frame")
    p.add_argument("--metrics-port", type=int, metavar="PORT", help="Prometheus /metrics and /healthz on PORT")
    p.add_argument("--metrics-host", metavar="HOST", help="address of the metrics server (default 127.0.0.1)")
    p.add_argument(
        "--serve",
        metavar="[HOST:]PORT",
        help="headless: built-in RTSP server, each source at rtsp://HOST:PORT/<name> (auth: YOLO_RTSP_AUTH)",
    )
    p.add_argument("--record", metavar="DIR", help="headless: crash-safe segmented recording into DIR/<source>/")
    p.add_argument(
        "--record-mode",
        choices=("auto", "copy", "annotated"),
        help="headless: copy the camera's H.264/H.265 packets, or encode annotated frames (default auto: copy "
        "where the source is H.264/H.265)",
    )
    p.add_argument("--segment-seconds", type=float, metavar="S", help="length of a recorded segment (default 60)")
    p.add_argument("--keep-hours", type=float, metavar="H", help="delete recorded segments older than H hours")
    p.add_argument("--keep-mb", type=float, metavar="MB", help="keep recordings under MB megabytes in total")
    p.add_argument("--watch-config", action="store_true", help="headless: apply --config when the file changes")
    p.add_argument(
        "--allow-source",
        action="append",
        default=[],
        metavar="PATTERN",
        help="UI: network sources people may open, e.g. rtsp://10.0.0.0/8 or rtsps://*.cams.local "
        "(repeatable; or env YOLO_APP_ALLOW_SOURCES, comma-separated; default: none)",
    )
    p.add_argument("--conf", type=float, help="score threshold (default 0.25)")
    p.add_argument("--iou", type=float, help="NMS IoU threshold (default 0.7)")
    p.add_argument("--classes", help="keep only these classes: ids or names, comma-separated (0,2 or person,car)")
    p.add_argument("--no-rect", action="store_true", help="square letterbox instead of the minimal rectangle")
    p.add_argument("--hint", choices=["THROUGHPUT", "LATENCY"], help="OpenVINO performance hint")
    p.add_argument(
        "--device",
        help="OpenVINO device: CPU (default), GPU, NPU, AUTO, or a list such as AUTO:GPU,CPU / MULTI:GPU,CPU",
    )
    p.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="compiled-model cache (default: $YOLO_APP_CACHE or ~/.cache/yolo-app/openvino); later starts are faster",
    )
    p.add_argument("--no-cache", action="store_true", help="compile the model at every start (no cache folder)")
    p.add_argument("--no-annotate", action="store_true", help="headless: write raw frames to video outputs")
    p.add_argument("--max-frames", type=int, help="headless: stop after N frames")
    p.add_argument(
        "--wait-for-sources",
        action="store_true",
        help="headless: a camera/stream that is down at start is retried instead of exiting",
    )
    p.add_argument("--output-fps", type=float, help="frame rate of video outputs (default: the source's)")
    p.add_argument("--host", default="127.0.0.1", help="UI address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="UI port (default 7860)")
    p.add_argument("--auth", help="UI login user:password (or env YOLO_APP_AUTH); required off loopback")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def resolve_model(arg: str | None) -> Path:
    if arg:
        path = Path(arg).expanduser()
        if not path.exists():
            raise UsageError(f"model {arg} not found")
        return path
    default = models_root() / DEFAULT_MODEL_NAME
    int8, fp32 = default / "int8", default / "fp32"
    if any(int8.glob("*.xml")):
        return int8
    if any(fp32.glob("*.xml")):
        print(
            f"note: no INT8 model at {shown(int8)}; using FP32 {shown(fp32)} "
            "(build INT8 with `yolovino-quantize build-default`)",
            file=sys.stderr,
        )
        return fp32
    raise UsageError(
        f"no model given (--model) and none in {shown(default)}/int8 or fp32: run `make run` in a checkout, "
        "`yolovino-quantize build-default`, or copy a model folder there"
    )


def _classes(text: str | None, model: Path | None) -> tuple[int, ...] | None:
    """--classes (or the file's `classes:`): ids or names, comma-separated, checked against the model."""
    if not text:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise UsageError("--classes is empty")
    from yolovino.inference.core.classes import class_ids
    from yolovino.inference.core.errors import ConfigError, ModelError
    from yolovino.inference.model.ir import YoloModel

    try:
        names = YoloModel.load(model).names if model is not None else {}
        return class_ids(items, names, "--classes")
    except (ConfigError, ModelError) as exc:
        raise UsageError(str(exc)) from None


def _auth(text: str | None) -> tuple[str, str] | None:
    from yolovino.inference.service.settings import ConfigError, credentials

    try:
        return credentials(text if text is not None else os.environ.get("YOLO_APP_AUTH"), "--auth / YOLO_APP_AUTH")
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


# numeric flags: (low, high, low included); argparse checks the type, these the range (NaN and inf refused)
_RANGES: dict[str, tuple[float, float, bool]] = {
    "conf": (0.0, 1.0, True),
    "iou": (0.0, 1.0, True),
    "port": (0, 65535, True),
    "metrics_port": (0, 65535, True),
    "max_frames": (1, 10**12, True),
    "output_fps": (0.0, 240.0, False),
    "segment_seconds": (0.0, 86400.0, False),
    "keep_hours": (0.0, 10.0**6, False),
    "keep_mb": (0.0, 10.0**9, False),
}


def _check_numbers(args: argparse.Namespace) -> None:
    """One line naming the flag for a number out of its range (`--output-fps 0` was accepted silently)."""
    for name, (lo, hi, closed) in _RANGES.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        ok = math.isfinite(value) and (lo <= value if closed else lo < value) and value <= hi
        if not ok:
            low = f">= {lo:g}" if closed else f"> {lo:g}"
            raise UsageError(f"--{name.replace('_', '-')} must be {low} and <= {hi:g}, got {value:g}")


def build_config(argv: list[str] | None = None, devices: list[str] | None = None) -> AppConfig:
    """The run's configuration from the command line (and --config); `devices`: OpenVINO's device list
    when already known (a reload), else asked now."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    from yolovino.inference.core.config import InferenceConfig
    from yolovino.inference.core.errors import InferenceError
    from yolovino.inference.model.devices import default_cache_dir
    from yolovino.inference.service.settings import ConfigError, Settings, load_settings

    settings = Settings()
    if args.config:
        try:
            settings = load_settings(args.config)
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
    if args.headless and args.events_db:
        raise UsageError("--events-db is for the UI (a headless run writes its store: `events: {db: FILE}`)")
    if not args.headless:
        headless_only = ("output", "save", "jsonl", "metrics_port", "max_frames", "serve", "record")
        bad = [n for n in headless_only if getattr(args, n) is not None]
        if bad or len(args.source) > 1:
            raise UsageError(
                f"--{(bad or ['source'])[0].replace('_', '-')} needs --headless"
                + (" (the UI takes one --source)" if not bad else "")
            )
    _check_numbers(args)

    model = resolve_model(args.model or settings.model)
    classes_text = args.classes
    if classes_text is None and settings.classes is not None:
        classes_text = ",".join(str(c) for c in settings.classes)
    rect = False if args.no_rect else settings.rect is not False
    from yolovino.inference.model.devices import resolve_device

    try:
        device, devices = resolve_device(args.device or settings.device or "CPU", devices)
    except InferenceError as exc:
        raise UsageError(str(exc)) from None
    # what the command line or the file sets; InferenceConfig holds every default
    given = {k: v for k, v in (("conf", args.conf), ("iou", args.iou)) if v is not None}
    given.update(
        {k: getattr(settings, k) for k in ("conf", "iou") if k not in given and getattr(settings, k) is not None}
    )
    try:
        inference = InferenceConfig(
            **given,
            classes=_classes(classes_text, model),
            rect=rect,
            hint=args.hint or settings.hint or "THROUGHPUT",
            device=device,
            cache_dir=None
            if args.no_cache
            else str(Path(args.cache_dir).expanduser() if args.cache_dir else default_cache_dir()),
        )
    except (InferenceError, TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None

    if args.headless:
        from yolovino.cli.headless import headless_config

        try:
            headless = headless_config(
                args, settings, model, inference, rebuild=lambda: _rebuild(argv, devices), names_of=_model_names
            )
            headless.devices = devices
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        return AppConfig(args.log_level, headless=headless)
    from yolovino.inference.core.media import is_loopback

    ui = UIConfig(inference, host=args.host, port=args.port, auth=_auth(args.auth))
    # the operator's own --source URL is allowed too (its scheme, host and port)
    from yolovino.common.allow import AllowList

    try:  # the operator's patterns, the environment's, and the UI's own --source URL
        own = args.source[0] if args.source and "://" in args.source[0] else None
        ui.allow_sources = AllowList.for_operator(args.allow_source, os.environ.get("YOLO_APP_ALLOW_SOURCES"), own)
    except ValueError as exc:
        raise UsageError(f"--allow-source: {exc}") from None
    if not is_loopback(ui.host) and not ui.auth:
        raise UsageError(
            f"--host {ui.host} is reachable from the network: add --auth user:password "
            "(or env YOLO_APP_AUTH), or use --host 127.0.0.1"
        )
    if args.source:
        spec = args.source[0]
        ui.default_source = spec if "://" in spec else Path(spec).expanduser()
    ui.event_stores = _event_stores(args.events_db, settings)
    return AppConfig(args.log_level, ui=ui)


def _event_stores(given: list[str], settings) -> list[Path]:
    """The Review tab's stores: each --events-db (it must exist), then the `db:` of every --config source."""
    stores = []
    for text in given:
        path = Path(text).expanduser()
        if not path.is_file():
            raise UsageError(f"--events-db {text}: no such file (the `events: {{db: FILE}}` of a run)")
        from yolovino.inference.core.errors import ConfigError
        from yolovino.inference.notify.eventdb import EventStore

        try:
            EventStore(path).connect().close()
        except ConfigError as exc:
            raise UsageError(f"--events-db {exc}") from None
        stores.append(path)
    for src in settings.sources:
        db = src.analytics.events.db if src.analytics is not None else None
        if db is not None:
            stores.append(Path(db.path).expanduser())
    return list(dict.fromkeys(p.resolve() for p in stores))


def _rebuild(argv: list[str], devices: list[str] | None) -> HeadlessConfig:
    """The headless config again from the same command line and the file as it is now (live reload)."""
    from yolovino.inference.service.settings import ConfigError

    try:
        cfg = build_config(argv, devices).headless
    except UsageError as exc:
        raise ConfigError(str(exc)) from None
    assert cfg is not None
    return cfg


def _model_names(path: Path) -> dict[int, str]:
    from yolovino.inference.model.ir import YoloModel

    return YoloModel.load(path).names
