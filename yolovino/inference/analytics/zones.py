"""Zones (polygons) and lines (segments) of one source, in normalised coordinates, counting tracks per class.

Hand-written because supervision's PolygonZone/LineZone (the maintained alternative) work on one frame
size in pixels and keep no per-track dwell time, and its LineZone counts by the box's corners with a
frame-count threshold (`minimum_crossing_threshold`) rather than by an anchor's path across the drawn
segment; the geometry here is a few vectorised lines of NumPy.

* A **zone** counts a track as inside when its anchor (bottom centre of the box by default: the feet)
  has been inside for `min_frames` consecutive updates, and as gone after as many updates outside
  (or when its track ends). It keeps occupancy, entries and exits per class and each visit's dwell time,
  and raises a DWELL event once per visit when a track stays longer than `dwell_s`.
* A **line** A->B counts a crossing when a track's anchor has moved to the other side, farther than a
  small dead band from the line, stayed there for `min_frames` updates, and its path since it was last
  settled on the old side cuts the segment (so walking round the end of a line does not count).
  Direction "in" is towards the right-hand side of A->B in image coordinates (y down): a line drawn left
  to right counts a downward crossing as "in".
Coordinates are normalised (0..1 of width and height) so a resolution change keeps them on the same place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from yolovino.inference.core.classes import ClassesInput, class_list
from yolovino.inference.core.events import EventKind, RegionCounts

Point = tuple[float, float]


MAX_POINTS = 1000  # per zone: more is a mistake (a polygon traced per pixel), and costs every frame
Anchor = Literal["bottom_center", "center"]
Coordinate = Annotated[float, Strict()]


def _in_frame(points: tuple[Point, ...]) -> tuple[Point, ...]:
    if len(points) > MAX_POINTS:
        raise ValueError(f"at most {MAX_POINTS} points, got {len(points)}")
    for i, (x, y) in enumerate(points):
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(
                f"point {i}: ({x:g}, {y:g}) is out of the frame: coordinates are normalised, 0..1 of width and "
                "height (divide pixels by the frame size)"
            )
    return points


class _Region(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: Annotated[str, Strict(), StringConstraints(strip_whitespace=True, min_length=1)] = Field(
        default="", description="default: zone<i> / line<i>"
    )
    points: Annotated[tuple[tuple[Coordinate, Coordinate], ...], AfterValidator(_in_frame)]
    # names or ids as configured; `class_ids` holds them resolved against the model (None = every class)
    classes: Annotated[tuple[str, ...] | None, BeforeValidator(class_list, json_schema_input_type=ClassesInput)] = None
    class_ids: SkipJsonSchema[tuple[int, ...] | None] = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _not_from_yaml(cls, data: Any) -> Any:
        if isinstance(data, dict) and "class_ids" in data:  # set by resolve_classes (model_copy), never typed
            raise ValueError("unknown key 'class_ids' (use 'classes')")
        return data

    anchor: Anchor = "bottom_center"


class ZoneSpec(_Region):
    """A zone of a source's `analytics:`: a polygon in normalised coordinates (>= 3 points, not crossing itself)."""

    dwell_s: Annotated[float, Strict()] | None = Field(
        default=None, ge=0.0, description="a zone_dwell event, once per visit, when a track stays inside longer"
    )
    loitering_s: Annotated[float, Strict()] | None = Field(
        default=None,
        ge=0.0,
        description="another name for dwell_s (Frigate's loitering_time): the same zone_dwell event; "
        "whether the track also stood still is the event's `stationary` (analytics stationary_s)",
    )
    inertia: Annotated[int, Strict()] | None = Field(
        default=None,
        ge=1,
        le=100,
        description="updates a box must be inside (outside) before it enters (leaves); default: analytics min_frames",
    )

    @model_validator(mode="before")
    @classmethod
    def _loitering_is_dwell(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("loitering_s") is not None:
            dwell = data.get("dwell_s")
            if dwell is not None and dwell != data["loitering_s"]:
                raise ValueError(f"loitering_s ({data['loitering_s']}) and dwell_s ({dwell}) are one setting: give one")
            data = {**data, "dwell_s": data["loitering_s"]}
        return data

    @field_validator("points")
    @classmethod
    def _polygon(cls, pts: tuple[Point, ...]) -> tuple[Point, ...]:
        if len(pts) < 3:
            raise ValueError(f"a zone needs at least 3 points, got {len(pts)}")
        if self_intersects(pts):
            raise ValueError("the polygon crosses itself: list the points in order around the zone")
        area = 0.5 * abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1])))
        if area <= 1e-6:
            raise ValueError("the polygon has no area (points on one line or repeated)")
        return pts


class LineSpec(_Region):
    """A counting line of a source's `analytics:`: the segment from points[0] (A) to points[1] (B)."""

    @field_validator("points")
    @classmethod
    def _segment(cls, pts: tuple[Point, ...]) -> tuple[Point, ...]:
        if len(pts) != 2:
            raise ValueError(f"a line needs exactly 2 points, got {len(pts)}")
        if math.dist(pts[0], pts[1]) < 1e-3:
            raise ValueError("the two points are the same")
        return pts

    @property
    def a(self) -> Point:
        return self.points[0]

    @property
    def b(self) -> Point:
        return self.points[1]


def to_pixels(points, frame_hw: tuple[int, int]) -> np.ndarray:
    h, w = frame_hw
    return np.asarray(points, np.float64) * np.array([w, h], np.float64)


class _Edges:
    """A polygon's edges, prepared once per frame size for vectorised point-in-polygon tests."""

    def __init__(self, polygon: np.ndarray):
        self.x1, self.y1 = polygon[:, 0], polygon[:, 1]
        x2, self.y2 = np.roll(self.x1, -1), np.roll(self.y1, -1)
        dy = self.y2 - self.y1
        self.slope = np.divide(x2 - self.x1, dy, out=np.zeros_like(dy), where=dy != 0)

    def inside(self, points: np.ndarray) -> np.ndarray:
        """(N,) bool: which of the (N, 2) points lie inside the polygon (even-odd ray casting)."""
        if not len(points):
            return np.zeros(0, bool)
        x, y = points[:, 0:1], points[:, 1:2]
        straddles = (self.y1 > y) != (self.y2 > y)
        x_cross = self.x1 + (y - self.y1) * self.slope
        return ((straddles & (x < x_cross)).sum(axis=1) % 2).astype(bool)


def _orient(a, b, c) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def segments_intersect(p1, p2, q1, q2) -> bool:
    """True when segment p1-p2 and segment q1-q2 share a point (touching counts)."""
    d1, d2 = _orient(q1, q2, p1), _orient(q1, q2, p2)
    d3, d4 = _orient(p1, p2, q1), _orient(p1, p2, q2)
    if ((d1 > 0) != (d2 > 0) or d1 == 0 or d2 == 0) and ((d3 > 0) != (d4 > 0) or d3 == 0 or d4 == 0):
        if 0 in (d1, d2, d3, d4):  # collinear cases: check the bounding boxes overlap
            return (
                min(p1[0], p2[0]) <= max(q1[0], q2[0])
                and min(q1[0], q2[0]) <= max(p1[0], p2[0])
                and min(p1[1], p2[1]) <= max(q1[1], q2[1])
                and min(q1[1], q2[1]) <= max(p1[1], p2[1])
            )
        return True
    return False


def self_intersects(points, chunk: int = 1 << 20) -> bool:
    """True when two non-adjacent edges of the closed polygon share a point (as `segments_intersect` says).

    A sweep over x instead of every pair (a 10,000-point zone took minutes at start-up): edges sorted by
    their left end; an edge can only meet the edges whose left end lies within its own x extent, a
    contiguous run of that order (found by binary search). Those candidate pairs, taken `chunk` at a time,
    are pruned by their y extents and get the exact test, vectorised: O(n log n) plus the pairs whose
    boxes overlap (few in a real zone outline). The exact test is the arithmetic of `segments_intersect`,
    so the answers are the same."""
    pts = np.asarray([tuple(p) for p in points], dtype=np.float64).reshape(-1, 2)
    n = len(pts)
    if n < 4:
        return False  # every pair of a triangle's edges is adjacent
    a, b = pts, np.roll(pts, -1, axis=0)  # edge i runs a[i] -> b[i]
    xlo, xhi = np.minimum(a[:, 0], b[:, 0]), np.maximum(a[:, 0], b[:, 0])
    ylo, yhi = np.minimum(a[:, 1], b[:, 1]), np.maximum(a[:, 1], b[:, 1])
    order = np.argsort(xlo, kind="stable")
    first = np.arange(1, n + 1)  # sorted position of each edge's first candidate
    counts = np.maximum(np.searchsorted(xlo[order], xhi[order], side="right") - first, 0)
    total = np.cumsum(counts)
    pos = 0
    while pos < n:
        stop = max(int(np.searchsorted(total, (total[pos - 1] if pos else 0) + chunk, side="right")), pos + 1)
        c = counts[pos:stop]
        k = int(c.sum())
        pos, start = stop, pos
        if not k:
            continue
        owner = np.repeat(np.arange(start, stop), c)  # sorted position of the pair's first edge
        offset = np.arange(k) - np.repeat(np.cumsum(c) - c, c)
        i, j = order[owner], order[first[owner] + offset]
        keep = (ylo[j] <= yhi[i]) & (ylo[i] <= yhi[j])
        gap = np.abs(i - j)
        keep &= (gap != 1) & (gap != n - 1)  # adjacent edges share a vertex
        i, j = i[keep], j[keep]
        if len(i) and _crossing(a[i], b[i], a[j], b[j]).any():
            return True
    return False


def _crossing(p1: np.ndarray, p2: np.ndarray, q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """`segments_intersect(p1[k], p2[k], q1[k], q2[k])` for every k, with the same float arithmetic."""

    def orient(a, b, c):
        return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])

    d1, d2 = orient(q1, q2, p1), orient(q1, q2, p2)
    d3, d4 = orient(p1, p2, q1), orient(p1, p2, q2)
    straddle = (((d1 > 0) != (d2 > 0)) | (d1 == 0) | (d2 == 0)) & (((d3 > 0) != (d4 > 0)) | (d3 == 0) | (d4 == 0))
    collinear = (d1 == 0) | (d2 == 0) | (d3 == 0) | (d4 == 0)
    lo_p, hi_p, lo_q, hi_q = np.minimum(p1, p2), np.maximum(p1, p2), np.minimum(q1, q2), np.maximum(q1, q2)
    boxes = ((lo_p <= hi_q) & (lo_q <= hi_p)).all(axis=1)
    return straddle & (~collinear | boxes)


@dataclass
class Hit:
    """One counted change: (kind, track id, extra) for the analytics stage to turn into an Event."""

    kind: EventKind
    track_id: int
    direction: str | None = None
    duration_s: float | None = None


@dataclass
class _Visit:
    inside: bool = False
    since: float = 0.0
    streak: int = 0  # consecutive updates disagreeing with `inside`
    first_t: float = 0.0  # stream time of the first of those updates (when the change really happened)
    alerted: bool = False
    label: str = ""


class ZoneCounter:
    def __init__(self, spec: ZoneSpec, min_frames: int = 2):
        # the zone's own inertia (Frigate's): a zone at a busy door wants more than a zone on an empty floor
        self.spec, self.min_frames = spec, max(1, spec.inertia or min_frames)
        self._poly: tuple[tuple[int, int], np.ndarray, _Edges] | None = None
        self._visits: dict[int, _Visit] = {}
        self.counts = RegionCounts(spec.name, "zone")

    def polygon(self, frame_hw: tuple[int, int]) -> np.ndarray:
        return self._prepared(frame_hw)[1]

    def _prepared(self, frame_hw: tuple[int, int]) -> tuple[tuple[int, int], np.ndarray, _Edges]:
        if self._poly is None or self._poly[0] != frame_hw:
            poly = to_pixels(self.spec.points, frame_hw)
            self._poly = (frame_hw, poly, _Edges(poly))
        return self._poly

    def update(self, ids, labels, class_ids, anchors: np.ndarray, t: float, frame_hw) -> list[Hit]:
        hits: list[Hit] = []
        inside = self._prepared(frame_hw)[2].inside(anchors).tolist()
        allowed, visits = self.spec.class_ids, self._visits
        for k, tid in enumerate(ids):
            visit = visits.get(tid)
            if visit is None:  # most tracks, most of the time: outside and never in
                if not inside[k] or (allowed is not None and class_ids[k] not in allowed):
                    continue
                visit = visits[tid] = _Visit(label=labels[k])
            if inside[k] == visit.inside:
                visit.streak = 0
            else:
                visit.streak += 1
                if visit.streak == 1:
                    visit.first_t = t
                if visit.streak >= self.min_frames:
                    visit.streak = 0
                    if not visit.inside:
                        visit.inside, visit.since, visit.alerted, visit.label = True, visit.first_t, False, labels[k]
                        _inc(self.counts.entries, visit.label)
                        _inc(self.counts.occupancy, visit.label)
                        hits.append(Hit(EventKind.ENTERED, tid))
                    else:
                        hits.append(self._leave(tid, visit, visit.first_t))
            if (
                visit.inside
                and self.spec.dwell_s is not None
                and not visit.alerted
                and t - visit.since > self.spec.dwell_s
            ):
                visit.alerted = True
                hits.append(Hit(EventKind.DWELL, tid, duration_s=t - visit.since))
        return hits

    def _leave(self, tid: int, visit: _Visit, t: float) -> Hit:
        visit.inside = False
        _inc(self.counts.exits, visit.label)
        _inc(self.counts.occupancy, visit.label, -1)
        del self._visits[tid]
        return Hit(EventKind.LEFT, tid, duration_s=t - visit.since)

    def end(self, tid: int, t: float) -> Hit | None:
        """The track ended: it leaves the zone if it was inside."""
        visit = self._visits.get(tid)
        if visit is None:
            return None
        if not visit.inside:
            del self._visits[tid]
            return None
        return self._leave(tid, visit, t)


@dataclass
class _Side:
    side: int  # settled side: +1 right of A->B, -1 left
    pos: tuple[float, float] | list[float]  # last anchor position on the settled side
    pending: int = 0
    label: str = ""


@dataclass
class LineCounter:
    spec: LineSpec
    min_frames: int = 2
    margin: float = 0.01  # dead band around the line, as a fraction of the frame diagonal
    counts: RegionCounts = field(init=False)

    def __post_init__(self) -> None:
        self.min_frames = max(1, self.min_frames)
        self.counts = RegionCounts(self.spec.name, "line")
        self._sides: dict[int, _Side] = {}
        self._px: tuple[tuple[int, int], np.ndarray, np.ndarray, float] | None = None

    def endpoints(self, frame_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        if self._px is None or self._px[0] != frame_hw:
            a, b = to_pixels([self.spec.a, self.spec.b], frame_hw)
            self._px = (frame_hw, a, b, float(np.hypot(*frame_hw)) * self.margin)
        return self._px[1], self._px[2]

    def update(self, ids, labels, class_ids, anchors: np.ndarray, t: float, frame_hw) -> list[Hit]:
        hits: list[Hit] = []
        if not len(anchors):
            return hits
        a, b = self.endpoints(frame_hw)
        assert self._px is not None
        band = self._px[3]
        d = b - a
        dist = (d[0] * (anchors[:, 1] - a[1]) - d[1] * (anchors[:, 0] - a[0])) / (float(np.hypot(*d)) or 1.0)
        sides = np.where(dist > band, 1, np.where(dist < -band, -1, 0)).tolist()  # + = right of A->B, 0 = dead band
        allowed, states = self.spec.class_ids, self._sides
        pts = anchors.tolist()
        for k, tid in enumerate(ids):
            side = sides[k]
            if side == 0:
                continue  # inside the dead band: neither here nor there
            state = states.get(tid)
            if state is None:
                if allowed is None or class_ids[k] in allowed:
                    states[tid] = _Side(side, tuple(pts[k]), label=labels[k])
                continue
            if side == state.side:  # the usual case: still on its settled side
                state.pos = pts[k]
                state.pending = 0
                continue
            state.pending += 1
            if state.pending < self.min_frames:
                continue
            crossed = segments_intersect(state.pos, pts[k], tuple(a), tuple(b))
            state.side, state.pos, state.pending, state.label = side, pts[k], 0, labels[k]
            if crossed:
                _inc(self.counts.crossed_in if side > 0 else self.counts.crossed_out, labels[k])
                hits.append(Hit(EventKind.CROSSED, tid, direction="in" if side > 0 else "out"))
        return hits

    def end(self, tid: int, t: float, exit_path: tuple[Point, Point] | None = None) -> Hit | None:
        """The track ended. `exit_path` (its last anchor and a point beyond the frame along its motion) is
        given when it left the view through the frame's border: a line drawn at the edge is never crossed
        by the anchor of a box the border cuts, so the path out of the frame counts when it cuts the segment
        from the track's settled side."""
        state = self._sides.pop(tid, None)
        if state is None or exit_path is None or self._px is None:
            return None
        a, b = self._px[1], self._px[2]
        d = b - a
        beyond = exit_path[1]
        side = 1 if d[0] * (beyond[1] - a[1]) - d[1] * (beyond[0] - a[0]) > 0 else -1
        if side == state.side or not segments_intersect(state.pos, beyond, tuple(a), tuple(b)):
            return None
        _inc(self.counts.crossed_in if side > 0 else self.counts.crossed_out, state.label)
        return Hit(EventKind.CROSSED, tid, direction="in" if side > 0 else "out")


def _inc(counter: dict[str, int], key: str, by: int = 1) -> None:
    counter[key] = counter.get(key, 0) + by
    if counter[key] == 0 and by < 0:
        del counter[key]
