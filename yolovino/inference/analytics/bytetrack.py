"""ByteTrack with every track's Kalman filter in one array: the library's algorithm, batched.

Roboflow's `trackers.ByteTrackTracker` keeps one `KalmanFilter` object per track and runs its predict and
update one track at a time: at 20 objects that is some 40 small-matrix round trips through Python per frame,
half of the tracker's time (cProfile). `BatchedByteTrack` is that tracker with the
filters' states stacked, (N, 8, 1) and covariances (N, 8, 8): one `np.matmul` per step of the filter for
all tracks. The matrix products are the library's own, in its order and with the same operands (numpy runs
each stacked product through the same BLAS call it makes for one matrix), so the states are bit-for-bit the
library's and so are the IDs (tests/test_batched_tracker.py compares both frame by frame on a real clip).

Everything else is the library's, called or mirrored line for line: `_predict_timing` (timestamps, gaps,
duplicates), the gap-scaled transition matrix and process noise (`motion_models`), the two-stage IoU
association (`_get_associated_indices`, `IoU`), track spawning and the lost-track budget
(`within_lost_track_budget`, the life-cycle rules of `_get_alive_tracklets`). `assign()` takes and gives
plain arrays (no `sv.Detections` to build and slice); `update()` keeps the library's signature.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.optimize import linear_sum_assignment
from trackers import ByteTrackTracker
from trackers.core.bytetrack.tracklet import ByteTrackTracklet
from trackers.utils.iou import IoU
from trackers.utils.motion_models import constant_velocity_transition_matrix
from trackers.utils.predict_timing import PredictTiming
from trackers.utils.state_representations import XYXYStateEstimator

_DIM_X, _DIM_Z = 8, 4

try:  # np.linalg.inv's own LAPACK kernel, without its per-call Python checks (S is always positive definite)
    from numpy.linalg import _umath_linalg

    def _inv(a: np.ndarray) -> np.ndarray:
        return _umath_linalg.inv(a, signature="d->d")
except ImportError:  # pragma: no cover - a NumPy that moved it: the public function, same numbers
    _inv = np.linalg.inv


def iou(tracks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N, M) float32 IoU of xyxy boxes: `supervision.box_iou_batch` (the library's `IoU`) op for op in
    float64, in half the NumPy calls (one matrix per frame serves both association stages)."""
    if not len(tracks) or not len(boxes):
        return np.zeros((len(tracks), len(boxes)), dtype=np.float64)  # BaseIoU.compute's empty answer
    a, b = tracks.astype(np.float64)[:, None, :], boxes.astype(np.float64)[None, :, :]
    wh = np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2])
    np.clip(wh, 0.0, None, out=wh)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    out = np.zeros(inter.shape, dtype=np.float32)
    np.divide(inter, union, out=out, where=union > 0)
    return out


class Tracklet:
    """A track's life-cycle counters (the library tracklet's attributes); its filter is a row of the batch."""

    __slots__ = (
        "age",
        "number_of_successful_consecutive_updates",
        "time_since_update",
        "time_since_update_seconds",
        "tracker_id",
    )

    def __init__(self) -> None:
        self.age = 0
        self.tracker_id = -1
        self.time_since_update = 0
        self.time_since_update_seconds = 0.0
        self.number_of_successful_consecutive_updates = 1  # the spawning box counts (as in ByteTrackTracklet)


class BatchedByteTrack(ByteTrackTracker):
    """`ByteTrackTracker` (XYXY state, IoU similarity: the library's defaults) with batched Kalman filters.

    `tracks[i]` is the life cycle of the track whose filter is row i of `_x` / `_p`.
    """

    tracker_id = None  # type: ignore[assignment]  # not in the library's registry: its "bytetrack" stays its own
    search_space: ClassVar[dict[str, dict]] = {}  # the library's tuner does not run this class

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        ref = ByteTrackTracklet(np.zeros(_DIM_Z))  # the library's per-track noise set-up, read once
        est, kf = ref.state_estimator, ref.state_estimator.kf
        if not isinstance(est, XYXYStateEstimator):
            raise TypeError("BatchedByteTrack runs the XYXY state of the library's ByteTrack only")
        self._pos, self._vel = est._POS_IDX, est._VEL_IDX
        self._noise = est.motion.process_noise  # builds Q for a frame step (baseline or gap-scaled)
        self._h, self._r = kf.observation_mtx, kf.measurement_noise
        self._eye = np.eye(_DIM_X)
        self._p0 = kf.state_covariance.copy()
        self._step: tuple[float, float | None] | None = None
        self._fq: tuple[np.ndarray, np.ndarray] = (self._eye, self._eye)
        self.tracks: list[Tracklet] = []  # type: ignore[assignment]
        self._x = np.zeros((0, _DIM_X, 1))
        self._p = np.zeros((0, _DIM_X, _DIM_X))
        # the library's IoU checks (finite boxes) then sv.box_iou_batch: ours is the same numbers, cheaper
        self._iou = self._fast_iou if type(self.iou) is IoU else self.iou.compute

    def _fast_iou(self, tracks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        if not (np.isfinite(tracks).all() and np.isfinite(boxes).all()):
            return self.iou.compute(tracks, boxes)  # raises the library's ValueError
        return iou(tracks, boxes)

    def reset(self) -> None:
        super().reset()
        self._x, self._p = self._x[:0], self._p[:0]

    def update(self, detections, frame: np.ndarray | None = None, timestamp: float | None = None):
        """The library's `update()` contract: sv.Detections in, the tracked ones (tracker_id) out."""
        import supervision as sv

        self._warn_if_frame_unused(frame)
        rows, ids = self.assign(detections.xyxy, detections.confidence, timestamp)
        if not len(rows):
            result = sv.Detections.empty()
            result.tracker_id = np.array([], dtype=int)
            return result
        result = detections[rows]
        result.tracker_id = ids
        return result

    def assign(
        self, boxes: np.ndarray, scores: np.ndarray | None, timestamp: float | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One frame's (N, 4) xyxy boxes and scores -> (rows of the input, their tracker ids; -1 = no id
        yet), in the library's output order (first-stage matches, second-stage, unmatched, new)."""
        confidences = scores if scores is not None else np.ones(len(boxes), np.float32)
        timing = self._predict_timing(timestamp)
        if timing.skip_update:
            return np.arange(len(boxes)), np.full(len(boxes), -1, dtype=int)
        if not self.tracks and not len(boxes):
            return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
        self._predict(timing)
        budget = self._lost_track_time_budget(timing, self.maximum_time_without_update)
        if budget is not None:  # the library's _prune_lost_tracks: time-expired tracks go before matching
            self._keep([t.time_since_update_seconds <= budget for t in self.tracks])
        out_rows: list[int] = []
        out_ids: list[int] = []
        upd_tracks: list[int] = []
        upd_boxes: list[int] = []
        high = np.flatnonzero(confidences >= self.high_conf_det_threshold)
        low = np.flatnonzero(~(confidences >= self.high_conf_det_threshold))
        # one IoU matrix for both stages (the library computes the two sub-matrices: the same numbers)
        similarity = self._iou(self._x[:, :_DIM_Z, 0], boxes)
        iou = similarity[:, high]
        matched, unmatched_tracks, unmatched_high = self._get_associated_indices(iou, self.minimum_iou_threshold)
        for row, col in matched:
            self._matched(row, int(high[col]), out_rows, out_ids, upd_tracks, upd_boxes)
        iou = similarity[unmatched_tracks][:, low]
        matched, _, unmatched_low = self._get_associated_indices(iou, self.minimum_iou_threshold)
        for row, col in matched:
            self._matched(unmatched_tracks[row], int(low[col]), out_rows, out_ids, upd_tracks, upd_boxes)
        for col in unmatched_low:
            out_rows.append(int(low[col]))
            out_ids.append(-1)
        self._correct(upd_tracks, boxes[upd_boxes])
        spawned = []
        for col in unmatched_high:
            row = int(high[col])
            out_rows.append(row)
            out_ids.append(-1)
            if float(confidences[row]) >= self.track_activation_threshold:
                spawned.append(row)
        if spawned:
            self._spawn(boxes[spawned])
        self._keep([self._alive(t, budget) for t in self.tracks])
        return np.array(out_rows, dtype=int), np.array(out_ids, dtype=int)

    def _get_associated_indices(
        self, similarity_matrix: np.ndarray, min_similarity_thresh: float
    ) -> tuple[list[tuple[int, int]], list[int], list[int]]:
        """The library's association (optimal assignment, then pairs under the threshold dropped), its
        output to the element (pairs in the solver's row order, sorted unmatched lists) with array
        operations instead of sets."""
        n_tracks, n_detections = similarity_matrix.shape
        if not n_tracks or not n_detections:
            return [], list(range(n_tracks)), list(range(n_detections))
        rows, cols = linear_sum_assignment(similarity_matrix, maximize=True)
        ok = similarity_matrix[rows, cols] >= min_similarity_thresh
        rows, cols = rows[ok], cols[ok]
        free_tracks, free_dets = np.ones(n_tracks, bool), np.ones(n_detections, bool)
        free_tracks[rows], free_dets[cols] = False, False
        return (
            list(zip(rows.tolist(), cols.tolist(), strict=True)),
            np.flatnonzero(free_tracks).tolist(),
            np.flatnonzero(free_dets).tolist(),
        )

    def _matched(self, track: int, row: int, out_rows: list, out_ids: list, tracks: list, rows: list) -> None:
        """The library's per-match bookkeeping (ByteTrackTracklet.update's counters, ID on maturity); the
        filter update itself is batched in `_correct`."""
        t = self.tracks[track]
        t.time_since_update = 0
        t.time_since_update_seconds = 0.0
        t.number_of_successful_consecutive_updates += 1
        if t.number_of_successful_consecutive_updates >= self.minimum_consecutive_frames and t.tracker_id == -1:
            t.tracker_id = self._allocate_tracker_id()
        out_rows.append(row)
        out_ids.append(t.tracker_id)
        tracks.append(track)
        rows.append(row)

    def _predict(self, timing: PredictTiming) -> None:
        """Every track's KalmanFilter.predict (F and Q of this frame step) and ByteTrackTracklet.predict's
        counters; nothing when the timestamp did not advance (the library's _predict_tracklets)."""
        if timing.skip_predict:
            return
        key = (timing.frame_step, timing.frame_rate)
        if key != self._step:  # the library caches F and Q per step value the same way
            f = constant_velocity_transition_matrix(_DIM_X, self._pos, self._vel, timing.frame_step)
            self._fq, self._step = (f, self._noise.build_Q(timing.frame_step, timing.frame_rate)), key
        f, q = self._fq
        self._x = f @ self._x
        self._p = f @ self._p @ f.T + q
        elapsed = timing.elapsed_seconds
        for t in self.tracks:
            if t.time_since_update > 0:
                t.number_of_successful_consecutive_updates = 0
            t.time_since_update += 1
            t.time_since_update_seconds = t.time_since_update_seconds + elapsed if elapsed is not None else 0.0
            t.age += 1

    def _correct(self, tracks: list[int], boxes: np.ndarray) -> None:
        """KalmanFilter.update for the matched tracks at once (Joseph form, the library's operand order)."""
        if not tracks:
            return
        idx = np.array(tracks)
        x, p, h, r = self._x[idx], self._p[idx], self._h, self._r
        z = np.asarray(boxes, dtype=np.float64).reshape((len(idx), _DIM_Z, 1))
        innovation = z - h @ x
        pht = p @ h.T
        s = h @ pht + r
        k = pht @ _inv(s)
        kt = np.swapaxes(k, -1, -2)
        i_kh = self._eye - k @ h
        self._x[idx] = x + k @ innovation
        self._p[idx] = i_kh @ p @ np.swapaxes(i_kh, -1, -2) + k @ r @ kt

    def _spawn(self, boxes: np.ndarray) -> None:
        """New tracks from unmatched confident boxes: state = the box at rest, covariance the library's."""
        n = len(boxes)
        x = np.zeros((n, _DIM_X, 1))
        x[:, :_DIM_Z, 0] = np.asarray(boxes, dtype=np.float64)
        self._x = np.concatenate([self._x, x])
        self._p = np.concatenate([self._p, np.broadcast_to(self._p0, (n, _DIM_X, _DIM_X))])
        self.tracks.extend(Tracklet() for _ in range(n))

    def _alive(self, t: Tracklet, budget: float | None) -> bool:
        """_get_alive_tracklets' rule: within the lost-track budget (BaseTracklet.within_lost_track_budget:
        seconds when timestamps are given, else frames) and (confirmed, mature or just seen)."""
        if budget is not None:
            within = t.time_since_update_seconds <= budget
        else:
            within = t.time_since_update <= self.maximum_frames_without_update
        mature = t.tracker_id != -1 or t.number_of_successful_consecutive_updates >= self.minimum_consecutive_frames
        return within and (mature or t.time_since_update == 0)

    def _keep(self, keep: list[bool]) -> None:
        if all(keep):
            return
        idx = np.flatnonzero(keep)
        self.tracks = [self.tracks[i] for i in idx]
        self._x, self._p = self._x[idx], self._p[idx]
