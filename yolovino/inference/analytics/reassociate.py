"""Give a lost track its ID back when a new track starts where its motion predicts it.

Why: the library's Kalman filter models the four box edges (ByteTrack, SORT) or centre, area and aspect
(OC-SORT). When an object walks behind a pole, the detector's box shrinks from its leading edge first: the
filter learns that edge stopping, its predicted box shrinks and turns inside out, and when the object comes
out on the far side the library gives it a new ID. A line then never sees one track on both sides. BoT-SORT's
centre + size filter fails the same way (measured on the rendered scene in tests/test_occlusion.py): the
centre's velocity is wrong by the time the object is hidden.

What: per track, a motion estimate taken only from *whole* observations (a box at least 90 % of the track's
reference size in both dimensions, which grows at once and shrinks slowly; an occluder only ever shrinks
the box): the size, and the centre's velocity over the last second of them. When
the library starts a new track, each track unseen for at most `reassociate_s` predicts a whole box at
constant velocity; the new box must lie inside that box grown by an uncertainty margin (a quarter of its
size on each axis plus a fifth of the distance travelled), match it in height or width (a pole hides width, a sign
height) (classes are not compared: they flicker). The nearest such candidate gives its ID. Cost: a few
float operations per track and detection; the matching runs only on frames where the library starts a track.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

WHOLE = 0.9  # a box at least this fraction of the track's size (in both dimensions) shows the whole object
SHRINK = 0.1  # weight of a smaller whole box in the reference size (an object walking away shrinks slowly)
_KEEP = 1 - SHRINK  # weight of the reference itself (the same double as `1 - SHRINK` computed in place)
BASELINE_S = 1.0  # the velocity is measured between whole observations up to this far apart
REBASE_S = 3.0  # a box smaller than the reference for this long is the object's new size (it sat down)
SIZE_RATIO = 1.6  # a new box must match the lost track's height or width within this factor
MARGIN_SIZE, MARGIN_PATH = 0.25, 0.2  # uncertainty: fractions of the object's size and of its travel
INSIDE = 0.8  # fraction of the new box that must lie inside the grown predicted box


@dataclass(slots=True)  # attribute access on every track every frame: slots are faster
class Motion:
    """Size and recent centres of a track's whole observations (pixels; times in stream seconds)."""

    w: float = 0.0  # reference size: plain floats, this runs for every track on every frame
    h: float = 0.0
    centres: deque[tuple[float, float, float]] = field(default_factory=lambda: deque(maxlen=64))  # (t, x, y)

    def observe(self, box: list[float], t: float) -> None:
        """One detection's xyxy box (a list: this runs for every track on every frame, NumPy costs more)."""
        x0, y0, x1, y1 = box
        w, h = x1 - x0, y1 - y0
        centres = self.centres
        if centres:
            sw, sh = self.w, self.h
            if w < WHOLE * sw or h < WHOLE * sh:
                if t - centres[-1][0] <= REBASE_S:
                    return  # part of the object is hidden (or cut by the frame edge): its centre moves wrongly
                centres.clear()  # smaller for a while now (sat down, stands behind a table): the new normal
            elif w * WHOLE > sw or h * WHOLE > sh:
                centres.clear()  # much larger: the earlier boxes were cut (entering the frame, behind something)
        if centres:
            # the size grows at once (an occluder never makes a box larger) and shrinks slowly, so a box cut
            # a little more every frame by an occluder does not drag the reference down with it
            # (max(w, v) written out: the same value, without a builtin call per track and frame)
            v = _KEEP * sw + SHRINK * w
            self.w = v if v > w else w
            v = _KEEP * sh + SHRINK * h
            self.h = v if v > h else h
        else:
            self.w, self.h = w, h
        centres.append((t, (x0 + x1) * 0.5, (y0 + y1) * 0.5))

    def velocity(self) -> np.ndarray:
        """Pixels per second of the centre between the newest whole observation and the oldest one within
        BASELINE_S of it (a long baseline: a slightly cut box or the detector's jitter moves it little)."""
        t1, x1, y1 = self.centres[-1]
        for t0, x0, y0 in self.centres:
            if t1 - t0 <= BASELINE_S:
                return np.array(((x1 - x0), (y1 - y0))) / (t1 - t0) if t1 > t0 else np.zeros(2)
        return np.zeros(2)

    def gate(self, box: np.ndarray, t: float, sized: bool = True) -> float | None:
        """Distance (in object sizes) from the predicted centre to `box`'s, or None when `box` cannot be
        this object at time t (not inside the predicted box grown by the margin, or, when `sized`, matching
        it neither in width nor in height: a sliver of an object going behind a pole may still be it)."""
        if not self.centres:
            return None
        t0, x0, y0 = self.centres[-1]
        dt, velocity, size = t - t0, self.velocity(), np.array((self.w, self.h))
        centre = np.array((x0, y0)) + velocity * dt
        margin = MARGIN_SIZE * size + MARGIN_PATH * float(np.hypot(*velocity)) * dt  # per axis
        lo, hi = centre - size * 0.5 - margin, centre + size * 0.5 + margin
        x0, y0, x1, y1 = (float(v) for v in box)
        area = max(x1 - x0, 1e-6) * max(y1 - y0, 1e-6)
        iw = max(0.0, min(x1, hi[0]) - max(x0, lo[0]))
        ih = max(0.0, min(y1, hi[1]) - max(y0, lo[1]))
        if iw * ih < INSIDE * area:
            return None
        w_ratio = (x1 - x0) / max(self.w, 1e-6)
        h_ratio = (y1 - y0) / max(self.h, 1e-6)
        if sized and not (1 / SIZE_RATIO <= w_ratio <= SIZE_RATIO or 1 / SIZE_RATIO <= h_ratio <= SIZE_RATIO):
            return None
        return float(np.hypot((x0 + x1) * 0.5 - centre[0], (y0 + y1) * 0.5 - centre[1]) / max(self.w, self.h, 1.0))


def match(new: list[tuple[int, np.ndarray]], lost: list[tuple[int, Motion]], t: float) -> dict[int, int]:
    """new: (key, box) of tracks the library just started; lost: (track id, motion) of tracks unseen now.
    Returns key -> track id, nearest first, each lost track used once. Classes are not compared: COCO's
    model reads a car seen from the side as "airplane" and a person's legs as "dog" for frames on end."""
    pairs = []
    for key, box in new:
        for tid, motion in lost:
            if (d := motion.gate(box, t)) is not None:
                pairs.append((d, key, tid))
    out: dict[int, int] = {}
    used: set[int] = set()
    for _, key, tid in sorted(pairs):
        if key not in out and tid not in used:
            out[key] = tid
            used.add(tid)
    return out
