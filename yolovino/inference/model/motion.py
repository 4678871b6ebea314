"""Motion-gated detection: a cheap motion detector per source decides whether the detector runs on a frame.

    gate = MotionGate(MotionConfig(), tracks=functools.partial(analytics.track_needs, "door"))
    engine = StridedEngine(AsyncEngine(model), {})
    engine.set_gate("door", gate)            # frames without motion come back `carried`, like detect_every

An edge box pays a full detector pass per camera and frame; most cameras show an empty scene most of the
time. Like Frigate's motion detector (its "first line check"), `MotionDetector` works on a small grey copy of
each decoded frame (`frame_height` pixels high; ~0.3 ms of CPU for a 768x432 frame), made from the decoder's Y
plane when the frame has one (core Frame.luma: no BGR conversion for frames the detector skips): blurred,
compared with a running-average background, the difference thresholded, dilated, and its outer contours larger
than `contour_area` are the motion regions. Sensor noise stays under the threshold once averaged down by the
resize and the blur; a change of most of the frame at once (lights, iris, a camera moved) relearns the
background and counts as motion. Masked polygons (normalised, like zones) are painted over before the
comparison, so nothing there ever moves.

`MotionGate` turns that into a decision: the detector runs on a frame when something moves where no tracked
object is moving, as often as the tracker's tracks need (`tracks`, analytics.stage.Analytics.track_needs, a
core.motion.TrackNeeds), and at least every `keepalive_s` (something that came in unseen is found). The
tracks need every frame while one is new (it is confirmed as with every-frame detection); every
`moving_interval_s` while they are confirmed and move steadily (and sooner when one moves fast: a track may move
only part of its size between detections) or one is missing (motion anywhere finds it again at once); every
lost_track_s / 2 while they all stand still, so a parked car keeps its ID without a detector pass per frame.
Motion inside the (widened) boxes of the tracks is theirs: a person walking through a busy scene is detected
every `moving_interval_s`, not on every frame her motion shows, a car that has just parked every
lost_track_s / 2 while the background learns it, and motion anywhere else (somebody coming in) runs the
detector at once. On the other frames the tracker carries the boxes
(tracker.Tracker.carry), as `detect_every` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import cv2
import numpy as np

from yolovino.inference.core.motion import MotionConfig, MotionSnapshot, TrackNeeds
from yolovino.inference.core.results import Frame

Box = tuple[float, float, float, float]  # normalised x0, y0, x1, y1
_KERNEL = np.ones((3, 3), np.uint8)  # dilation joins the pieces of one moving object into one blob
_BINOMIAL = np.array([1.0, 2.0, 1.0], np.float32)
CALIBRATION_FRAMES = 20  # the most frames one calibration lasts (2 s at 10 fps, about a keyframe interval)
_VIDEO_RANGE = np.clip(np.round((np.arange(256) - 16) * 255.0 / 219.0), 0, 255).astype(np.uint8)


def blur3(grey: np.ndarray) -> np.ndarray:
    """cv2.GaussianBlur(grey, (3, 3), 0), bit for bit: the [1 2 1] x [1 2 1] sums (exact in 16 bits, borders
    reflected like OpenCV's default), then + 8 >> 4 as its fixed-point path rounds. GaussianBlur itself runs
    even this 100-row blur on OpenCV's thread pool, whose worker then spins ~0.5 ms of CPU per frame waiting
    for more work (an idle camera's largest motion cost); sepFilter2D stays on the calling thread."""
    sums = np.asarray(
        cv2.sepFilter2D(grey, cv2.CV_16U, _BINOMIAL, _BINOMIAL, borderType=cv2.BORDER_REFLECT_101), np.uint16
    )
    sums += 8
    sums >>= 4
    return sums.astype(np.uint8)


class MotionDetector:
    """Motion regions of one source's frames (the module docstring says how); keeps a running background."""

    def __init__(self, cfg: MotionConfig):
        self.cfg = cfg
        self._avg: np.ndarray | None = None  # float32 running background of the small grey frame
        self._size: tuple[int, int] | None = None  # (w, h) of the small frame
        self._shape: tuple[int, int] | None = None  # (h, w) of the frames it was made for
        self._mask: np.ndarray | None = None  # bool, True where motion is ignored
        self._calibrating = True
        self._calibrated = 0  # frames calibrated on so far (calibration ends after CALIBRATION_FRAMES)
        self._pending: MotionConfig | None = None  # a new config (UI edit), taken on at the next frame
        self.boxes: list[Box] = []  # the last frame's motion regions (normalised)
        self._moving: np.ndarray | None = None  # the last frame's moving pixels (small frame, 0/255)
        self.changed = 0.0  # share of the small frame that changed on the last frame

    def _setup(self, shape: tuple[int, int]) -> None:
        h, w = shape
        sh = min(self.cfg.frame_height, h)
        self._size = (max(8, round(w * sh / h)), sh)
        self._shape = shape
        self._avg = None
        self._mask = None
        if self.cfg.mask:
            sw, sh = self._size
            canvas = np.zeros((sh, sw), np.uint8)
            polys = [np.round(np.array(p, np.float64) * (sw - 1, sh - 1)).astype(np.int32) for p in self.cfg.mask]
            cv2.fillPoly(canvas, polys, 255)
            self._mask = canvas.astype(bool)

    def grey(self, image: np.ndarray | Frame) -> np.ndarray:
        """The small, blurred grey copy of a frame the comparison runs on: of its decoder's Y plane when it
        has one (no BGR conversion), else of its BGR (or grey) image."""
        luma, full = None, True
        if isinstance(image, Frame):
            luma, full = image.luma, image.luma_full
            image = image.image if luma is None else luma
        elif image.ndim == 2:
            luma = image  # a grey array is taken as full-range grey
        if self._shape != image.shape[:2]:
            self._setup(image.shape[:2])
        assert self._size is not None
        # halving with INTER_AREA averages each 2x2 block (sensor noise goes down, OpenCV's fast path), then
        # one small resize to the exact size: ~0.1 ms for 768x432, where one INTER_AREA step costs ~6 ms
        small = image
        while small.shape[0] // 2 >= self._size[1]:
            h2, w2 = small.shape[0] // 2, small.shape[1] // 2
            small = cv2.resize(small[: h2 * 2, : w2 * 2], (w2, h2), interpolation=cv2.INTER_AREA)
        if small.shape[1::-1] != self._size:
            small = cv2.resize(small, self._size, interpolation=cv2.INTER_AREA)
        if small.ndim == 3:
            small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        elif not full:
            # video-range Y (16..235) stretched to 0..255: the grey levels a BGR conversion gives, so that the
            # thresholds mean the same on both paths
            small = cv2.LUT(small, _VIDEO_RANGE)
        elif small is luma:
            small = small.copy()  # never paint the mask into the decoder's picture
        if self._mask is not None:
            small[self._mask] = 0
        return blur3(small)

    def set_config(self, cfg: MotionConfig) -> None:
        """Use `cfg` (new masks or thresholds) from the next frame on; any thread. The detector recalibrates
        on that frame, since the masked area changed what the background holds."""
        self._pending = cfg

    def update(self, image: np.ndarray | Frame) -> bool:
        """Feed one frame (a Frame: its Y plane when it has one, see `grey`); True when something moved
        (then `boxes` holds where).

        Calibrating (the first frame of a size, and after a light change): the background snaps to each
        frame, and every frame counts as motion until two frames in a row agree, or for CALIBRATION_FRAMES
        at most: a stream joined between keyframes decodes grey garbage for a while, and a running average
        would take 1/alpha frames to forget it (Frigate calibrates the same way); but in a busy scene (a
        camera joined while people walk, a street) two frames may not agree for minutes, and the gate
        would run the detector on every one of them."""
        if self._pending is not None:  # swapped in here, on the pipeline's thread, never mid-frame
            self.cfg, self._pending = self._pending, None
            self._shape = None
        g = self.grey(image)
        full = [(0.0, 0.0, 1.0, 1.0)]
        if self._avg is None:
            self._avg, self._calibrating = g.astype(np.float32), True
            self.boxes, self.changed = full, 1.0
            return True
        delta = cv2.absdiff(g, cv2.convertScaleAbs(self._avg))
        moving = cv2.threshold(delta, self.cfg.threshold, 255, cv2.THRESH_BINARY)[1]
        moving = cv2.dilate(moving, _KERNEL, iterations=1)
        sh, sw = moving.shape
        self.changed = cv2.countNonZero(moving) / float(sh * sw)
        self._moving = moving
        if self.changed > self.cfg.lightning_threshold:  # lights, iris, a moved camera: relearn the scene
            self._calibrating = True
        if self._calibrating:
            self._avg = g.astype(np.float32)
            self._calibrated += 1
            self._calibrating = bool(self._regions(moving)) and self._calibrated < CALIBRATION_FRAMES
            self.boxes = full if self._calibrating else []
            return self._calibrating
        self._calibrated = 0
        cv2.accumulateWeighted(g, self._avg, self.cfg.alpha)
        self.boxes = self._regions(moving)
        return bool(self.boxes)

    def moving_outside(self, boxes: tuple[Box, ...]) -> bool:
        """Whether the last frame moved anywhere outside `boxes` (normalised xyxy): a blob of at least
        `contour_area` pixels left once they are blanked out. True while calibrating (everything moves)."""
        if self._calibrating or self._moving is None:
            return True
        if not boxes:
            return bool(self.boxes)
        rest = self._moving.copy()
        sh, sw = rest.shape
        for x0, y0, x1, y1 in boxes:
            c0, r0 = max(0, int(x0 * sw)), max(0, int(y0 * sh))
            c1, r1 = min(sw, int(np.ceil(x1 * sw))), min(sh, int(np.ceil(y1 * sh)))
            rest[r0:r1, c0:c1] = 0
        return bool(self._regions(rest))

    def _regions(self, moving: np.ndarray) -> list[Box]:
        """The boxes of the moving blobs of at least `contour_area` pixels (normalised)."""
        sh, sw = moving.shape
        contours, _ = cv2.findContours(moving, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes = []
        for c in contours:
            if cv2.contourArea(c) >= self.cfg.contour_area:
                x, y, w, h = cv2.boundingRect(c)
                boxes.append((x / sw, y / sh, (x + w) / sw, (y + h) / sh))
        return boxes


_SLACK = 1e-3  # s: frame times 0.1 apart add up to 0.19999... for two intervals; a gap within 1 ms of one is one


class MotionGate:
    """Whether the detector runs on this frame of one source: motion, live tracks, or the keepalive (see the
    module docstring). `decide` runs the motion detector on every frame; `ran` records that the detector
    did run (the engine may still skip a wanted frame for its stride). `show`: the engine hands each frame's
    `snapshot` on with its results for drawing (draw/motion.py); off, nothing is copied or drawn."""

    def __init__(
        self,
        cfg: MotionConfig,
        tracks: Callable[[], TrackNeeds | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.cfg = cfg
        self.detector = MotionDetector(cfg)
        self.tracks = tracks  # what the source's tracks need (None from it: no tracks)
        self.clock = clock
        self.last_run: float | None = None
        self.frames = self.motion_frames = 0
        self.show = cfg.show
        self.gating = True  # False: the detector runs on every frame, the motion detector only watches (drawing)

    def set_config(self, cfg: MotionConfig) -> None:
        """New masks or thresholds from the next frame on (a UI edit to a running stream); any thread."""
        self.cfg = cfg
        self.detector.set_config(cfg)

    def decide(self, image: np.ndarray | Frame, t: float | None = None) -> bool:
        """Whether the detector should run on this frame; `t`: its stream time (the tracker's clock, so
        intervals hold when a file runs faster than real time), None: `clock()`."""
        self.frames += 1
        moved = self.detector.update(image)
        self.motion_frames += moved
        if self.last_run is None or not self.gating:
            return True
        gap = (self.clock() if t is None else t) - self.last_run + _SLACK
        if gap < 0:  # the stream time went back (a file looped, a camera restarted)
            return True
        needs = self.tracks() if self.tracks is not None else None
        if moved and (needs is None or self.detector.moving_outside(needs.boxes)):
            return True
        if needs is not None:
            need = min(needs.interval_s, self.cfg.moving_interval_s) if needs.moving else needs.interval_s
            if gap >= need:
                return True
        return gap >= self.cfg.keepalive_s

    def ran(self, t: float | None = None) -> None:
        self.last_run = self.clock() if t is None else t

    @property
    def boxes(self) -> list[Box]:
        """The motion regions of the last frame (normalised xyxy), for drawing."""
        return list(self.detector.boxes)

    def snapshot(self, detected: bool) -> MotionSnapshot:
        """The last frame's motion regions and the masks they were found with, for drawing."""
        d = self.detector
        return MotionSnapshot(tuple(d.boxes), d.cfg.mask, d.changed, detected)


__all__ = ["MotionConfig", "MotionDetector", "MotionGate", "MotionSnapshot", "TrackNeeds"]
