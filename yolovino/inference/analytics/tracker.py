"""Multi-object tracking for one source: persistent track IDs on Results, through Roboflow's `trackers` library.

The association itself (Kalman prediction, two-stage IoU matching, track life cycle) is the library's
(ByteTrack by default; SORT and OC-SORT by name), chosen by `bench/tracker_compare.py` on the sample clips.
This module adapts it to our Results and keeps what the analytics stages need of a track:

* IDs that never repeat within a source, also across `reset()` (the library restarts at 0);
* the track's class by majority vote over its detections (ByteTrack matches across classes, and top-down
  cars flicker between car / cell phone / suitcase labels), its last score and box, first and last sighting;
* a velocity per track, so frames the detector skips (detect every Nth frame) get boxes carried forward;
* a short trail of anchor points for drawing.

One `Tracker` per source: state never crosses cameras. Masks and keypoints ride with their box because
track IDs are aligned with the input detections (the library may reorder its output; we map it back).
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal, cast

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

from yolovino.inference.analytics.reassociate import BASELINE_S, Motion, match
from yolovino.inference.core.errors import ConfigError
from yolovino.inference.core.results import Results, label_for


class TrackerConfig(BaseModel):
    """Tracker settings, the `tracker:` key of a source's `analytics:` (defaults: the library's own for the
    chosen kind; lost-track time in seconds).

    kind: a name in TRACKERS. lost_track_s: how long a track unseen is kept for re-association.
    activation: minimum score that starts a track; high_score: ByteTrack's first-stage score threshold
    (lower-scored boxes only extend existing tracks); min_iou: association threshold; min_frames:
    consecutive detections before a track gets its ID; trail: anchor points kept per track for drawing;
    reassociate_s: how long a track unseen stays a candidate to get its ID back when a new track starts where
    its motion predicts it (0 = off: a track ends when the library drops it, after lost_track_s).
    confirm_hits, confirm_score: a track becomes an object (its first event: appeared, entered, crossed) once
    it has this many detections, their median score is at least confirm_score and one class holds more than
    half of them (the class its events carry): a person walking in reads "dog" for a frame (legs only),
    a shadow scores 0.3 for two frames (Frigate's min_score/threshold). 1 and 0.0: every track at once.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: Literal["bytetrack", "sort", "ocsort"] = "bytetrack"
    lost_track_s: Annotated[float, Strict()] = Field(default=1.0, ge=0.0, le=600.0)
    activation: Annotated[float, Strict()] = Field(default=0.7, ge=0.0, le=1.0)
    high_score: Annotated[float, Strict()] = Field(default=0.6, ge=0.0, le=1.0)
    min_iou: Annotated[float, Strict()] = Field(default=0.1, ge=0.0, le=1.0)
    min_frames: Annotated[int, Strict()] = Field(default=2, ge=1, le=100)
    trail: Annotated[int, Strict()] = Field(default=24, ge=0, le=1000)
    reassociate_s: Annotated[float, Strict()] = Field(default=2.0, ge=0.0, le=60.0)
    confirm_hits: Annotated[int, Strict()] = Field(default=3, ge=1, le=100)
    confirm_score: Annotated[float, Strict()] = Field(default=0.4, ge=0.0, le=1.0)

    @model_validator(mode="before")
    @classmethod
    def _library_defaults(cls, data: Any) -> Any:
        """The kind's own library defaults under what the YAML gives (SORT and OC-SORT differ from ByteTrack)."""
        if isinstance(data, dict) and isinstance(data.get("kind"), str):
            return {**LIBRARY_DEFAULTS.get(data["kind"], {}), **data}
        return data

    @classmethod
    def for_kind(cls, kind: str) -> TrackerConfig:
        """The library's own defaults for that algorithm."""
        return cls.model_validate({"kind": kind})


# the library's defaults where they differ from ByteTrack's (trackers 2.6.1)
LIBRARY_DEFAULTS: dict[str, dict] = {
    "sort": {"activation": 0.25, "min_iou": 0.3, "min_frames": 3},
    "ocsort": {"min_iou": 0.3, "min_frames": 3},
}


def _bytetrack_settings(cfg: TrackerConfig, fps: float) -> dict:
    return {
        "lost_track_buffer": max(1, round(cfg.lost_track_s * 30)),  # trackers==2.6.1: buffer / 30 = seconds
        "frame_rate": fps,
        "track_activation_threshold": cfg.activation,
        "minimum_consecutive_frames": cfg.min_frames,
        "minimum_iou_threshold": cfg.min_iou,
        "high_conf_det_threshold": cfg.high_score,
    }


def _bytetrack(cfg: TrackerConfig, fps: float):
    """The library's ByteTrack with all tracks' Kalman filters batched (bytetrack.py: the same IDs)."""
    from yolovino.inference.analytics.bytetrack import BatchedByteTrack

    return BatchedByteTrack(**_bytetrack_settings(cfg, fps))


def _sort(cfg: TrackerConfig, fps: float):
    from trackers import SORTTracker

    return SORTTracker(
        lost_track_buffer=max(1, round(cfg.lost_track_s * 30)),
        frame_rate=fps,
        track_activation_threshold=cfg.activation,
        minimum_consecutive_frames=cfg.min_frames,
        minimum_iou_threshold=cfg.min_iou,
    )


def _ocsort(cfg: TrackerConfig, fps: float):
    from trackers import OCSORTTracker

    return OCSORTTracker(
        lost_track_buffer=max(1, round(cfg.lost_track_s * 30)),
        frame_rate=fps,
        minimum_consecutive_frames=cfg.min_frames,
        minimum_iou_threshold=cfg.min_iou,
        high_conf_det_threshold=cfg.high_score,
    )


def library_bytetrack(cfg: TrackerConfig, fps: float):
    """The library's own per-object ByteTrack with our settings: the reference BatchedByteTrack must match
    ID for ID (tests, bench/tracker_compare.py)."""
    from trackers import ByteTrackTracker

    return ByteTrackTracker(**_bytetrack_settings(cfg, fps))


# name -> factory(config, fps) of a library tracker with update(sv.Detections, timestamp=) / reset() /
# tracks (and, optionally, assign(boxes, scores, timestamp) -> (rows, ids) without sv.Detections); a new
# algorithm plugs in here
TRACKERS: dict[str, Callable] = {"bytetrack": _bytetrack, "sort": _sort, "ocsort": _ocsort}


@dataclass(slots=True)  # attribute access on every track every frame: slots are faster
class Track:
    """What we keep of one track the library gave an ID (times are stream seconds)."""

    id: int
    first_t: float
    last_t: float
    box: np.ndarray
    score: float
    votes: dict[int, int] = field(default_factory=dict)
    class_id: int = -1
    prev_box: np.ndarray | None = None  # the detection before the last one, for the velocity
    prev_t: float = 0.0
    trail: deque[tuple[int, int]] = field(default_factory=deque)
    motion: Motion = field(default_factory=Motion)
    hits: int = 0  # detections matched to the track
    scores: list[float] | None = field(default_factory=list)  # their scores until confirmed (then None)
    announced: bool = False  # its first event (appeared) went out: the stage's flag
    still_at: tuple[float, float] | None = None  # anchor where its current still spell began (the stage's)
    still_since: float = 0.0  # stream time of that anchor
    stationary: bool = False  # still for longer than the analytics' stationary_s
    ground: deque[tuple[float, float, float]] = field(default_factory=deque)  # (t, x, y) metres: speed.py
    speed_kmh: float | None = None  # ground speed (analytics speed calibration), None before it is measured
    heading_deg: float | None = None
    first_box: np.ndarray | None = None  # its first detection: where it came from, for lines (lines.py)

    @property
    def confirmed(self) -> bool:
        return self.scores is None

    def confirm(self, hits: int, min_score: float) -> bool:
        """Confirmed now or before: `hits` detections, median score >= min_score, a majority class."""
        if self.scores is None:
            return True
        if self.hits < hits or float(np.median(self.scores)) < min_score:
            return False
        if 2 * self.votes.get(self.class_id, 0) <= self.hits:
            return False
        self.scores = None
        return True

    def vote(self, class_id: int) -> None:
        n = self.votes.get(class_id, 0) + 1
        self.votes[class_id] = n
        if self.class_id < 0 or (class_id != self.class_id and n > self.votes.get(self.class_id, 0)):
            self.class_id = class_id

    def velocity(self) -> np.ndarray:
        """Pixels per second of each box edge between the last two detections (zero before the second)."""
        if self.prev_box is None or self.last_t <= self.prev_t:
            return np.zeros(4, np.float32)
        return (self.box - self.prev_box) / (self.last_t - self.prev_t)


def anchor_points(boxes: np.ndarray, anchor: str = "bottom_center") -> np.ndarray:
    """(N, 2) points of xyxy boxes: "bottom_center" (feet of a person, default) or "center"."""
    x = (boxes[:, 0] + boxes[:, 2]) * 0.5
    y = boxes[:, 3] if anchor == "bottom_center" else (boxes[:, 1] + boxes[:, 3]) * 0.5
    return np.stack([x, y], axis=1)


class Tracker:
    """Per-source tracker: `update()` on detected frames, `carry()` on skipped ones, `reset()` on a jump."""

    def __init__(
        self,
        config: TrackerConfig | None = None,
        fps: float | None = None,
        anchor: str = "bottom_center",
        library: Callable | None = None,
    ):
        """`library`: the factory(config, fps) of the library tracker instead of TRACKERS[kind] (the tests
        and benches pass `library_bytetrack`, the per-object reference of the batched ByteTrack)."""
        self.config = config or TrackerConfig()
        if self.config.kind not in TRACKERS:
            raise ConfigError(f"tracker {self.config.kind!r} is not one of {sorted(TRACKERS)}")
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.anchor = anchor
        self._lib = (library or TRACKERS[self.config.kind])(self.config, self.fps)
        self._assign = getattr(self._lib, "assign", None)
        self._tracker_ids = getattr(self._lib, "tracker_ids", None)  # the batched tracker's, without `tracks`
        self._ids: dict[int, int] = {}  # library id -> our id (the library restarts at 0 on reset)
        self._lib_of: dict[int, int] = {}  # our id -> its current library id
        self._next_id = 1
        self.tracks: dict[int, Track] = {}  # confirmed and not yet ended, by our id
        self._last_t: float | None = None
        self._last_seen: list[int] = []  # our ids matched on the last detected frame

    def update(self, results: Results, t: float) -> Results:
        """Track IDs for `results` (aligned with its detections; -1 = not confirmed yet)."""
        n = len(results)
        index, lib_ids = self._library_ids(results, t)
        ids = np.full(n, -1, np.int64)
        if len(index):
            confirmed = lib_ids >= 0
            rows, libs = index[confirmed].tolist(), lib_ids[confirmed].tolist()  # plain ints: a loop follows
            known = [self._ids.get(lib) for lib in libs]
            unknown = known.count(None)  # library ids new to us (None: the usual frame has none)
            # re-association only when some track went unmatched (ids are one-to-one: counts compare sets)
            if self.config.reassociate_s > 0 and len(known) - unknown != len(self.tracks):
                self._reassociate(results, dict(zip(libs, rows, strict=True)), t)
                ids[rows] = [self._our_id(lib) for lib in libs]
            elif unknown:
                ids[rows] = [self._our_id(lib) if our is None else our for our, lib in zip(known, libs, strict=True)]
            else:
                ids[rows] = cast("list[int]", known)
        self._observe(results, ids, t)
        self._last_t = t
        return replace(results, track_ids=ids)

    def _library_ids(self, results: Results, t: float) -> tuple[np.ndarray, np.ndarray]:
        """The library's answer: rows of `results` it returned and their library ids (-1 = none yet)."""
        boxes = results.boxes.astype(np.float32, copy=False)
        if self._assign is not None and self._last_t is not None and t > self._last_t:
            return self._assign(boxes, results.scores, t)  # time moved on: nothing to warn about
        with warnings.catch_warnings():  # the library warns (once per call) on equal timestamps: harmless here
            warnings.simplefilter("ignore", UserWarning)
            if self._assign is not None:
                return self._assign(boxes, results.scores, t)
            import supervision as sv

            det = sv.Detections(
                xyxy=boxes,
                confidence=results.scores,
                class_id=results.class_ids.astype(int),
                data={"i": np.arange(len(results))},
            )
            out = self._lib.update(det, timestamp=t)
        if not len(out):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.asarray(out.data["i"]), np.asarray(out.tracker_id)

    def _our_id(self, lib_id: int) -> int:
        our = self._ids.get(lib_id)
        if our is None:
            our = self._ids[lib_id] = self._next_id
            self._lib_of[our] = lib_id
            self._next_id += 1
        return our

    def _reassociate(self, results: Results, rows: dict[int, int], t: float) -> None:
        """Library ids confirmed now (-> their row in results) that the library just started, or that it
        matched to a box their own motion cannot explain, take the ID of a lost track whose motion predicts
        them (reassociate.py). The second case is a swap: two people pass behind the same pole and the
        stalled box of the one going in takes the other as it comes out. A lost track's old library id is
        forgotten, so should the library find it again it becomes a new track, not a second box with the same
        ID. Called only when some track went unmatched (`update` skips the usual frame, where none did)."""
        seen = {self._ids[lib] for lib in rows if lib in self._ids}
        horizon = self.config.reassociate_s
        lost = [(tr.id, tr.motion) for tr in self.tracks.values() if tr.id not in seen and 0 < t - tr.last_t <= horizon]
        if not lost:
            return
        started = {lib: row for lib, row in rows.items() if lib not in self._ids}
        for lib, row in rows.items():
            tr = self.tracks.get(self._ids.get(lib, -1))
            box = results.boxes[row]
            if tr is not None and self._jumped(tr, box, t) and any(m.gate(box, t) is not None for _, m in lost):
                del self._ids[lib]
                self._lib_of.pop(tr.id, None)
                started[lib] = row
                lost.append((tr.id, tr.motion))
        new = [(lib, results.boxes[row]) for lib, row in started.items()]
        for lib, our in match(new, lost, t).items():
            old = self._lib_of.get(our)
            if old is not None:
                self._ids.pop(old, None)
            self._ids[lib], self._lib_of[our] = our, lib

    def _jumped(self, tr: Track, box: np.ndarray, t: float) -> bool:
        """The track comes back from a gap or from being partly hidden, its motion is recent (whole within
        BASELINE_S) and it cannot explain `box`. Tracks seen whole on the previous update are not checked."""
        if not tr.motion.centres:
            return False
        whole_t = tr.motion.centres[-1][0]
        if (tr.last_t == self._last_t and whole_t == tr.last_t) or t - whole_t > BASELINE_S:
            return False
        return tr.motion.gate(box, t, sized=False) is None

    def _observe(self, results: Results, ids: np.ndarray, t: float) -> None:
        """Each matched track takes its detection: box, score, whole-box motion, class vote, hits (and scores
        until confirmed), trail point. Plain Python values in one pass: this runs for every track on every
        detected frame."""
        idx = (ids >= 0).nonzero()[0]
        boxes = results.boxes[idx].astype(np.float32)
        ax = boxes[:, 0] + boxes[:, 2]  # anchor_points(), with fewer array operations: the same values
        ax *= 0.5
        ay = boxes[:, 3] if self.anchor == "bottom_center" else (boxes[:, 1] + boxes[:, 3]) * 0.5
        anchors = zip(ax.astype(np.int32).tolist(), ay.astype(np.int32).tolist(), strict=True)
        tids = ids[idx].tolist()
        scores, classes = results.scores[idx].tolist(), results.class_ids[idx].tolist()
        rows = zip(tids, boxes, boxes.tolist(), scores, classes, anchors, strict=True)
        tracks, cfg = self.tracks, self.config
        for tid, box, edges, score, class_id, anchor in rows:
            track = tracks.get(tid)
            if track is None:
                track = tracks[tid] = Track(tid, t, t, box, score, first_box=box.copy())
                track.trail = deque(maxlen=max(cfg.trail, 1))
                track.motion.observe(edges, t)
            elif t > track.last_t:
                track.prev_box, track.prev_t = track.box, track.last_t
                track.box, track.score, track.last_t = box, score, t
            track.motion.observe(edges, t)
            if class_id == track.class_id:
                track.votes[class_id] += 1  # Track.vote's outcome when the vote agrees (the usual case)
            else:
                track.vote(class_id)
            track.hits += 1
            if track.scores is not None:
                if len(track.scores) < 64:  # enough for a median; a track that never confirms stays bounded
                    track.scores.append(score)
                track.confirm(cfg.confirm_hits, cfg.confirm_score)
            track.trail.append(anchor)
        self._last_seen = tids

    @property
    def last_seen(self) -> set[int]:
        """Our ids matched on the last detected frame."""
        return set(self._last_seen)

    def carry(self, results: Results, t: float) -> Results:
        """Boxes for a frame the detector skipped: each track seen on the last detected frame, moved along
        its velocity and clipped to the frame; class and score are the track's."""
        live = [self.tracks[i] for i in self._last_seen if i in self.tracks]
        if not live or self._last_t is None:
            return replace(results, track_ids=np.zeros(0, np.int64), carried=True)
        dt = t - self._last_t
        boxes = np.stack([tr.box + tr.velocity() * dt for tr in live]).astype(np.float32)
        h, w = results.frame_shape
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        anchors = anchor_points(boxes, self.anchor)
        for k, tr in enumerate(live):
            tr.trail.append((int(anchors[k, 0]), int(anchors[k, 1])))
        return replace(
            results,
            boxes=boxes,
            scores=np.array([tr.score for tr in live], np.float32),
            class_ids=np.array([tr.class_id for tr in live], np.int32),
            masks=None,
            keypoints=None,
            track_ids=np.array([tr.id for tr in live], np.int64),
            carried=True,
        )

    def alive(self) -> set[int]:
        """Our ids of the tracks the library still keeps (seen now or lost within lost_track_s): its
        `tracks` list (BaseTracker's documented attribute; `tracked_objects` would also predict every box),
        and those unseen for at most reassociate_s (they may still get their ID back)."""
        ids = self._ids
        lib_ids = self._tracker_ids().tolist() if self._tracker_ids else [t.tracker_id for t in self._lib.tracks]
        alive = {ids[i] for i in lib_ids if i in ids}
        if self.config.reassociate_s > 0 and self._last_t is not None:
            horizon = self._last_t - self.config.reassociate_s
            alive.update(tid for tid, tr in self.tracks.items() if tr.last_t >= horizon)
        return alive

    def end(self, track_ids) -> list[Track]:
        """Forget tracks the library dropped; returns them (for "ended" events)."""
        ended = [self.tracks.pop(i) for i in track_ids if i in self.tracks]
        for tr in ended:
            self._ids.pop(self._lib_of.pop(tr.id, -1), None)
        return ended

    def reset(self) -> list[Track]:
        """Start over (reconnect, stream jump): every track ends; IDs go on from where they were."""
        ended = list(self.tracks.values())
        self.tracks.clear()
        self._ids.clear()
        self._lib_of.clear()
        self._last_seen = []
        self._last_t = None
        self._lib.reset()
        return ended

    def label(self, names: dict[int, str], track: Track) -> str:
        return label_for(names, track.class_id)
