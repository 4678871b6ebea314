"""Base types of the runtime: a decoded Frame, its Results and the FrameResult the pipeline hands out.

Small numpy-backed dataclasses, cheap to create, slice and serialise. This module imports nothing of the
package: every stage (sources, tasks, tracker, annotator, sinks, metrics) imports it, never the reverse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # a base type too (inference/core/events.py imports nothing); no import at run time
    from yolovino.inference.core.events import FrameAnalytics
    from yolovino.inference.core.motion import MotionSnapshot


def label_for(names: dict[int, str], class_id) -> str:
    """The class name of an id, or the id as text when the model has no name for it."""
    cid = int(class_id)
    return names.get(cid, str(cid))


class Frame:
    """One decoded frame. `image` is uint8 BGR HxWx3, owned by the consumer (no one else writes it).

    A video decoder's picture may come unconverted (`Frame.decoded`): `image` is then converted to BGR on
    first use, and `luma` is the picture's Y plane (a view of the decoder's buffer, HxW uint8), which the
    motion gate reads. So a frame of an idle camera that neither the detector nor a drawing or recording
    needs is never converted (bench/cameras_bench.py --idle-only measures what that saves)."""

    __slots__ = ("_image", "_convert", "index", "source_id", "pts", "captured_at", "luma", "luma_full", "_hw")

    def __init__(self, image: np.ndarray, index: int, source_id: str, pts: float | None, captured_at: float):
        """captured_at: time.monotonic() when the reader got it."""
        self._image: np.ndarray | None = image
        self._convert: Callable[[], np.ndarray] | None = None
        self._hw: tuple[int, int] = (int(image.shape[0]), int(image.shape[1]))
        self.index, self.source_id, self.pts, self.captured_at = index, source_id, pts, captured_at
        self.luma: np.ndarray | None = None
        self.luma_full = False  # the Y plane spans 0..255 (JPEG range), else 16..235 (video range)

    @classmethod
    def decoded(
        cls,
        convert: Callable[[], np.ndarray],
        size: tuple[int, int],
        index: int,
        source_id: str,
        pts: float | None,
        captured_at: float,
        *,
        luma: np.ndarray | None = None,
        luma_full: bool = False,
    ) -> Frame:
        """A frame whose BGR image `convert()` makes on first use; size: (height, width) of that image."""
        frame = cls.__new__(cls)
        frame._image, frame._convert, frame._hw = None, convert, (int(size[0]), int(size[1]))
        frame.index, frame.source_id, frame.pts, frame.captured_at = index, source_id, pts, captured_at
        frame.luma, frame.luma_full = luma, luma_full
        return frame

    @property
    def image(self) -> np.ndarray:
        """The BGR picture (converted now if it was not yet; the decoder's picture is let go then)."""
        image = self._image
        if image is None:
            # two threads may convert at once (the pipeline, a UI view): both get equal arrays. A thread that
            # finds the converter gone finds the image, which is set first
            convert = self._convert
            image = convert() if convert is not None else self._image
            assert image is not None
            self._image = image
            self._convert = None
        return image

    @image.setter
    def image(self, image: np.ndarray) -> None:
        self._image, self._convert = image, None
        self._hw = (int(image.shape[0]), int(image.shape[1]))

    @property
    def converted(self) -> bool:
        """Whether the BGR image exists (a decoded frame nobody asked for stays unconverted)."""
        return self._image is not None

    @property
    def shape(self) -> tuple[int, int, int]:
        """The BGR image's shape (height, width, 3), known without converting it."""
        return (self._hw[0], self._hw[1], 3)

    def __repr__(self) -> str:
        return f"Frame({self.source_id!r}, index={self.index}, {self._hw[1]}x{self._hw[0]}, pts={self.pts})"


@dataclass
class Results:
    """Detections for one frame, in the frame's own pixel coordinates.

    boxes: (N, 4) float32 xyxy; scores: (N,) float32; class_ids: (N,) int32;
    masks: (N, H, W) bool at frame size, or None; keypoints: (N, K, 3) float32 (x, y, conf), or None.
    track_ids: (N,) int64 set by the tracker (-1: not confirmed yet), or None when tracking is off.
    carried: the detector skipped this frame (detect every Nth frame) and the boxes are the tracker's.
    stationary: (N,) bool, the track has stood still longer than the analytics' stationary_s, or None (off).
    speed_kmh, heading_deg: (N,) float32 ground speed and heading of the track (NaN: not measured), or None
    (no speed calibration).
    motion: what the source's motion gate saw on this frame (regions, masks, detector ran), set only while
    its drawing is on (MotionGate.show), else None.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    names: dict[int, str]
    frame_shape: tuple[int, int]
    masks: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    timing: dict[str, float] = field(default_factory=dict)
    track_ids: np.ndarray | None = None
    carried: bool = False
    stationary: np.ndarray | None = None
    speed_kmh: np.ndarray | None = None
    heading_deg: np.ndarray | None = None
    motion: MotionSnapshot | None = None

    @classmethod
    def empty(cls, names: dict[int, str], frame_shape: tuple[int, int]) -> Results:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32), names, frame_shape)

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, index) -> Results:
        """Select detections by boolean mask, index array or slice (like supervision's Detections)."""
        if isinstance(index, (int, np.integer)):
            index = [index]
        return Results(
            self.boxes[index],
            self.scores[index],
            self.class_ids[index],
            self.names,
            self.frame_shape,
            None if self.masks is None else self.masks[index],
            None if self.keypoints is None else self.keypoints[index],
            dict(self.timing),
            None if self.track_ids is None else self.track_ids[index],
            self.carried,
            None if self.stationary is None else self.stationary[index],
            None if self.speed_kmh is None else self.speed_kmh[index],
            None if self.heading_deg is None else self.heading_deg[index],
            self.motion,
        )

    @property
    def labels(self) -> list[str]:
        return [label_for(self.names, c) for c in self.class_ids]

    def to_dict(self) -> dict:
        """JSON-ready: masks as their area and box only (full masks would bloat JSON lines)."""
        out = []
        for i in range(len(self)):
            det = {
                "class_id": int(self.class_ids[i]),
                "label": label_for(self.names, self.class_ids[i]),
                "score": round(float(self.scores[i]), 4),
                "box": [round(float(v), 1) for v in self.boxes[i]],
            }
            if self.track_ids is not None and self.track_ids[i] >= 0:
                det["track_id"] = int(self.track_ids[i])
            if self.stationary is not None and self.stationary[i]:
                det["stationary"] = True
            if self.speed_kmh is not None and self.heading_deg is not None and np.isfinite(self.speed_kmh[i]):
                det["speed_kmh"] = round(float(self.speed_kmh[i]), 1)
                det["heading_deg"] = round(float(self.heading_deg[i]), 1)
            if self.masks is not None:
                det["mask_area"] = int(self.masks[i].sum())
            if self.keypoints is not None:
                det["keypoints"] = [
                    [round(float(v), 1) if j < 2 else round(float(v), 3) for j, v in enumerate(kp)]
                    for kp in self.keypoints[i]
                ]
            out.append(det)
        record = {
            "frame_shape": list(self.frame_shape),
            "detections": out,
            "timing_ms": {k: round(v * 1000, 2) for k, v in self.timing.items()},
        }
        if self.carried:
            record["carried"] = True
        return record


@dataclass
class FrameResult:
    """What the pipeline yields per frame: the frame, its results, the drawing (if any) and live stats."""

    frame: Frame
    results: Results
    annotated: np.ndarray | None
    fps: float
    latency_ms: float
    analytics: FrameAnalytics | None = None  # events, counts and drawing of the analytics stage, when on

    @property
    def source_id(self) -> str:
        return self.frame.source_id

    @property
    def image(self) -> np.ndarray:
        """What to show or record: the annotated frame when there is one, else the raw frame."""
        return self.annotated if self.annotated is not None else self.frame.image
