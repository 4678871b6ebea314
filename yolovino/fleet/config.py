"""The fleet's configuration: the headless mode's own command line and YAML (app.build_config, which
parses inference/service/settings.py's schema), so a camera file runs the same on one box and on a cluster."""

from __future__ import annotations

from yolovino.fleet.cluster import FleetError
from yolovino.fleet.host import HostSettings
from yolovino.inference.core.errors import InferenceError
from yolovino.inference.service.plan import HeadlessConfig, plan_sources
from yolovino.inference.service.supervisor import SourcePlan

# what the headless mode can do on one box but the fleet does not (yet), and what to use instead
NOT_IN_FLEET = {
    "serve": "the built-in RTSP server (serve:, --serve) runs on one box; publish each camera with `output:`",
    "metrics_port": "metrics/healthz ports (metrics:, --metrics-port) are per box; use `yolovino-fleet status`",
    "jsonl": "one --jsonl for every camera would be written from several machines; give each camera `jsonl:`",
    "watch_config": "--watch-config/SIGHUP reload: restart `fleet live` with the edited file",
    "max_frames": "--max-frames: a fleet runs until stopped",
}


def config_from_flags(argv: list[str]) -> HeadlessConfig:
    """The headless config from the same flags `yolovino --headless` takes (FleetError, one line)."""
    from yolovino.cli.config import UsageError, build_config

    try:
        cfg = build_config(["--headless", *argv]).headless
    except UsageError as exc:
        raise FleetError(str(exc)) from None
    assert cfg is not None
    return cfg


def live_plans(argv: list[str]) -> tuple[list[SourcePlan], HostSettings]:
    """Every camera's plan and the outputs' settings for `fleet live`."""
    cfg = config_from_flags(argv)
    for key, why in NOT_IN_FLEET.items():
        if getattr(cfg, key) not in (None, False):
            raise FleetError(f"not in fleet mode: {why}")
    try:
        plans = plan_sources(cfg)
    except InferenceError as exc:
        raise FleetError(str(exc)) from None
    settings = HostSettings(
        annotate=cfg.annotate,
        output_fps=cfg.output_fps,
        max_retries=cfg.max_retries,
        wait_for_sources=True,  # a camera down when its node takes it over keeps being retried
        record=cfg.record,
    )
    return plans, settings


def batch_plan(first_input: str, argv: list[str], analytics: dict | bool | None) -> SourcePlan:
    """The plan every file of a batch shares (model, thresholds, analytics), from the headless flags."""
    from yolovino.inference.analytics.config import parse_analytics
    from yolovino.inference.service.settings import SourceSpec

    cfg = config_from_flags(["--source", first_input, *argv])
    if cfg.config_path is not None:
        raise FleetError("batch takes the headless flags (--model, --conf, --classes ...), not --config")
    for key in ("output", "save", "jsonl", "record", "serve", "metrics_port"):
        if getattr(cfg, key) is not None:
            raise FleetError(f"batch writes its outputs under --out; --{key.replace('_', '-')} is not for batch")
    parsed = None
    if analytics is not None and analytics is not False:
        try:
            parsed = parse_analytics(analytics, "--analytics")
        except InferenceError as exc:
            raise FleetError(str(exc)) from None
    cfg.sources = [SourceSpec(url=first_input, analytics=parsed)]
    try:
        (plan,) = plan_sources(cfg)
    except InferenceError as exc:
        raise FleetError(str(exc)) from None
    return plan
