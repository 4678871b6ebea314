"""One tab's analytics: tracking on/off, zones and lines, motion gating and masks, and what its runs report.

`AnalyticsState` opens the analytics stage for a run (`open()`), receives every frame's events and counts
(it is that stage's event hub), and applies edits to the runs in progress at once. No gradio here: the page
section that edits and shows it is ui/analytics_panel.py. Zones and lines go through the same checks as the
YAML (parse_analytics): zones need at least 3 points, lines 2 (a segment) or more (a polyline,
for a bent path), all inside the frame. Motion masks are polygons checked like zones (at least 3 points,
not crossing themselves); with motion gating on (it needs tracking), each run's engine gets a motion gate
that ignores them, and "show motion" draws the gate's regions and the masks on the video.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque

from yolovino.inference.analytics.config import AnalyticsConfig, parse_analytics, resolve_classes
from yolovino.inference.analytics.lines import LineSpec
from yolovino.inference.analytics.stage import Analytics
from yolovino.inference.analytics.zones import ZoneSpec
from yolovino.inference.core.errors import ConfigError
from yolovino.inference.core.events import Event, FrameAnalytics, RegionCounts
from yolovino.inference.core.motion import MotionConfig, Polygon
from yolovino.inference.model.motion import MotionGate
from yolovino.inference.model.stride import StridedEngine

EVENT_HEADERS = ["time", "source", "event", "track", "class", "where", "detail"]
MAX_LOG = 200


class AnalyticsState:
    """One tab's analytics settings and the event hub of its runs (thread-safe)."""

    def __init__(self) -> None:
        self.enabled = True
        self.zones: tuple[ZoneSpec, ...] = ()
        self.lines: tuple[LineSpec, ...] = ()
        self.motion = False  # motion-gated detection (with tracking)
        self.show_motion = False  # draw the gate's motion regions and the masks
        self.masks: tuple[tuple[str, Polygon], ...] = ()  # (name, normalised polygon) where motion is ignored
        self.log: deque[Event] = deque(maxlen=MAX_LOG)
        self.counts: list[RegionCounts] = []
        self.tracks_active = 0
        self.frame_hw: tuple[int, int] | None = None  # of the last frame seen: turns clicks into 0..1
        self._runs: list[Analytics] = []
        self._gated: list[tuple[StridedEngine, str, Analytics | None]] = []  # runs' engines, for motion gates
        self._names: dict[int, str] = {}
        self._lock = threading.Lock()

    # --- the event-hub side (called by the analytics stage on the pipeline thread) -----------------------
    def publish(self, source: str, info: FrameAnalytics | None, image) -> None:
        if image is not None:
            self.frame_hw = image.shape[:2]
        if info is None:
            return
        if info.events:
            with self._lock:
                self.log.extend(info.events)
        self.counts, self.tracks_active = info.counts, info.tracks_active

    def close(self) -> None:
        pass

    def stats(self) -> dict:
        return {}

    # --- runs --------------------------------------------------------------------------------------------
    def config(self, names: dict[int, str]) -> AnalyticsConfig:
        return resolve_classes(parse_analytics({}).model_copy(update={"zones": self.zones, "lines": self.lines}), names)

    def open(self, names: dict[int, str]) -> Analytics | None:
        """The analytics stage for a new run (None while tracking is off); close it with `finish`."""
        if not self.enabled:
            return None
        self._names = names
        analytics = Analytics(self.config(names), hub=self)
        with self._lock:
            self._runs.append(analytics)
        return analytics

    def finish(self, analytics: Analytics | None) -> None:
        if analytics is None:
            return
        with self._lock:
            if analytics in self._runs:
                self._runs.remove(analytics)
        analytics.close()

    def _apply(self) -> None:
        with self._lock:
            runs = list(self._runs)
        cfg = self.config(self._names)
        for run in runs:
            run.set_geometry(cfg.zones, cfg.lines)

    # --- motion gates of the runs -------------------------------------------------------------------------
    def motion_config(self) -> MotionConfig:
        """The motion detector's settings for this tab: defaults, its masks, and whether to draw."""
        cfg = parse_analytics({"motion": {"mask": [p for _, p in self.masks], "show": self.show_motion}}, "motion")
        assert cfg.motion is not None
        return cfg.motion

    def attach(self, engine: StridedEngine, source_id: str, analytics: Analytics | None) -> None:
        """A run's engine and source: it gets a motion gate while gating or drawing is on; `detach` it after."""
        with self._lock:
            self._gated.append((engine, source_id, analytics))
        self._apply_motion()

    def detach(self, engine: StridedEngine) -> None:
        with self._lock:
            gone = [g for g in self._gated if g[0] is engine]
            self._gated = [g for g in self._gated if g[0] is not engine]
        for _, sid, _ in gone:
            engine.set_gate(sid, None)

    def _apply_motion(self) -> None:
        """Give every run the gate this tab's settings ask for (or none), at once."""
        with self._lock:
            gated = list(self._gated)
        cfg = self.motion_config()
        gating = self.motion and self.enabled  # the tracker carries the boxes on the frames it skips
        for engine, sid, analytics in gated:
            gate = engine.gate(sid)
            if not (gating or self.show_motion) or (gating and analytics is None):
                engine.set_gate(sid, None)
                continue
            if gate is None:
                tracks = functools.partial(analytics.track_needs, sid) if analytics is not None else None
                gate = MotionGate(cfg, tracks=tracks)
            else:
                gate.set_config(cfg)
            gate.show, gate.gating = self.show_motion, gating
            engine.set_gate(sid, gate)

    # --- edits from the page -----------------------------------------------------------------------------
    def set_enabled(self, on: bool) -> None:
        self.enabled = bool(on)
        with self._lock:
            runs = list(self._runs)
        for run in runs:
            run.set_enabled(self.enabled)
        self._apply_motion()

    def set_motion(self, on: bool) -> None:
        """Motion-gated detection on or off for this tab's runs (gating needs tracking on)."""
        self.motion = bool(on)
        self._apply_motion()

    def set_show_motion(self, on: bool) -> None:
        """Draw (or stop drawing) the motion regions, the masks and whether the detector ran."""
        self.show_motion = bool(on)
        self._apply_motion()

    def add_mask(self, name: str, points_text: str) -> str:
        """Add a motion mask from typed/clicked points (checked like a zone); ConfigError if invalid."""
        points = parse_points(points_text)
        name = (name or "").strip() or f"mask{len(self.masks)}"
        if name in {n for n, _ in self.masks}:
            raise ConfigError(f"mask name {name!r} is already used")
        try:
            cfg = parse_analytics({"motion": {"mask": [points]}}, "mask")
        except ConfigError as exc:  # one polygon: "mask.motion: mask polygon 0 crosses ..." -> "the polygon ..."
            msg = str(exc).split(": ", 1)[-1].replace("mask polygon 0 ", "the polygon ").replace("polygon 0", "")
            raise ConfigError(f"motion mask {name!r}: {msg.lstrip(':, ')}") from None
        assert cfg.motion is not None
        self.masks = (*self.masks, (name, cfg.motion.mask[0]))
        self._apply_motion()
        return f"Added motion mask **{name}** ({len(points)} points)."

    def clear_masks(self) -> None:
        self.masks = ()
        self._apply_motion()

    def masks_md(self) -> str:
        if not self.masks:
            return "No motion masks."
        return "\n".join(f"- mask **{n}**: {_fmt(p)}" for n, p in self.masks)

    def add(self, kind: str, name: str, points_text: str, classes_text: str = "") -> str:
        """Add a zone or line from typed/clicked points, counting the given classes (comma-separated names;
        empty: all); returns what was added (ConfigError if invalid)."""
        points = parse_points(points_text)
        names = {z.name for z in self.zones} | {ln.name for ln in self.lines}
        name = (name or "").strip() or f"{kind}{len(self.zones) if kind == 'zone' else len(self.lines)}"
        if name in names:
            raise ConfigError(f"{kind} name {name!r} is already used")
        region: dict = {"name": name, "points": points}
        classes = [c.strip() for c in (classes_text or "").split(",") if c.strip()]
        if classes:
            region["classes"] = classes
        cfg = parse_analytics({"zones" if kind == "zone" else "lines": [region]}, kind)
        if self._names:  # an unknown class name is refused now, not at the next run
            resolve_classes(cfg, self._names, kind)
        if kind == "zone":
            self.zones = (*self.zones, *cfg.zones)
        else:
            self.lines = (*self.lines, *cfg.lines)
        self._apply()
        return f"Added {kind} **{name}** ({len(points)} points)."

    def clear(self) -> None:
        self.zones, self.lines = (), ()
        self._apply()

    def geometry_md(self) -> str:
        if not self.zones and not self.lines:
            return "No zones or lines yet."
        rows = [f"- zone **{z.name}**{_cls(z.classes)}: {_fmt(z.points)}" for z in self.zones]
        rows += [f"- line **{ln.name}**{_cls(ln.classes)}: {_fmt(ln.points)}" for ln in self.lines]
        return "\n".join(rows)

    def counts_md(self) -> str:
        if not self.enabled:
            return "Tracking is off."
        head = f"**Tracks active: {self.tracks_active}**"
        if not self.counts:
            return head + "  \nDraw a zone or a line to count."
        lines = [head, "", "| where | inside now | entered | left | in | out |", "|---|---|---|---|---|---|"]
        for c in self.counts:
            if c.kind == "zone":
                lines.append(f"| zone {c.name} | {_per(c.occupancy)} | {_per(c.entries)} | {_per(c.exits)} | | |")
            else:
                lines.append(f"| line {c.name} | | | | {_per(c.crossed_in)} | {_per(c.crossed_out)} |")
        return "\n".join(lines)

    def log_rows(self) -> list[list]:
        with self._lock:
            events = list(self.log)[::-1]
        rows = []
        for e in events:
            where = e.zone or e.line or ""
            detail = e.direction or (f"{e.duration_s:.1f} s" if e.duration_s is not None else "") or (e.reason or "")
            stamp = time.strftime("%H:%M:%S", time.localtime(e.timestamp))
            rows.append([stamp, e.source, e.kind.value, e.track_id, e.label, where, detail])
        return rows


def parse_points(text: str) -> list[list[float]]:
    """ "x,y; x,y; ..." (normalised, 0..1) -> [[x, y], ...]; ConfigError on anything else."""
    points = []
    for part in (text or "").replace("\n", ";").split(";"):
        if not part.strip():
            continue
        try:
            x, y = (float(v) for v in part.split(","))
        except ValueError:
            raise ConfigError(f"points: {part.strip()!r} is not 'x,y' (normalised coordinates, 0..1)") from None
        points.append([x, y])
    if not points:
        raise ConfigError("points: click on the video or type 'x,y; x,y; ...' first")
    return points


def _cls(names) -> str:
    return f" ({', '.join(names)})" if names else ""


def _fmt(points) -> str:
    return "; ".join(f"{x:.3f},{y:.3f}" for x, y in points)


def _per(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "0"
