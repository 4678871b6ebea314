"""Counting lines of one source, in normalised coordinates: crossings per class and direction.

A **line** is a segment A -> B or, for a bent path (a curved pavement, a door in a corner), a polyline
P0 -> P1 -> ... -> Pn (`points:` 2 or more). It counts a crossing when a track's anchor has moved to the
other side, farther than a small dead band from the line, stayed there for `min_frames` updates, and its
path since it was last settled on the old side cuts a drawn segment (so walking round an end of the line
does not count).

* **Direction**: "in" is towards the right-hand side of the line's walking direction (A -> B, P0 -> P1 ->
  ...) in image coordinates (y down): a line drawn left to right counts a downward crossing as "in". Along
  a polyline that side is the same continuous region at every segment (the side of the segment crossed),
  so a track crossing the first segment and one crossing the last in the same sense count the same way.
* **Once per crossing**: a track is on one side or the other of the whole polyline (geometry.Polyline: the
  side of its nearest point, the end segments extended as rays), never on one side per segment. A path
  through a vertex (it touches two segments) or cutting two segments in one frame step is one change of
  side, so one count at most: in and straight out again across a bend between two updates is no change of
  side (nothing counted), as a track back where it started should be. The dead band (around every
  segment and vertex) and `min_frames` keep a track wiggling on the line from counting twice.
* **Crossed before confirmed**: a track becomes an object only after a few detections (tracker.py:
  `confirm_hits`), and a fast car that appears near the line may cross it before then, more so when the
  detector runs on every Nth frame only. So a track the line sees for the first time is settled where it
  was first detected (`origin`), not where it is now: a crossing made while it was unconfirmed counts,
  late, once it is an object; a track first detected on the far side counts nothing.
* **Frame edge**: a track that leaves the view through the frame's border counts when its path out of
  the frame (`end`'s exit path) cuts the line from its settled side, so a line drawn at the edge counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import ConfigDict, field_validator

from yolovino.inference.analytics.geometry import Point, Polyline, polyline_problem, to_pixels
from yolovino.inference.analytics.zones import MAX_POINTS, Hit, RegionSpec, bump
from yolovino.inference.core.events import EventKind, RegionCounts


def _points_schema(schema: dict[str, Any]) -> None:
    """The JSON Schema says what `points` of a line may be (the validator below checks it)."""
    schema["properties"]["points"].update(
        minItems=2,
        maxItems=MAX_POINTS,
        description="normalised [x, y] (0..1): 2 for a segment A -> B, more for a polyline (a bent path, not "
        'crossing itself); "in" = crossing to the right-hand side of the walking direction (y down)',
    )


class LineSpec(RegionSpec):
    """A counting line of a source's `analytics:`: the segment points[0] (A) -> points[1] (B), or the
    polyline through 2 or more points in order (not crossing itself)."""

    model_config = ConfigDict(json_schema_extra=_points_schema)

    @field_validator("points")
    @classmethod
    def _polyline(cls, pts: tuple[Point, ...]) -> tuple[Point, ...]:
        if len(pts) < 2:
            raise ValueError(f"a line needs at least 2 points, got {len(pts)}")
        problem = polyline_problem(pts)
        if problem is not None:
            raise ValueError(problem)
        return pts

    @property
    def a(self) -> Point:
        """The first point (a polyline's start)."""
        return self.points[0]

    @property
    def b(self) -> Point:
        """The last point (a polyline's end)."""
        return self.points[-1]


@dataclass
class _Side:
    side: int  # settled side: +1 right of the line's walking direction, -1 left
    pos: tuple[float, float] | list[float]  # last anchor position on the settled side
    pending: int = 0
    label: str = ""


Origin = Callable[[int, str], "tuple[float, float] | None"]


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
        self._px: tuple[tuple[int, int], Polyline, float] | None = None

    def polyline(self, frame_hw: tuple[int, int]) -> Polyline:
        """The line in pixels of a frame of this size (prepared once per size)."""
        if self._px is None or self._px[0] != frame_hw:
            line = Polyline(to_pixels(self.spec.points, frame_hw))
            self._px = (frame_hw, line, float(np.hypot(*frame_hw)) * self.margin)
        return self._px[1]

    def update(
        self, ids, labels, class_ids, anchors: np.ndarray, t: float, frame_hw, origin: Origin | None = None
    ) -> list[Hit]:
        """Crossings of this update. `origin(track id, anchor kind)`: the anchor of the track's first
        detection (None: unknown), asked only for a track the line has not seen before."""
        hits: list[Hit] = []
        if not len(anchors):
            return hits
        line = self.polyline(frame_hw)
        assert self._px is not None
        band = self._px[2]
        dist = line.signed_distance(anchors)
        sides = np.where(dist > band, 1, np.where(dist < -band, -1, 0)).tolist()  # + = right, 0 = dead band
        allowed, states = self.spec.class_ids, self._sides
        pts = anchors.tolist()
        for k, tid in enumerate(ids):
            side = sides[k]
            if side == 0:
                continue  # inside the dead band: neither here nor there
            state = states.get(tid)
            if state is None:
                if allowed is not None and class_ids[k] not in allowed:
                    continue
                start = origin(tid, self.spec.anchor) if origin is not None else None
                first = self._side_of(line, start, band) if start is not None else 0
                if first in (0, side):
                    states[tid] = _Side(side, tuple(pts[k]), label=labels[k])
                    continue
                assert start is not None
                state = states[tid] = _Side(first, start, label=labels[k])  # came from the other side
            if side == state.side:  # the usual case: still on its settled side
                state.pos = pts[k]
                state.pending = 0
                continue
            state.pending += 1
            if state.pending < self.min_frames:
                continue
            crossed = line.cuts(state.pos, pts[k])
            state.side, state.pos, state.pending, state.label = side, pts[k], 0, labels[k]
            if crossed:
                bump(self.counts.crossed_in if side > 0 else self.counts.crossed_out, labels[k])
                hits.append(Hit(EventKind.CROSSED, tid, direction="in" if side > 0 else "out"))
        return hits

    @staticmethod
    def _side_of(line: Polyline, point: tuple[float, float], band: float) -> int:
        d = float(line.signed_distance(np.array([point], np.float64))[0])
        return 1 if d > band else -1 if d < -band else 0

    def end(self, tid: int, t: float, exit_path: tuple[Point, Point] | None = None) -> Hit | None:
        """The track ended. `exit_path` (its last anchor and a point beyond the frame along its motion) is
        given when it left the view through the frame's border: a line drawn at the edge is never crossed
        by the anchor of a box the border cuts, so the path out of the frame counts when it cuts the line
        from the track's settled side."""
        state = self._sides.pop(tid, None)
        if state is None or exit_path is None or self._px is None:
            return None
        line = self._px[1]
        beyond = exit_path[1]
        side = 1 if float(line.signed_distance(np.array([beyond], np.float64))[0]) > 0 else -1
        if side == state.side or not line.cuts(state.pos, beyond):
            return None
        bump(self.counts.crossed_in if side > 0 else self.counts.crossed_out, state.label)
        return Hit(EventKind.CROSSED, tid, direction="in" if side > 0 else "out")
