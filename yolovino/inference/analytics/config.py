"""The per-source `analytics:` mapping of the headless YAML, parsed and checked into an AnalyticsConfig.

    analytics:
      tracker: bytetrack              # or {kind: sort, lost_track_s: 2}; off: no tracking (no zones/lines)
      detect_every: 1                 # run the detector on every Nth frame, the tracker carries boxes between
      motion: true                    # run it only on motion, live tracks, keepalive (core/motion.py);
                                      #   unset: on for live sources, off for files
      anchor: bottom_center           # point of a box tested against zones and lines (or: center)
      stationary_s: 30                # a track still for longer is marked stationary (0: off, the default)
      speed: {points: [[0.3, 0.55], [0.7, 0.55], [0.95, 0.95], [0.05, 0.95]], size_m: [10, 20]}  # speed.py
      zones:
        - name: table
          points: [[0.35, 0.4], [0.75, 0.4], [0.75, 1.0], [0.35, 1.0]]   # normalised x, y (0..1)
          classes: [person]           # names or ids; default: every class
          dwell_s: 10                 # "stayed longer than" event (alias: loitering_s)
      lines:
        - {name: gate, points: [[0.0, 0.5], [1.0, 0.5]], classes: [car]}
      filters:                        # per class (name, id or "*"), before tracking (analytics/filters.py)
        person: {min_area: 0.002, max_ratio: 1.2, min_score: 0.5}
      events:
        jsonl: events.jsonl
        mqtt: {host: 127.0.0.1, port: 1883, topic: yolo}          # topics yolo/<source>/events, .../counts
        webhook: {url: "http://127.0.0.1:8080/hook", timeout_s: 2, retries: 3}
        snapshots: {dir: snapshots, kinds: [line_crossed, zone_entered]}

One pydantic tree: the tracker's config (analytics/tracker.py), zones and lines (analytics/zones.py, lines.py) and the
event consumers' (notify/config.py) compose into `AnalyticsConfig`, the type of a source's `analytics:` in the
service's YAML schema, so it is validated once, with the rest of the file. `parse_analytics(raw, where)` does
the same for a bare mapping (the fleet's --analytics, tests, benches) and raises ConfigError naming the key
path (`sources[1].analytics.zones[0].points`); class names are checked against the model later, by
`resolve_classes(config, names, where)`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)

from yolovino.inference.analytics.filters import ObjectFilter, resolve_filters
from yolovino.inference.analytics.geometry import self_intersects
from yolovino.inference.analytics.lines import LineSpec
from yolovino.inference.analytics.speed import SpeedConfig
from yolovino.inference.analytics.tracker import TrackerConfig
from yolovino.inference.analytics.zones import Anchor, ZoneSpec
from yolovino.inference.core.classes import class_ids
from yolovino.inference.core.errors import ConfigError
from yolovino.inference.core.motion import MotionConfig, motion_input
from yolovino.inference.core.validation import describe
from yolovino.inference.notify.config import EventOutputs, MqttOutput, SnapshotOutput, WebhookOutput

TrackerKind = Literal["bytetrack", "sort", "ocsort", "off", "none"]


def _tracker(value: Any) -> Any:
    """`tracker:` as written: true / absent (ByteTrack), off / false / none (no tracking), a kind, a mapping."""
    if value is None or value is True:
        return {}
    if value is False or value in ("off", "none"):
        return None
    if isinstance(value, str):
        return {"kind": value}
    return value


def _events(value: Any) -> Any:
    return {} if value is None else value


def _named(items: Any, prefix: str, anchor: Any) -> Any:
    """Zones/lines without a name get zone<i>/line<i>; without an anchor, the analytics-wide one."""
    if not isinstance(items, list):
        return items
    out = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            item = {"name": f"{prefix}{i}", **({"anchor": anchor} if anchor is not None else {}), **item}
        out.append(item)
    return out


class AnalyticsConfig(BaseModel):
    """Tracking, zones, lines and event outputs of one source (the module docstring shows the YAML)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    tracker: Annotated[
        TrackerConfig | None,
        BeforeValidator(_tracker, json_schema_input_type=TrackerConfig | TrackerKind | bool | None),
    ] = TrackerConfig()
    detect_every: Annotated[int, Strict()] = Field(default=1, ge=1, le=100)
    motion: Annotated[
        MotionConfig | None, BeforeValidator(motion_input, json_schema_input_type=MotionConfig | bool | None)
    ] = Field(default=None, description="motion-gated detection; unset: on for live sources, off for files")
    anchor: Anchor = "bottom_center"
    min_frames: Annotated[int, Strict()] = Field(default=2, ge=1, le=100)  # updates on the new side before it counts
    reset_gap_s: Annotated[float, Strict()] = Field(default=3.0, ge=0.1)  # a larger gap in stream time resets tracks
    stationary_s: Annotated[float, Strict()] = Field(
        default=0.0,
        ge=0.0,
        le=3600.0,
        description="a confirmed track whose anchor stays within a tenth of its box size for longer than this is "
        "marked stationary (results, events); 0: off",
    )
    speed: SpeedConfig | None = Field(
        default=None, description="ground calibration: each track gets a speed (km/h) and heading (analytics/speed.py)"
    )
    zones: tuple[ZoneSpec, ...] = ()
    lines: tuple[LineSpec, ...] = ()
    filters: dict[str, ObjectFilter] = Field(
        default_factory=dict, description='per class name or id ("*": every class): bounds a detection must meet'
    )
    events: Annotated[EventOutputs, BeforeValidator(_events, json_schema_input_type=EventOutputs | None)] = (
        EventOutputs()
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data: Any) -> Any:
        if data is None or data is True:
            return {}
        if isinstance(data, dict):
            data = dict(data)
            for key, prefix in (("zones", "zone"), ("lines", "line")):
                if key in data:
                    data[key] = _named(data[key] if data[key] is not None else [], prefix, data.get("anchor"))
        return data

    @field_validator("zones", "lines")
    @classmethod
    def _unique(cls, specs: tuple[ZoneSpec, ...] | tuple[LineSpec, ...]) -> Any:
        seen: dict[str, int] = {}
        for i, s in enumerate(specs):
            if s.name in seen:
                raise ValueError(f"name {s.name!r} is used twice (items {seen[s.name]} and {i})")
            seen[s.name] = i
        return specs

    @field_validator("motion")
    @classmethod
    def _masks_are_simple(cls, motion: MotionConfig | None) -> MotionConfig | None:
        """A motion mask is checked like a zone: a polygon that crosses itself is refused (its filled area
        would not be what was drawn)."""
        for k, poly in enumerate(motion.mask if motion is not None else ()):
            if self_intersects(poly):
                raise ValueError(f"mask polygon {k} crosses itself: list the points in order around the area")
        return motion

    @model_validator(mode="after")
    def _needs_tracking(self) -> AnalyticsConfig:
        if self.tracker is None and (self.zones or self.lines or self.detect_every > 1):
            raise ValueError("tracker: zones, lines and detect_every > 1 need tracking: remove 'tracker: off'")
        if self.tracker is None and self.motion is not None and self.motion.enabled:
            raise ValueError("tracker: motion gating needs tracking (it carries the boxes): remove 'tracker: off'")
        return self

    def motion_for(self, live: bool) -> MotionConfig | None:
        """The motion gate this source runs, if any: as configured, else on for a live source (with tracking)."""
        if self.motion is not None:
            return self.motion if self.motion.enabled and self.tracking else None
        return MotionConfig() if live and self.tracking else None

    @property
    def tracking(self) -> bool:
        return self.tracker is not None


def parse_analytics(raw: Any, where: str = "analytics") -> AnalyticsConfig:
    """The `analytics:` mapping of one source (True or {} = tracking with defaults) -> AnalyticsConfig;
    ConfigError (one line) naming the key path below `where`."""
    if raw is not None and raw is not True and not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    try:
        return AnalyticsConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe(exc, AnalyticsConfig, where)) from None


def resolve_classes(cfg: AnalyticsConfig, names: dict[int, str], where: str = "analytics") -> AnalyticsConfig:
    """Class names (or ids) of zones and lines -> the model's class ids; ConfigError for an unknown one (also
    for the filters', which the stage resolves itself)."""
    resolve_filters(cfg.filters, names, f"{where}.filters")
    zones = tuple(
        z.model_copy(update={"class_ids": class_ids(z.classes, names, f"{where}.zones[{i}].classes")})
        for i, z in enumerate(cfg.zones)
    )
    lines = tuple(
        ln.model_copy(update={"class_ids": class_ids(ln.classes, names, f"{where}.lines[{i}].classes")})
        for i, ln in enumerate(cfg.lines)
    )
    return cfg.model_copy(update={"zones": zones, "lines": lines})


__all__ = [
    "AnalyticsConfig",
    "EventOutputs",
    "LineSpec",
    "MotionConfig",
    "MqttOutput",
    "ObjectFilter",
    "SnapshotOutput",
    "SpeedConfig",
    "TrackerConfig",
    "WebhookOutput",
    "ZoneSpec",
    "parse_analytics",
    "resolve_classes",
]
