"""The headless YAML as a small typed schema: every key declared once, with its type; unknown keys and wrong
types are errors naming the key's path (`cams.yaml: sources[1].conf: ...`), never silently ignored.

    settings = load_settings("cams.yaml")          # ConfigError (one line) on any problem
    settings.sources[0].conf                        # None = the global value

Built on pydantic (strict mode, extra keys forbidden): it reports every problem with its location, which is
what a hand-written checker would have to reimplement. A key's value may name environment variables,
`${DOOR_PW}`, so that no secret has to be written on a command line or in the file (`expand_env`).

Each stage owns the model of its part and this file composes them: a source's `analytics:` is the analytics
stage's `AnalyticsConfig` (tracker, zones, lines, and notify's `events:`), `record:` and `serve:` are the
outputs'. So the whole file is validated once, every error names its key path, and `config_schema()` is the
JSON Schema of the file for editors (`yolovino config schema`). Files are bounded: at most MAX_YAML_BYTES,
and at most MAX_YAML_VALUES values once aliases are expanded (an alias bomb would expand into gigabytes).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from yolovino.inference.analytics.config import AnalyticsConfig
from yolovino.inference.core.classes import ClassesInput, class_list
from yolovino.inference.core.errors import ConfigError
from yolovino.inference.core.validation import describe

MAX_YAML_BYTES = 1_000_000  # a camera file is a few kB; more is a mistake (or an attack) that costs minutes
MAX_YAML_VALUES = 100_000  # after expanding aliases: a YAML alias bomb holds billions
DEFAULT_STALL_TIMEOUT = 10.0  # s without a result before /healthz calls a source stalled
DEFAULT_INFER_TIMEOUT = 30.0  # s an infer request may stay pending before /healthz calls inference stuck

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(text: str, where: str = "value", env: Mapping[str, str] | None = None) -> str:
    """`${NAME}` replaced by the environment variable NAME (ConfigError naming `where` if it is unset)."""
    env = os.environ if env is None else env

    def sub(m: re.Match) -> str:
        if m.group(1) not in env:
            raise ConfigError(f"{where}: environment variable {m.group(1)} is not set")
        return env[m.group(1)]

    return _ENV.sub(sub, text)


def credentials(text: str | None, what: str) -> tuple[str, str] | None:
    """ "user:password" as a pair (None for no text); ConfigError naming `what` when it is not that."""
    if not text:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise ConfigError(f"{what} must be user:password")
    return user, password


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _urls_as_sources(value: Any) -> Any:
    """A bare string in `sources:` is a source with only its URL."""
    if isinstance(value, list):
        return [{"url": v} if isinstance(v, str) else v for v in value]
    return value


def _analytics(value: Any) -> Any:
    """`analytics: true` = tracking with defaults, `false` = none."""
    if value is True:
        return {}
    return None if value is False else value


class SourceSpec(_Schema):
    """One camera/file and what is done with it; None = the global setting."""

    url: str = Field(min_length=1)
    name: str | None = None
    live: bool | None = None
    # inference: thresholds, class filter, model and device (sources sharing model+device+rect share an engine)
    conf: float | None = Field(default=None, ge=0, le=1)
    iou: float | None = Field(default=None, ge=0, le=1)
    classes: Annotated[tuple[str, ...] | None, BeforeValidator(class_list, json_schema_input_type=ClassesInput)] = None
    rect: bool | None = None
    model: str | None = None
    device: str | None = None
    # outputs
    output: str | None = None  # publish to an RTSP server (rtsp://...)
    save: str | None = None  # one mp4 file
    jsonl: str | None = None
    record: bool | None = None  # segmented recording (needs the top-level `record:`)
    # the camera's main stream, recorded by packet copy while `url` (its low-resolution sub-stream) is
    # what the detector decodes: the main stream is never decoded
    record_url: str | None = Field(default=None, min_length=1)
    serve: bool | None = None  # on the built-in RTSP server (needs the top-level `serve:`)
    # health: no frame for this long = stalled
    stall_timeout: float | None = Field(default=None, gt=0)
    # tracking/zones/lines/events (analytics/config.py)
    analytics: Annotated[
        AnalyticsConfig | None, BeforeValidator(_analytics, json_schema_input_type=AnalyticsConfig | bool | None)
    ] = None

    @property
    def key(self) -> str:
        """What identifies the source across reloads: its name, else its URL."""
        return self.name or self.url


class MetricsSettings(_Schema):
    """Prometheus /metrics and /healthz over HTTP."""

    port: int = Field(ge=0, le=65535)
    host: str = "127.0.0.1"


class ServeSettings(_Schema):
    """The built-in RTSP server: every served source at rtsp://host:port/<name>."""

    port: int = Field(default=8554, ge=0, le=65535)
    host: str = "127.0.0.1"
    user: str | None = None  # credentials: here (with ${VAR}) or YOLO_RTSP_AUTH=user:password
    password: str | None = None


class RecordSettings(_Schema):
    """Segmented, crash-safe recording (fragmented MP4) with retention.

    mode: `copy` writes the camera's own H.264/H.265 packets (no decode, no encode, the camera's resolution;
    a fraction of the CPU), `annotated` encodes the annotated frames (boxes, zones, counts drawn in), `auto`
    (the default) copies where the source is an H.264/H.265 file or stream and encodes otherwise (webcams,
    image folders, other codecs)."""

    dir: str
    mode: Literal["auto", "copy", "annotated"] = "auto"
    segment_seconds: float = Field(default=60.0, gt=0)
    max_age_hours: float | None = Field(default=None, gt=0)
    max_size_mb: float | None = Field(default=None, gt=0)


class Settings(_Schema):
    """The whole YAML file."""

    model: str | None = None
    device: str | None = None
    conf: float | None = Field(default=None, ge=0, le=1)
    iou: float | None = Field(default=None, ge=0, le=1)
    classes: Annotated[tuple[str, ...] | None, BeforeValidator(class_list, json_schema_input_type=ClassesInput)] = None
    rect: bool | None = None
    hint: str | None = None
    wait_for_sources: bool = False
    stall_timeout: float = Field(default=DEFAULT_STALL_TIMEOUT, gt=0)
    infer_timeout: float = Field(default=DEFAULT_INFER_TIMEOUT, gt=0)
    metrics_port: int | None = Field(default=None, ge=0, le=65535)  # kept for old files; = metrics: {port}
    metrics: MetricsSettings | None = None
    serve: ServeSettings | None = None
    record: RecordSettings | None = None
    sources: Annotated[
        list[SourceSpec], BeforeValidator(_urls_as_sources, json_schema_input_type=list[SourceSpec | str])
    ] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        seen: dict[str, int] = {}
        for i, s in enumerate(self.sources):
            if s.key in seen:
                raise ValueError(f"sources[{i}]: name {s.key!r} is also used by sources[{seen[s.key]}]")
            seen[s.key] = i
        return self


def parse_settings(data: Any, where: str = "config") -> Settings:
    """Validate a parsed YAML document; ConfigError lists every problem (`where: path: message; ...`)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with a 'sources' list")
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {describe(exc, Settings) or 'invalid'}") from None


def _expanded_size(node: Any, memo: dict[int, int]) -> int:
    """How many values the document holds once its aliases are expanded (shared parts counted once each time
    they are used, computed once each: an alias bomb is measured in microseconds, never expanded)."""
    if not isinstance(node, (dict, list)):
        return 1
    key = id(node)
    if key not in memo:
        memo[key] = 0  # a cycle (a recursive alias) counts as nothing more
        items = [*node.keys(), *node.values()] if isinstance(node, dict) else node
        memo[key] = 1 + sum(_expanded_size(item, memo) for item in items)
    return memo[key]


def load_settings(path: str | Path) -> Settings:
    """Read and validate a YAML file (ConfigError, one line, on any problem)."""
    import yaml

    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise ConfigError(
                f"{path}: {size / 1e6:.1f} MB is too big for a config file (at most {MAX_YAML_BYTES // 1000} kB)"
            )
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: unreadable YAML ({str(exc).splitlines()[0]})") from None
    if _expanded_size(data, {}) > MAX_YAML_VALUES:
        raise ConfigError(f"{path}: more than {MAX_YAML_VALUES} values once its aliases (*name) are expanded")
    return parse_settings(data, str(path))


def config_schema() -> dict:
    """The JSON Schema of a camera file (for editors: the YAML language server's `# yaml-language-server: $schema=`)."""
    schema = Settings.model_json_schema()
    schema["title"] = "yolovino camera file"
    return schema


__all__ = [
    "DEFAULT_INFER_TIMEOUT",
    "DEFAULT_STALL_TIMEOUT",
    "ConfigError",
    "MetricsSettings",
    "RecordSettings",
    "ServeSettings",
    "Settings",
    "SourceSpec",
    "config_schema",
    "expand_env",
    "load_settings",
    "parse_settings",
]
