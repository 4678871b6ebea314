"""Zones (polygons) of one source, in normalised coordinates, counting tracks per class; the fields every
region (zone or line, lines.py) shares.

Hand-written because supervision's PolygonZone/LineZone (the maintained alternative) work on one frame
size in pixels and keep no per-track dwell time; the geometry (geometry.py) is a few vectorised lines of NumPy.

* A **zone** counts a track as inside when its anchor (bottom centre of the box by default: the feet)
  has been inside for `min_frames` consecutive updates, and as gone after as many updates outside
  (or when its track ends). It keeps occupancy, entries and exits per class and each visit's dwell time,
  and raises a DWELL event once per visit when a track stays longer than `dwell_s`.
* A **line** (lines.py) counts tracks whose anchor's path cuts it.
Coordinates are normalised (0..1 of width and height) so a resolution change keeps them on the same place.
"""

from __future__ import annotations

from dataclasses import dataclass
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

from yolovino.inference.analytics.geometry import Point, PolygonEdges, self_intersects, to_pixels
from yolovino.inference.core.classes import ClassesInput, class_list
from yolovino.inference.core.events import EventKind, RegionCounts

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


class RegionSpec(BaseModel):
    """What a zone and a line share: a name, normalised points, the classes counted and the box anchor."""

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


class ZoneSpec(RegionSpec):
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
        self._poly: tuple[tuple[int, int], np.ndarray, PolygonEdges] | None = None
        self._visits: dict[int, _Visit] = {}
        self.counts = RegionCounts(spec.name, "zone")

    def polygon(self, frame_hw: tuple[int, int]) -> np.ndarray:
        return self._prepared(frame_hw)[1]

    def _prepared(self, frame_hw: tuple[int, int]) -> tuple[tuple[int, int], np.ndarray, PolygonEdges]:
        if self._poly is None or self._poly[0] != frame_hw:
            poly = to_pixels(self.spec.points, frame_hw)
            self._poly = (frame_hw, poly, PolygonEdges(poly))
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
                        bump(self.counts.entries, visit.label)
                        bump(self.counts.occupancy, visit.label)
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
        bump(self.counts.exits, visit.label)
        bump(self.counts.occupancy, visit.label, -1)
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


def bump(counter: dict[str, int], key: str, by: int = 1) -> None:
    """Add `by` to a per-class count; a count back at zero disappears (occupancy lists who is inside)."""
    counter[key] = counter.get(key, 0) + by
    if counter[key] == 0 and by < 0:
        del counter[key]
