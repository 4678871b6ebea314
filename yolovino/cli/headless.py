"""The headless mode's configuration from the command line and the YAML settings (the CLI wins).

Kept apart from yolovino.app so the same function builds the first config and every live reload: `rebuild()`
re-reads the file and merges the same command line again. Secrets are read here, never from argv:
`${VAR}` in URLs (environment), YOLO_RTSP_AUTH or the file's `serve: {user, password}`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from yolovino.inference.core.config import InferenceConfig
from yolovino.inference.core.redact import redact
from yolovino.inference.core.validation import describe
from yolovino.inference.service.plan import HeadlessConfig
from yolovino.inference.service.settings import (
    ConfigError,
    MetricsSettings,
    RecordSettings,
    ServeSettings,
    Settings,
    SourceSpec,
    credentials,
    expand_env,
)


def _serve(text: str | None, settings: ServeSettings | None) -> ServeSettings | None:
    """--serve [HOST:]PORT over the file's `serve:`."""
    if text is None:
        return settings
    host, sep, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError("--serve must be PORT or HOST:PORT (0..65535)")
    base = settings or ServeSettings()
    return base.model_copy(update={"port": int(port), **({"host": host.strip("[]")} if sep and host else {})})


def _serve_auth(serve: ServeSettings | None) -> tuple[str, str] | None:
    if serve is None:
        return None
    if serve.user or serve.password:
        if not (serve.user and serve.password):
            raise ConfigError("serve: give both user and password")
        return expand_env(serve.user, "serve.user"), expand_env(serve.password, "serve.password")
    return credentials(os.environ.get("YOLO_RTSP_AUTH"), "YOLO_RTSP_AUTH")


def _record(args: argparse.Namespace, settings: RecordSettings | None) -> RecordSettings | None:
    updates = {
        k: v
        for k, v in {
            "dir": args.record,
            "segment_seconds": args.segment_seconds,
            "mode": getattr(args, "record_mode", None),
            "max_age_hours": args.keep_hours,
            "max_size_mb": args.keep_mb,
        }.items()
        if v is not None
    }
    if settings is None and "dir" not in updates:
        if updates:
            raise ConfigError("--record-mode/--segment-seconds/--keep-hours/--keep-mb need --record DIR")
        return None
    try:
        return RecordSettings.model_validate({**(settings.model_dump() if settings else {}), **updates})
    except ValidationError as exc:  # a value from the file (the flags' ranges are checked in cli/config.py)
        raise ConfigError(describe(exc, RecordSettings, "record")) from None


def headless_config(
    args: argparse.Namespace,
    settings: Settings,
    model: Path,
    inference: InferenceConfig,
    rebuild: Callable[[], HeadlessConfig] | None = None,
    names_of: Callable[[Path], dict[int, str]] | None = None,
) -> HeadlessConfig:
    """ConfigError (one line) for anything that cannot work."""
    specs = [SourceSpec(url=expand_env(s, f"--source {redact(s)}")) for s in args.source]
    specs += [
        s.model_copy(update={"url": expand_env(s.url, f"sources[{i}].url")}) for i, s in enumerate(settings.sources)
    ]
    specs = [
        s.model_copy(update={"output": expand_env(s.output, f"{redact(s.key)}: output")}) if s.output else s
        for s in specs
    ]
    if not specs:
        raise ConfigError("--headless needs at least one --source (or --config with sources)")
    output = expand_env(args.output, "--output") if args.output else None
    for target in [output] + [s.output for s in specs]:
        if target and not target.lower().startswith(("rtsp://", "rtsps://")):
            raise ConfigError("--output must be an rtsp:// URL (use --save for files)")
    for target in filter(None, [args.save, args.jsonl] + [s.save for s in specs] + [s.jsonl for s in specs]):
        path = Path(target).expanduser()
        if path.is_dir():
            raise ConfigError(f"{target}: is a directory; give a file name inside it")
        if not path.resolve().parent.is_dir():
            raise ConfigError(f"{target}: output folder does not exist")
    if settings.metrics_port is not None:  # the old key keeps working, with one line saying what replaced it
        print(
            f"yolovino: warning: metrics_port: {settings.metrics_port} is deprecated; "
            f"write metrics: {{port: {settings.metrics_port}}}",
            file=sys.stderr,
        )
    metrics = settings.metrics or (MetricsSettings(port=settings.metrics_port) if settings.metrics_port else None)
    serve = _serve(args.serve, settings.serve)
    return HeadlessConfig(
        sources=specs,
        model=model,
        inference=inference,
        output=output,
        save=args.save,
        jsonl=args.jsonl,
        metrics_port=args.metrics_port if args.metrics_port is not None else (metrics.port if metrics else None),
        metrics_host=args.metrics_host or (metrics.host if metrics else "127.0.0.1"),
        annotate=not args.no_annotate,
        max_frames=args.max_frames,
        output_fps=args.output_fps,
        wait_for_sources=args.wait_for_sources or settings.wait_for_sources,
        serve=serve,
        serve_auth=_serve_auth(serve),
        record=_record(args, settings.record),
        stall_timeout=settings.stall_timeout,
        infer_timeout=settings.infer_timeout,
        config_path=Path(args.config) if args.config else None,
        watch_config=args.watch_config,
        rebuild=rebuild,
        names_of=names_of,
    )
