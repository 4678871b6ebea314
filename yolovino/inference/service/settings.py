"""The headless YAML as a small typed schema: every key declared once, with its type; unknown keys and wrong
types are errors naming the key's path (`cams.yaml: sources[1].conf: ...`), never silently ignored.

    settings = load_settings("cams.yaml")          # ConfigError (one line) on any problem
    settings.sources[0].conf                        # None = the global value

Built on pydantic (strict mode, extra keys forbidden): it reports every problem with its location, which is
what a hand-written checker would have to reimplement. A key's value may name environment variables,
`${DOOR_PW}`, so that no secret has to be written on a command line or in the file (`expand_env`).

`analytics:` on a source (a mapping, or true for tracking with defaults) is passed through untouched: its own
validator (analytics_config.parse_analytics) plugs in with `load_settings(path, analytics_hook=fn)`;
`fn(value, path)` raises ConfigError or ValueError to reject it, reported at that key's path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from yolovino.inference.core.errors import ConfigError

AnalyticsHook = Callable[[Any, str], object]
"""Validates one source's `analytics:` value: (value, key path such as "sources[2].analytics"), raising
ConfigError or ValueError; what it returns is not kept (the value itself is passed on untouched)."""

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


def _classes(value: Any) -> Any:
    """One class or a list of them, each an id or a name."""
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise ValueError(f"class ids or names expected, got {item!r}")
    return list(items)


class SourceSpec(_Schema):
    """One camera/file and what is done with it; None = the global setting."""

    url: str = Field(min_length=1)
    name: str | None = None
    live: bool | None = None
    # inference: thresholds, class filter, model and device (sources sharing model+device+rect share an engine)
    conf: float | None = Field(default=None, ge=0, le=1)
    iou: float | None = Field(default=None, ge=0, le=1)
    classes: list[int | str] | None = None
    rect: bool | None = None
    model: str | None = None
    device: str | None = None
    # outputs
    output: str | None = None  # publish to an RTSP server (rtsp://...)
    save: str | None = None  # one mp4 file
    jsonl: str | None = None
    record: bool | None = None  # segmented recording (needs the top-level `record:`)
    serve: bool | None = None  # on the built-in RTSP server (needs the top-level `serve:`)
    # health: no frame for this long = stalled
    stall_timeout: float | None = Field(default=None, gt=0)
    # tracking/zones/events: validated by the analytics hook, carried as is
    analytics: dict[str, Any] | bool | None = None

    _norm_classes = field_validator("classes", mode="before")(_classes)

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
    """Segmented, crash-safe recording (fragmented MP4) with retention."""

    dir: str
    segment_seconds: float = Field(default=60.0, gt=0)
    max_age_hours: float | None = Field(default=None, gt=0)
    max_size_mb: float | None = Field(default=None, gt=0)


class Settings(_Schema):
    """The whole YAML file."""

    model: str | None = None
    device: str | None = None
    conf: float | None = Field(default=None, ge=0, le=1)
    iou: float | None = Field(default=None, ge=0, le=1)
    classes: list[int | str] | None = None
    rect: bool | None = None
    hint: str | None = None
    wait_for_sources: bool = False
    stall_timeout: float = Field(default=10.0, gt=0)
    infer_timeout: float = Field(default=30.0, gt=0)
    metrics_port: int | None = Field(default=None, ge=0, le=65535)  # kept for old files; = metrics: {port}
    metrics: MetricsSettings | None = None
    serve: ServeSettings | None = None
    record: RecordSettings | None = None
    sources: list[SourceSpec] = Field(default_factory=list)

    _norm_classes = field_validator("classes", mode="before")(_classes)

    @field_validator("sources", mode="before")
    @classmethod
    def _urls_as_sources(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"url": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        seen: dict[str, int] = {}
        for i, s in enumerate(self.sources):
            if s.key in seen:
                raise ValueError(f"sources[{i}]: name {s.key!r} is also used by sources[{seen[s.key]}]")
            seen[s.key] = i
        return self


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The schema class that holds the key at `loc` (to list its allowed keys)."""
    model: Any = Settings
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return None
        ann = field.annotation
        args = getattr(ann, "__args__", ()) or (ann,)
        nested = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        nested += [
            b for a in args for b in getattr(a, "__args__", ()) if isinstance(b, type) and issubclass(b, BaseModel)
        ]
        model = nested[0] if nested else None
    return model


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _message(err: Any) -> str:
    loc = tuple(err["loc"])
    if err["type"] == "extra_forbidden":
        model = _model_at(loc)
        allowed = f" (allowed: {', '.join(model.model_fields)})" if model else ""
        return f"{_path(loc)}: unknown key{allowed}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if not loc:  # a check across keys: its message names them
        return msg
    got = err.get("input")
    shown = "" if isinstance(got, (dict, list)) or err["type"] == "missing" else f", got {got!r}"
    return f"{_path(loc)}: {msg}{shown}"


def parse_settings(data: Any, where: str = "config", analytics_hook: AnalyticsHook | None = None) -> Settings:
    """Validate a parsed YAML document; ConfigError lists every problem (`where: path: message; ...`)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with a 'sources' list")
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = [_message(e) for e in exc.errors()]
        raise ConfigError(f"{where}: " + "; ".join(problems[:5]) + ("; ..." if len(problems) > 5 else "")) from None
    if analytics_hook is not None:
        for i, s in enumerate(settings.sources):
            if s.analytics is not None:
                path = f"sources[{i}].analytics"
                try:
                    analytics_hook(s.analytics, path)
                except (ConfigError, ValueError) as exc:
                    text = str(exc)
                    raise ConfigError(f"{where}: {text if text.startswith(path) else f'{path}: {text}'}") from None
    return settings


def load_settings(path: str | Path, analytics_hook: AnalyticsHook | None = None) -> Settings:
    """Read and validate a YAML file (ConfigError, one line, on any problem)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: unreadable YAML ({str(exc).splitlines()[0]})") from None
    return parse_settings(data, str(path), analytics_hook)


__all__ = [
    "AnalyticsHook",
    "ConfigError",
    "MetricsSettings",
    "RecordSettings",
    "ServeSettings",
    "Settings",
    "SourceSpec",
    "expand_env",
    "load_settings",
    "parse_settings",
]
