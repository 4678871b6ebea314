"""The per-source `analytics:` mapping of the headless YAML, parsed and checked into an AnalyticsConfig.

    analytics:
      tracker: bytetrack              # or {kind: sort, lost_track_s: 2}; off: no tracking (no zones/lines)
      detect_every: 1                 # run the detector on every Nth frame, the tracker carries boxes between
      anchor: bottom_center           # point of a box tested against zones and lines (or: center)
      zones:
        - name: table
          points: [[0.35, 0.4], [0.75, 0.4], [0.75, 1.0], [0.35, 1.0]]   # normalised x, y (0..1)
          classes: [person]           # names or ids; default: every class
          dwell_s: 10                 # "stayed longer than" event
      lines:
        - {name: gate, points: [[0.0, 0.5], [1.0, 0.5]], classes: [car]}
      events:
        jsonl: events.jsonl
        mqtt: {host: 127.0.0.1, port: 1883, topic: yolo}          # topics yolo/<source>/events, .../counts
        webhook: {url: "http://127.0.0.1:8080/hook", timeout_s: 2, retries: 3}
        snapshots: {dir: snapshots, kinds: [line_crossed, zone_entered]}

`parse_analytics(raw, where)` raises ConfigError naming the key path (`sources[1].analytics.zones[0].points`);
class names are checked against the model later, by `resolve_classes(config, names, where)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from yolovino.inference.analytics.tracker import TRACKERS, TrackerConfig
from yolovino.inference.analytics.zones import LineSpec, ZoneSpec, self_intersects
from yolovino.inference.core.errors import ConfigError
from yolovino.inference.core.events import EventKind

ANCHORS = ("bottom_center", "center")


@dataclass(frozen=True)
class MqttOutput:
    host: str
    port: int = 1883
    topic: str = "yolo"  # events go to <topic>/<source>/events, retained counts to <topic>/<source>/counts
    qos: int = 1
    client_id: str | None = None
    username: str | None = None
    password_env: str | None = None  # name of the environment variable holding the password (never the YAML)
    keepalive: int = 30
    max_queue: int = 1000  # messages paho keeps while the broker is away


@dataclass(frozen=True)
class WebhookOutput:
    url: str
    timeout_s: float = 2.0
    retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 5.0


@dataclass(frozen=True)
class SnapshotOutput:
    dir: str
    kinds: tuple[EventKind, ...] = (EventKind.CROSSED, EventKind.ENTERED, EventKind.DWELL)
    quality: int = 85


@dataclass(frozen=True)
class EventOutputs:
    jsonl: str | None = None
    mqtt: MqttOutput | None = None
    webhook: WebhookOutput | None = None
    snapshots: SnapshotOutput | None = None
    queue_size: int = 1000  # per consumer; beyond it events are dropped and counted, the video never waits
    kinds: tuple[EventKind, ...] = tuple(EventKind)


@dataclass(frozen=True)
class AnalyticsConfig:
    tracker: TrackerConfig | None = field(default_factory=TrackerConfig)
    detect_every: int = 1
    anchor: str = "bottom_center"
    min_frames: int = 2  # updates a track must stay on the new side of a line / zone border to count
    reset_gap_s: float = 3.0  # a gap (or a step back) in stream time larger than this resets the tracker
    zones: tuple[ZoneSpec, ...] = ()
    lines: tuple[LineSpec, ...] = ()
    events: EventOutputs = field(default_factory=EventOutputs)

    @property
    def tracking(self) -> bool:
        return self.tracker is not None


def _err(where: str, msg: str) -> ConfigError:
    return ConfigError(f"{where}: {msg}")


def _mapping(raw, where: str, allowed: set[str]) -> dict:
    if not isinstance(raw, dict):
        raise _err(where, f"expected a mapping, got {type(raw).__name__}")
    unknown = sorted(str(k) for k in raw if k not in allowed)
    if unknown:
        raise _err(where, f"unknown keys {unknown} (allowed: {sorted(allowed)})")
    return raw


def _number(raw, where: str, lo: float | None = None, hi: float | None = None, integer: bool = False) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or (integer and not float(raw).is_integer()):
        raise _err(where, f"expected {'an integer' if integer else 'a number'}, got {raw!r}")
    value = float(raw)
    if not math.isfinite(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"between {lo:g} and {hi:g}" if lo is not None and hi is not None else f">= {lo:g}"
        raise _err(where, f"must be {bounds}, got {raw!r}")
    return value


def _text(raw, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise _err(where, f"expected a non-empty string, got {raw!r}")
    return raw.strip()


def _choice(raw, where: str, options) -> str:
    if raw not in options:
        raise _err(where, f"must be one of {list(options)}, got {raw!r}")
    return str(raw)


def _points(raw, where: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(raw, (list, tuple)):
        raise _err(where, "expected a list of [x, y] points in normalised coordinates (0..1)")
    pts = []
    for i, p in enumerate(raw):
        if not isinstance(p, (list, tuple)) or len(p) != 2:
            raise _err(f"{where}[{i}]", f"expected [x, y], got {p!r}")
        x, y = (_number(v, f"{where}[{i}]") for v in p)
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise _err(
                f"{where}[{i}]",
                f"({x:g}, {y:g}) is out of the frame: coordinates are normalised, 0..1 of width and height "
                "(divide pixels by the frame size)",
            )
        pts.append((x, y))
    return tuple(pts)


def _classes(raw, where: str) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if isinstance(raw, (str, int)) and not isinstance(raw, bool):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise _err(where, "expected a list of class names or ids")
    return tuple(
        str(_text(c, f"{where}[{i}]") if isinstance(c, str) else int(_number(c, f"{where}[{i}]", 0, integer=True)))
        for i, c in enumerate(raw)
    )


def _tracker(raw, where: str) -> TrackerConfig | None:
    if raw is None or raw is True:
        return TrackerConfig()
    if raw is False or raw in ("off", "none"):
        return None
    if isinstance(raw, str):
        return TrackerConfig.for_kind(_choice(raw, where, sorted(TRACKERS)))
    m = _mapping(raw, where, {"kind", "lost_track_s", "activation", "high_score", "min_iou", "min_frames", "trail"})
    cfg = TrackerConfig.for_kind(_choice(m.get("kind", "bytetrack"), f"{where}.kind", sorted(TRACKERS)))
    for key, lo, hi in (
        ("lost_track_s", 0.0, 600.0),
        ("activation", 0.0, 1.0),
        ("high_score", 0.0, 1.0),
        ("min_iou", 0.0, 1.0),
    ):
        if key in m:
            cfg = replace(cfg, **{key: _number(m[key], f"{where}.{key}", lo, hi)})  # type: ignore[arg-type]
    for key, lo, hi in (("min_frames", 1, 100), ("trail", 0, 1000)):
        if key in m:
            cfg = replace(cfg, **{key: int(_number(m[key], f"{where}.{key}", lo, hi, integer=True))})  # type: ignore[arg-type]
    return cfg


def _zone(raw, where: str, i: int, anchor: str) -> ZoneSpec:
    m = _mapping(raw, where, {"name", "points", "classes", "dwell_s", "anchor"})
    if "points" not in m:
        raise _err(where, "needs 'points': a polygon of at least 3 [x, y] points")
    pts = _points(m["points"], f"{where}.points")
    if len(pts) < 3:
        raise _err(f"{where}.points", f"a zone needs at least 3 points, got {len(pts)}")
    if self_intersects(pts):
        raise _err(f"{where}.points", "the polygon crosses itself: list the points in order around the zone")
    area = 0.5 * abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1])))
    if area <= 1e-6:
        raise _err(f"{where}.points", "the polygon has no area (points on one line or repeated)")
    return ZoneSpec(
        name=_text(m.get("name", f"zone{i}"), f"{where}.name"),
        points=pts,
        class_names=_classes(m.get("classes"), f"{where}.classes"),
        dwell_s=None if m.get("dwell_s") is None else _number(m["dwell_s"], f"{where}.dwell_s", 0.0),
        anchor=_choice(m.get("anchor", anchor), f"{where}.anchor", ANCHORS),
    )


def _line(raw, where: str, i: int, anchor: str) -> LineSpec:
    m = _mapping(raw, where, {"name", "points", "classes", "anchor"})
    if "points" not in m:
        raise _err(where, "needs 'points': two [x, y] points")
    pts = _points(m["points"], f"{where}.points")
    if len(pts) != 2:
        raise _err(f"{where}.points", f"a line needs exactly 2 points, got {len(pts)}")
    if math.dist(pts[0], pts[1]) < 1e-3:
        raise _err(f"{where}.points", "the two points are the same")
    return LineSpec(
        name=_text(m.get("name", f"line{i}"), f"{where}.name"),
        a=pts[0],
        b=pts[1],
        class_names=_classes(m.get("classes"), f"{where}.classes"),
        anchor=_choice(m.get("anchor", anchor), f"{where}.anchor", ANCHORS),
    )


def _kinds(raw, where: str) -> tuple[EventKind, ...]:
    values = [k.value for k in EventKind]
    if not isinstance(raw, list):
        raise _err(where, f"expected a list of event kinds {values}")
    return tuple(EventKind(_choice(k, f"{where}[{i}]", values)) for i, k in enumerate(raw))


def _mqtt(raw, where: str) -> MqttOutput:
    keys = {"host", "port", "topic", "qos", "client_id", "username", "password_env", "keepalive", "max_queue"}
    m = _mapping(raw, where, keys)
    if "host" not in m:
        raise _err(where, "needs 'host' (the broker's address)")
    out = MqttOutput(host=_text(m["host"], f"{where}.host"))
    if "port" in m:
        out = replace(out, port=int(_number(m["port"], f"{where}.port", 1, 65535, integer=True)))
    if "qos" in m:
        out = replace(out, qos=int(_number(m["qos"], f"{where}.qos", 0, 2, integer=True)))
    for key in ("keepalive", "max_queue"):
        if key in m:
            out = replace(out, **{key: int(_number(m[key], f"{where}.{key}", 1, 10**7, integer=True))})  # type: ignore[arg-type]
    for key in ("topic", "client_id", "username", "password_env"):
        if key in m:
            out = replace(out, **{key: _text(m[key], f"{where}.{key}")})  # type: ignore[arg-type]
    if any(c in out.topic for c in "#+"):
        raise _err(f"{where}.topic", "wildcards (# +) are for subscribers, not for publishing")
    return out


def _webhook(raw, where: str) -> WebhookOutput:
    m = (
        {"url": raw}
        if isinstance(raw, str)
        else _mapping(raw, where, {"url", "timeout_s", "retries", "backoff_s", "max_backoff_s"})
    )
    url = _text(m.get("url"), f"{where}.url")
    if not url.startswith(("http://", "https://")):
        raise _err(f"{where}.url", f"expected an http:// or https:// URL, got {url!r}")
    out = WebhookOutput(url=url)
    for key, lo, hi in (("timeout_s", 0.01, 600.0), ("backoff_s", 0.0, 600.0), ("max_backoff_s", 0.0, 3600.0)):
        if key in m:
            out = replace(out, **{key: _number(m[key], f"{where}.{key}", lo, hi)})  # type: ignore[arg-type]
    if "retries" in m:
        out = replace(out, retries=int(_number(m["retries"], f"{where}.retries", 0, 100, integer=True)))
    return out


def _events(raw, where: str) -> EventOutputs:
    m = _mapping(raw, where, {"jsonl", "mqtt", "webhook", "snapshots", "queue_size", "kinds"})
    out = EventOutputs()
    if m.get("jsonl") is not None:
        out = replace(out, jsonl=_text(m["jsonl"], f"{where}.jsonl"))
    if m.get("mqtt") is not None:
        out = replace(out, mqtt=_mqtt(m["mqtt"], f"{where}.mqtt"))
    if m.get("webhook") is not None:
        out = replace(out, webhook=_webhook(m["webhook"], f"{where}.webhook"))
    if m.get("snapshots") is not None:
        s = m["snapshots"]
        s = {"dir": s} if isinstance(s, str) else _mapping(s, f"{where}.snapshots", {"dir", "kinds", "quality"})
        snap = SnapshotOutput(dir=_text(s.get("dir"), f"{where}.snapshots.dir"))
        if "kinds" in s:
            snap = replace(snap, kinds=_kinds(s["kinds"], f"{where}.snapshots.kinds"))
        if "quality" in s:
            snap = replace(snap, quality=int(_number(s["quality"], f"{where}.snapshots.quality", 1, 100, integer=True)))
        out = replace(out, snapshots=snap)
    if "queue_size" in m:
        out = replace(out, queue_size=int(_number(m["queue_size"], f"{where}.queue_size", 1, 10**6, integer=True)))
    if "kinds" in m:
        out = replace(out, kinds=_kinds(m["kinds"], f"{where}.kinds"))
    return out


def _unique(specs, where: str) -> None:
    seen: set[str] = set()
    for i, s in enumerate(specs):
        if s.name in seen:
            raise _err(f"{where}[{i}].name", f"{s.name!r} is used twice")
        seen.add(s.name)


def parse_analytics(raw, where: str = "analytics") -> AnalyticsConfig:
    """The `analytics:` mapping of one source (True or {} = tracking with defaults) -> AnalyticsConfig."""
    if raw is True or raw is None:
        raw = {}
    keys = {"tracker", "detect_every", "anchor", "min_frames", "reset_gap_s", "zones", "lines", "events"}
    m = _mapping(raw, where, keys)
    cfg = AnalyticsConfig(tracker=_tracker(m.get("tracker"), f"{where}.tracker"))
    if "anchor" in m:
        cfg = replace(cfg, anchor=_choice(m["anchor"], f"{where}.anchor", ANCHORS))
    if "detect_every" in m:
        cfg = replace(cfg, detect_every=int(_number(m["detect_every"], f"{where}.detect_every", 1, 100, integer=True)))
    if "min_frames" in m:
        cfg = replace(cfg, min_frames=int(_number(m["min_frames"], f"{where}.min_frames", 1, 100, integer=True)))
    if "reset_gap_s" in m:
        cfg = replace(cfg, reset_gap_s=_number(m["reset_gap_s"], f"{where}.reset_gap_s", 0.1))
    for key, parse in (("zones", _zone), ("lines", _line)):
        items = m.get(key) or []
        if not isinstance(items, list):
            raise _err(f"{where}.{key}", "expected a list")
        specs = tuple(parse(item, f"{where}.{key}[{i}]", i, cfg.anchor) for i, item in enumerate(items))
        _unique(specs, f"{where}.{key}")
        cfg = replace(cfg, **{key: specs})  # type: ignore[arg-type]
    if m.get("events") is not None:
        cfg = replace(cfg, events=_events(m["events"], f"{where}.events"))
    if not cfg.tracking and (cfg.zones or cfg.lines or cfg.detect_every > 1):
        raise _err(f"{where}.tracker", "zones, lines and detect_every > 1 need tracking: remove 'tracker: off'")
    return cfg


def resolve_classes(cfg: AnalyticsConfig, names: dict[int, str], where: str = "analytics") -> AnalyticsConfig:
    """Class names (or ids) of zones and lines -> the model's class ids; ConfigError for an unknown one."""
    by_name = {n.lower(): i for i, n in names.items()}

    def ids(class_names, path: str) -> tuple[int, ...] | None:
        if class_names is None:
            return None
        out = []
        for j, c in enumerate(class_names):
            if c.isdigit() and int(c) in names:
                out.append(int(c))
            elif c.lower() in by_name:
                out.append(by_name[c.lower()])
            else:
                known = ", ".join(list(names.values())[:12])
                raise _err(f"{path}[{j}]", f"unknown class {c!r} for this model (classes: {known}, ...)")
        return tuple(out)

    zones = tuple(
        replace(z, classes=ids(z.class_names, f"{where}.zones[{i}].classes")) for i, z in enumerate(cfg.zones)
    )
    lines = tuple(
        replace(ln, classes=ids(ln.class_names, f"{where}.lines[{i}].classes")) for i, ln in enumerate(cfg.lines)
    )
    return replace(cfg, zones=zones, lines=lines)
