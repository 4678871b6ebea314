"""Base types of the analytics stages: what happened (Event) and what one frame's analytics show (FrameAnalytics).

Plain dataclasses with JSON-ready `to_dict()`. Like results.py this module imports nothing of the package:
the tracker, zones, analytics stage, annotator, event sinks and the UI all import it, never the reverse.
Coordinates of zones and lines are normalised (0..1 of the frame width/height) in the configuration and in
pixels here, for the frame they were drawn on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class EventKind(StrEnum):
    """The kinds of events, as they appear in JSON (`"kind": "line_crossed"`)."""

    APPEARED = "track_appeared"  # a track was confirmed (it got its ID); label: its class so far
    ENDED = "track_ended"  # the tracker dropped it (duration_s = first to last sighting); label: majority class
    ENTERED = "zone_entered"
    LEFT = "zone_left"  # duration_s = time spent inside
    DWELL = "zone_dwell"  # stayed inside longer than the zone's dwell_s (once per visit)
    CROSSED = "line_crossed"  # direction "in" or "out"


@dataclass
class Event:
    """One thing that happened to one track.

    timestamp: wall-clock seconds (time.time()) when the frame was processed; stream_time: the frame's
    timestamp in the stream (pts, or capture time for live sources without one), which durations use.
    box: xyxy pixels in the frame; snapshot: path of a JPEG of the frame, when snapshots are on for this kind;
    clip: path of the mp4 around it, when clips are on for this kind (written when its post-roll is over).
    """

    kind: EventKind
    timestamp: float
    source: str
    track_id: int
    class_id: int
    label: str
    score: float
    box: tuple[float, float, float, float]
    frame_index: int
    stream_time: float
    zone: str | None = None
    line: str | None = None
    direction: str | None = None
    duration_s: float | None = None
    reason: str | None = None  # why a track ended or left: "lost", "reset" (reconnect, stream jump), "closed"
    snapshot: str | None = None
    clip: str | None = None  # final path of the clip that holds it (outputs/clips.py; the file comes later)
    stationary: bool = False  # the track had stood still longer than the analytics' stationary_s
    speed_kmh: float | None = None  # the track's ground speed (analytics speed calibration), smoothed
    heading_deg: float | None = None  # its direction on the ground (analytics/speed.py)

    def to_dict(self) -> dict:
        out: dict = {
            "kind": self.kind.value,
            "timestamp": round(self.timestamp, 3),
            "source": self.source,
            "track_id": self.track_id,
            "class_id": self.class_id,
            "label": self.label,
            "score": round(float(self.score), 4),
            "box": [round(float(v), 1) for v in self.box],
            "frame_index": self.frame_index,
            "stream_time": round(self.stream_time, 3),
        }
        for key in ("zone", "line", "direction", "reason", "snapshot", "clip"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.duration_s is not None:
            out["duration_s"] = round(self.duration_s, 3)
        if self.stationary:
            out["stationary"] = True
        if self.speed_kmh is not None:
            out["speed_kmh"] = round(self.speed_kmh, 1)
        if self.heading_deg is not None:
            out["heading_deg"] = round(self.heading_deg, 1)
        return out


@dataclass
class RegionCounts:
    """Counts of one zone or line, per class label.

    Zones: occupancy (inside now), entries, exits. Lines: crossings in and out.
    """

    name: str
    kind: str  # "zone" | "line"
    occupancy: dict[str, int] = field(default_factory=dict)
    entries: dict[str, int] = field(default_factory=dict)
    exits: dict[str, int] = field(default_factory=dict)
    crossed_in: dict[str, int] = field(default_factory=dict)
    crossed_out: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        if self.kind == "zone":
            return {"occupancy": dict(self.occupancy), "entries": dict(self.entries), "exits": dict(self.exits)}
        return {"in": dict(self.crossed_in), "out": dict(self.crossed_out)}

    def summary(self) -> str:
        """One short line for drawing on the video: `table: 2 inside (3 in, 1 out)` / `gate: in 4, out 2`."""
        if self.kind == "zone":
            return (
                f"{self.name}: {sum(self.occupancy.values())} inside "
                f"({sum(self.entries.values())} in, {sum(self.exits.values())} out)"
            )
        return f"{self.name}: in {sum(self.crossed_in.values())}, out {sum(self.crossed_out.values())}"


@dataclass
class Scene:
    """What the annotator draws for analytics: zones and lines in pixels, trails of live tracks, counts."""

    zones: list[tuple[str, list[tuple[int, int]]]] = field(default_factory=list)
    lines: list[tuple[str, list[tuple[int, int]]]] = field(default_factory=list)  # 2 points or more (a polyline)
    trails: dict[int, Sequence[tuple[int, int]]] = field(default_factory=dict)  # anchor points, oldest first
    counts: list[RegionCounts] = field(default_factory=list)


@dataclass
class FrameAnalytics:
    """The analytics of one frame: the events it raised, the counts after it and what to draw."""

    events: list[Event] = field(default_factory=list)
    counts: list[RegionCounts] = field(default_factory=list)
    scene: Scene | None = None
    tracks_active: int = 0
    carried: bool = False  # boxes predicted by the tracker, the detector skipped this frame

    def counts_dict(self) -> dict:
        return {
            "zones": {c.name: c.to_dict() for c in self.counts if c.kind == "zone"},
            "lines": {c.name: c.to_dict() for c in self.counts if c.kind == "line"},
            "tracks_active": self.tracks_active,
        }
