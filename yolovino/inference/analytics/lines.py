"""Counting lines of one source, in normalised coordinates: crossings per class and direction.

* A **line** A->B counts a crossing when a track's anchor has moved to the other side, farther than a
  small dead band from the line, stayed there for `min_frames` updates, and its path since it was last
  settled on the old side cuts the segment (so walking round the end of a line does not count).
  Direction "in" is towards the right-hand side of A->B in image coordinates (y down): a line drawn left
  to right counts a downward crossing as "in".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from pydantic import field_validator

from yolovino.inference.analytics.geometry import Point, segments_intersect, to_pixels
from yolovino.inference.analytics.zones import Hit, RegionSpec, bump
from yolovino.inference.core.events import EventKind, RegionCounts


class LineSpec(RegionSpec):
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
                bump(self.counts.crossed_in if side > 0 else self.counts.crossed_out, labels[k])
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
        bump(self.counts.crossed_in if side > 0 else self.counts.crossed_out, state.label)
        return Hit(EventKind.CROSSED, tid, direction="in" if side > 0 else "out")
