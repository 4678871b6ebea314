"""The `motion:` setting of a source's `analytics:`: whether (and how) a motion detector gates the detector.

    analytics:
      motion: true                    # or false, or a block:
      motion:
        threshold: 30                 # grey-level change (1..255) of a pixel against the running background
        contour_area: 10              # a moving blob smaller than this (pixels of the small frame) is noise
        frame_height: 100             # the motion detector works on a grey copy this many pixels high
        alpha: 0.02                   # how fast the background learns the scene (0..1 per frame)
        lightning_threshold: 0.8      # more of the frame changed at once: a light change, relearn the scene
        keepalive_s: 5                # the detector runs at least this often, motion or not
        moving_interval_s: 0.2        # tracked objects that only move on: detect them this often (0: every frame)
        show: false                   # draw motion regions, masks, detector ran/skipped on annotated outputs
        mask:                         # polygons to ignore (timestamp overlays, trees), normalised like zones
          - [[0.0, 0.0], [0.35, 0.0], [0.35, 0.07], [0.0, 0.07]]

Unset, motion gating is on for live sources (RTSP, webcams) and off for files; `true` or a block turns it on,
`false` off. The detector itself is `model.motion` (it lives with the engine that it gates); this module is
only the schema, in `core` so that both `analytics` (which composes it into `AnalyticsConfig`) and `model`
(which runs it) can import it. The defaults follow Frigate's motion detector (frame height 100, threshold 30,
contour area 10, lightning threshold 0.8), whose users run it on every camera as the first check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict

Coordinate = Annotated[float, Strict()]
Polygon = tuple[tuple[Coordinate, Coordinate], ...]


def _polygons(polys: tuple[Polygon, ...]) -> tuple[Polygon, ...]:
    for k, poly in enumerate(polys):
        if len(poly) < 3:
            raise ValueError(f"polygon {k}: needs at least 3 points, got {len(poly)}")
        for i, (x, y) in enumerate(poly):
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise ValueError(
                    f"polygon {k}, point {i}: ({x:g}, {y:g}) is out of the frame: coordinates are normalised, 0..1 "
                    "of width and height (divide pixels by the frame size)"
                )
    return polys


class MotionConfig(BaseModel):
    """How the motion detector of one source decides that something moved (the module docstring shows the YAML)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    enabled: bool = Field(default=True, description="false: the detector runs on every frame (or every Nth)")
    threshold: Annotated[int, Strict()] = Field(
        default=30, ge=1, le=255, description="grey-level change of a pixel against the background that counts"
    )
    contour_area: Annotated[int, Strict()] = Field(
        default=10, ge=1, description="smallest moving blob, in pixels of the small grey frame"
    )
    frame_height: Annotated[int, Strict()] = Field(
        default=100, ge=32, le=1080, description="height of the grey copy the motion detector works on"
    )
    alpha: float = Field(default=0.02, gt=0.0, le=1.0, description="background learning rate per frame")
    lightning_threshold: float = Field(
        default=0.8, gt=0.0, le=1.0, description="share of the frame changed at once that means a light change"
    )
    keepalive_s: float = Field(default=5.0, gt=0.0, le=3600.0, description="the detector runs at least this often")
    moving_interval_s: float = Field(
        default=0.2,
        ge=0.0,
        le=2.0,
        description="while every track is confirmed and moving steadily, and nothing moves outside them, the "
        "detector runs this often (the tracker carries the boxes in between); 0: every frame while anything moves",
    )
    mask: Annotated[tuple[Polygon, ...], AfterValidator(_polygons)] = Field(
        default=(), description="polygons where motion is ignored, normalised x, y (0..1) like zones"
    )
    show: bool = Field(
        default=False,
        description="draw this source's motion regions, masks and whether the detector ran on its annotated "
        "outputs (recording, RTSP, MJPEG)",
    )


@dataclass(frozen=True)
class TrackNeeds:
    """What the live tracks of one source ask of its motion gate (analytics.stage.Analytics.track_needs):
    `interval_s`, the longest gap between two detections they allow (0: every frame, while a track is new);
    `moving`, whether some track moves or is missing (the gate then caps the gap at its `moving_interval_s`); and
    `boxes`, where the tracks are (normalised xyxy, widened by how far they may have gone since): motion
    inside them is theirs and does not by itself call for a detection, motion anywhere else does."""

    interval_s: float
    moving: bool = False
    boxes: tuple[tuple[float, float, float, float], ...] = ()


@dataclass(frozen=True)
class MotionSnapshot:
    """What the motion gate saw on one frame, for drawing (`Results.motion`, set only while it is shown):
    the motion regions (normalised xyxy boxes of the moving blobs), the masks in force (normalised polygons),
    the share of the small frame that changed, and whether the detector ran on this frame (False: the
    tracker carried the boxes)."""

    boxes: tuple[tuple[float, float, float, float], ...]
    mask: tuple[Polygon, ...]
    changed: float
    detected: bool


def motion_input(value: Any) -> Any:
    """`motion:` as written: true (defaults), false (off), a block; absent stays None (on for live sources)."""
    if value is True:
        return {}
    if value is False:
        return {"enabled": False}
    return value
