"""Ground speed and heading of tracks from a ground calibration: the `speed:` key of a source's `analytics:`.

    analytics:
      speed:
        points: [[0.30, 0.55], [0.70, 0.55], [0.95, 0.95], [0.05, 0.95]]   # a ground rectangle's corners
        size_m: [10, 20]                    # its width (points 0 -> 1) and length (points 1 -> 2), metres
        # or ground_m: [[0, 0], [10, 0], [10, 20], [0, 20]]   the four points' ground coordinates, metres

As Ultralytics' SpeedEstimator and Frigate's speed zones do: four image points (normalised 0..1, in order
around a rectangle on the ground) and where they are on the ground give the homography image -> ground; a
track's anchor (the analytics' anchor: the feet, the bottom of a car) is mapped through it on every detected
frame, and its speed is the distance on the ground over the last `window_s` of stream time (smoothing the
box's jitter), its heading the direction of that displacement in degrees, clockwise from the ground y axis
(points 0 -> 3: along the length) in the ground's x -> y orientation (90: along points 0 -> 1). Points off the
ground plane (a person's head) would not measure; a mapping outside the rectangle extrapolates the plane.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

Coordinate = Annotated[float, Field(ge=0.0, le=1.0)]
Metres = Annotated[float, Field(ge=-1e5, le=1e5)]


class SpeedConfig(BaseModel):
    """Ground calibration for speeds (see analytics/speed.py): four image points and their ground position."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    points: tuple[
        tuple[Coordinate, Coordinate],
        tuple[Coordinate, Coordinate],
        tuple[Coordinate, Coordinate],
        tuple[Coordinate, Coordinate],
    ] = Field(description="four image points (normalised x, y), in order around a rectangle on the ground")
    size_m: tuple[Annotated[float, Field(gt=0.0, le=1e5)], Annotated[float, Field(gt=0.0, le=1e5)]] | None = Field(
        default=None, description="the rectangle's width (points 0 -> 1) and length (points 1 -> 2) in metres"
    )
    ground_m: (
        tuple[tuple[Metres, Metres], tuple[Metres, Metres], tuple[Metres, Metres], tuple[Metres, Metres]] | None
    ) = Field(default=None, description="instead of size_m: the four points' ground coordinates in metres")
    window_s: Annotated[float, Strict()] = Field(
        default=1.0, ge=0.1, le=10.0, description="stream time a speed is measured over (smooths box jitter)"
    )

    @model_validator(mode="after")
    def _one_ground(self) -> SpeedConfig:
        if (self.size_m is None) == (self.ground_m is None):
            raise ValueError("give the ground as size_m [width, length] or ground_m (four points), one of them")
        try:
            homography(np.asarray(self.points, np.float64), np.asarray(self.ground(), np.float64))
        except np.linalg.LinAlgError:
            raise ValueError("the four points do not define a plane (three of them on one line?)") from None
        return self

    def ground(self) -> list[tuple[float, float]]:
        if self.ground_m is not None:
            return [tuple(p) for p in self.ground_m]  # type: ignore[misc]
        assert self.size_m is not None
        w, length = self.size_m
        return [(0.0, 0.0), (w, 0.0), (w, length), (0.0, length)]


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3 x 3 projective map of four points src -> dst (what cv2.getPerspectiveTransform solves)."""
    a = np.zeros((8, 8))
    b = np.zeros(8)
    for i, ((x, y), (u, v)) in enumerate(zip(src, dst)):
        a[2 * i] = [x, y, 1, 0, 0, 0, -u * x, -u * y]
        a[2 * i + 1] = [0, 0, 0, x, y, 1, -v * x, -v * y]
        b[2 * i], b[2 * i + 1] = u, v
    h = np.linalg.solve(a, b)
    if not np.all(np.isfinite(h)) or abs(np.linalg.det(np.append(h, 1.0).reshape(3, 3))) < 1e-12:
        raise np.linalg.LinAlgError("degenerate")
    return np.append(h, 1.0).reshape(3, 3)


class SpeedMeter:
    """Per source: the image -> ground map for the frame size, and each track's recent ground positions."""

    def __init__(self, cfg: SpeedConfig):
        self.cfg = cfg
        self._hw: tuple[int, int] | None = None
        self._h = np.eye(3)

    def _map(self, frame_hw: tuple[int, int]) -> np.ndarray:
        if frame_hw != self._hw:
            h, w = frame_hw
            src = np.asarray(self.cfg.points, np.float64) * [w, h]
            self._h, self._hw = homography(src, np.asarray(self.cfg.ground(), np.float64)), frame_hw
        return self._h

    def update(self, tracks: list[Any], anchors: np.ndarray, t: float, frame_hw: tuple[int, int]) -> None:
        """Tracks seen on this frame and their (N, 2) anchor pixels: their speed_kmh and heading_deg, once their
        positions span half of window_s (None before)."""
        if not tracks:
            return
        pts = np.c_[anchors, np.ones(len(anchors))] @ self._map(frame_hw).T
        ground = (pts[:, :2] / pts[:, 2:3]).tolist()
        window = self.cfg.window_s
        for tr, (gx, gy) in zip(tracks, ground):
            hist: deque = tr.ground
            hist.append((t, gx, gy))
            while len(hist) > 2 and t - hist[1][0] >= window:
                hist.popleft()
            t0, x0, y0 = hist[0]
            if t - t0 < 0.5 * window:
                continue
            dx, dy = gx - x0, gy - y0
            tr.speed_kmh = math.hypot(dx, dy) / (t - t0) * 3.6
            tr.heading_deg = math.degrees(math.atan2(dx, dy)) % 360.0
