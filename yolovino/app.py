"""The `yolovino` command (also `python app.py` in a checkout): the Gradio UI or the headless pipeline.

    yolovino                                    # UI on http://127.0.0.1:7860 (extra `ui`)
    yolovino --host 0.0.0.0 --auth user:pass    # UI on the network (auth required off loopback)
    yolovino --headless --source rtsp://cam/1 --output rtsp://127.0.0.1:8554/out \
             --save out.mp4 --jsonl events.jsonl --metrics-port 9100
    yolovino --headless --config cams.yaml      # several cameras (see inference/service/runner.py)
    yolovino config check cams.yaml             # validate a camera file, print it with every default
    yolovino config schema -o cams.schema.json  # JSON Schema for editors
    yolovino --headless --source cam.mp4 --serve 8554 --record /data/rec --metrics-port 9100
    yolovino --events-db events.db              # UI whose Review tab shows that event store
    yolovino --config cams.yaml                 # UI reviewing the event stores (events: {db: ...}) of cams.yaml

Secrets never need the command line: `${VAR}` in a --source/--output URL or in the YAML is read from the
environment (quote it so the shell leaves it alone), the UI login comes from YOLO_APP_AUTH and the built-in
RTSP server's from YOLO_RTSP_AUTH (both user:password). SIGHUP re-reads --config and applies it live.

Exit codes: 0 ok, 1 runtime failure (every source failed mid-run), 2 usage/configuration error or
an input/model/output that cannot be opened at start.
Errors are printed as one line, without a traceback. SIGINT/SIGTERM stop cleanly (outputs finalised).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from yolovino.cli.config import (
    DEFAULT_CLIP,
    AppConfig,
    UIConfig,
    UsageError,
    build_config,
    build_parser,
)

if TYPE_CHECKING:
    from yolovino.inference.service.plan import HeadlessConfig

__all__ = ["AppConfig", "UIConfig", "UsageError", "build_config", "build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["config"]:  # `yolovino config check FILE` / `yolovino config schema`
        from yolovino.cli.config_cmd import config_main

        return config_main(args[1:])
    argv = args
    try:
        cfg = build_config(argv)
    except UsageError as exc:
        print(f"yolovino: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=cfg.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if cfg.headless is not None:
        return run_headless_cli(cfg.headless)
    assert cfg.ui is not None
    return run_ui(cfg.ui)


def run_headless_cli(cfg: HeadlessConfig) -> int:
    from yolovino.inference.core.errors import InferenceError
    from yolovino.inference.service.runner import run_headless

    stop, reload = threading.Event(), threading.Event()

    def on_signal(signum, _frame):
        if stop.is_set():  # second signal: give up on a clean stop
            os._exit(128 + signum)
        logging.getLogger("yolovino.inference.service.runner").info("signal %d: stopping", signum)
        stop.set()

    def on_hup(_signum, _frame):
        logging.getLogger("yolovino.inference.service.runner").info(
            "SIGHUP: reloading %s", cfg.config_path or "(no --config)"
        )
        reload.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_hup)
    try:
        return run_headless(cfg, stop, reload)
    except InferenceError as exc:  # model, source or output that cannot start as configured
        print(f"yolovino: error: {exc}", file=sys.stderr)
        return 2


def run_ui(cfg: UIConfig) -> int:
    from yolovino.common.extras import require

    missing = require(("gradio",), "the web UI")
    if missing:
        print(f"yolovino: error: {missing} (or run with --headless)", file=sys.stderr)
        return 2
    from yolovino.common.paths import assets_root
    from yolovino.inference.core.errors import InferenceError
    from yolovino.ui import launch

    clip = cfg.default_source or assets_root() / DEFAULT_CLIP

    try:
        launch(
            host=cfg.host,
            port=cfg.port,
            auth=cfg.auth,
            models_dir=cfg.models_dir,
            default_source=clip if "://" in str(clip) or Path(clip).exists() else None,
            config=cfg.inference,
            allow_sources=cfg.allow_sources,
            event_stores=cfg.event_stores,
        )
    except InferenceError as exc:
        print(f"yolovino: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
