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

The per-track life-cycle counters (the library tracklet's attributes) are arrays too, one entry per row of
the filter batch, so a frame's bookkeeping (predict's counters, the matches' updates, ID allocation, the
alive rule) is a handful of array operations rather than a Python loop over the tracks: at 20 objects the
loops cost as much as the filters. `tracks` still lists the library-style tracklets (built when asked).
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
    n, m = len(tracks), len(boxes)
    if not n or not m:
        return np.zeros((n, m), dtype=np.float64)  # BaseIoU.compute's empty answer
    c = np.concatenate((tracks, boxes), dtype=np.float64)  # both sets' corners, float64 (exact upcast)
    area = (c[:, 2] - c[:, 0]) * (c[:, 3] - c[:, 1])
    a, b = c[:n, None, :], c[None, n:, :]
    wh = np.minimum(a[..., 2:], b[..., 2:])
    wh -= np.maximum(a[..., :2], b[..., :2])
    np.maximum(wh, 0.0, out=wh)  # np.clip(wh, 0, None): the same values, without clip's Python overhead
    inter = wh[..., 0] * wh[..., 1]
    union = area[:n, None] + area[None, n:]
    union -= inter
    out = np.zeros((n, m), dtype=np.float32)
    np.divide(inter, union, out=out, where=union > 0)
    return out


class Tracklet:
    """One track's life-cycle counters as the library's tracklet names them: a snapshot of a row of the
    batch (`BatchedByteTrack.tracks`), for callers that read the library's `tracks` list."""

    __slots__ = (
        "age",
        "number_of_successful_consecutive_updates",
        "time_since_update",
        "time_since_update_seconds",
        "tracker_id",
    )

    def __init__(self, age: int, tracker_id: int, lost: int, lost_s: float, run: int) -> None:
        self.age = age
        self.tracker_id = tracker_id
        self.time_since_update = lost
        self.time_since_update_seconds = lost_s
        self.number_of_successful_consecutive_updates = run


_EMPTY = np.zeros(0, dtype=np.int64)
_MINUS_ONE = np.full(1, -1, dtype=np.int64)


def _free(taken: np.ndarray, n: int) -> np.ndarray:
    """The sorted indices below n not in `taken` (distinct indices)."""
    if len(taken) == n:
        return _EMPTY
    free = np.ones(n, bool)
    free[taken] = False
    return free.nonzero()[0]


class BatchedByteTrack(ByteTrackTracker):
    """`ByteTrackTracker` (XYXY state, IoU similarity: the library's defaults) with batched Kalman filters.

    Row i of every array is one track: `_x` / `_p` its filter, `_age`, `_lost` (time_since_update),
    `_lost_s` (its seconds), `_run` (number_of_successful_consecutive_updates), `_tid` (tracker_id).
    """

    tracker_id = None  # type: ignore[assignment]  # not in the library's registry: its "bytetrack" stays its own
    search_space: ClassVar[dict[str, dict]] = {}  # the library's tuner does not run this class

    def __init__(self, **kwargs) -> None:
        self._clear()
        super().__init__(**kwargs)
        ref = ByteTrackTracklet(np.zeros(_DIM_Z))  # the library's per-track noise set-up, read once
        est, kf = ref.state_estimator, ref.state_estimator.kf
        if not isinstance(est, XYXYStateEstimator):
            raise TypeError("BatchedByteTrack runs the XYXY state of the library's ByteTrack only")
        self._pos, self._vel = est._POS_IDX, est._VEL_IDX
        self._noise = est.motion.process_noise  # builds Q for a frame step (baseline or gap-scaled)
        self._h, self._r = kf.observation_mtx, kf.measurement_noise
        # H = [I 0] selects the box from the state, so H x, P H^T and H P H^T are slices of x and P, equal to
        # the products to the bit (every other term is an exact 0); checked here, else the products run
        self._h_selects = bool(np.array_equal(self._h, np.eye(_DIM_Z, _DIM_X)))
        self._eye = np.eye(_DIM_X)
        self._p0 = kf.state_covariance.copy()
        self._fq: dict[tuple[float, float | None], tuple[np.ndarray, np.ndarray]] = {}  # (step, rate) -> F, Q
        # R is diagonal: K R is K's columns scaled, equal to the product to the bit (one non-zero term a sum)
        self._r_diag = np.diag(self._r).copy() if np.array_equal(self._r, np.diag(np.diag(self._r))) else None
        # the library's IoU checks (finite boxes) then sv.box_iou_batch: ours is the same numbers, cheaper
        self._iou = self._fast_iou if type(self.iou) is IoU else self.iou.compute

    def _clear(self) -> None:
        self._x = np.zeros((0, _DIM_X, 1))
        self._p = np.zeros((0, _DIM_X, _DIM_X))
        self._age, self._lost, self._run, self._tid = _EMPTY, _EMPTY, _EMPTY, _EMPTY
        self._lost_s = np.zeros(0)

    @property  # type: ignore[override]
    def tracks(self) -> list[Tracklet]:
        """The alive tracks as the library's tracklets (a snapshot built on each call; `tracker_ids` is
        the cheap way to their IDs)."""
        rows = zip(
            self._age.tolist(), self._tid.tolist(), self._lost.tolist(), self._lost_s.tolist(), self._run.tolist()
        )
        return [Tracklet(*row) for row in rows]

    @tracks.setter
    def tracks(self, value: list) -> None:
        """The library's constructor and reset() clear the list: clear the batch."""
        if value:
            raise ValueError("BatchedByteTrack's tracks are its arrays; only clearing them is supported")
        self._clear()

    def tracker_ids(self) -> np.ndarray:
        """Tracker ids of the alive tracks (-1: not yet given one)."""
        return self._tid

    def _fast_iou(self, tracks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        # a sum is finite only if every term is: per array one reduction instead of isfinite and all() (an
        # overflowing sum only sends finite boxes through the library's own check: the same numbers then)
        if not (np.isfinite(tracks.sum()) and np.isfinite(boxes.sum())):
            return self.iou.compute(tracks, boxes)  # raises the library's ValueError
        return iou(tracks, boxes)

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
        n_boxes = len(boxes)
        confidences = scores if scores is not None else np.ones(n_boxes, np.float32)
        timing = self._predict_timing(timestamp)
        if timing.skip_update:
            return np.arange(n_boxes), np.full(n_boxes, -1, dtype=int)
        if not len(self._tid) and not n_boxes:
            return _EMPTY, _EMPTY
        self._predict(timing)
        budget = self._lost_track_time_budget(timing, self.maximum_time_without_update)
        if budget is not None:  # the library's _prune_lost_tracks: time-expired tracks go before matching
            self._keep(self._lost_s <= budget)
        is_high = confidences >= self.high_conf_det_threshold  # the library's comparison, in its dtype
        high, low = is_high.nonzero()[0], (~is_high).nonzero()[0]  # flatnonzero of 1-D, one C call
        # one IoU matrix for both stages (the library computes the two sub-matrices: the same numbers)
        similarity = self._iou(self._x[:, :_DIM_Z, 0], boxes)
        t1, d1, free_tracks, free_high = self._associate(similarity[:, high])
        t2, d2, _, free_low = self._associate(similarity[free_tracks[:, None], low])
        tracks = np.concatenate((t1, free_tracks[t2]))  # matched rows of the batch, in the library's order
        rows = np.concatenate((high[d1], low[d2]))  # and their boxes
        self._matched(tracks)
        self._correct(tracks, boxes[rows])
        new_rows = high[free_high]
        # the library compares float(confidence) with the threshold: in float64, not the scores' float32
        spawned = new_rows[confidences[new_rows].astype(np.float64) >= self.track_activation_threshold]
        if len(spawned):
            self._spawn(boxes[spawned])
        out_ids = np.concatenate((self._tid[tracks], _MINUS_ONE.repeat(len(free_low) + len(new_rows))))
        self._keep(self._alive(budget))
        return np.concatenate((rows, low[free_low], new_rows)), out_ids

    def _associate(self, similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The library's `_get_associated_indices` (optimal assignment, then pairs under the threshold
        dropped) as arrays: matched track and detection indices in the solver's row order, then the sorted
        unmatched tracks and detections."""
        n_tracks, n_detections = similarity.shape
        if not n_tracks or not n_detections:
            return _EMPTY, _EMPTY, np.arange(n_tracks), np.arange(n_detections)
        rows, cols = linear_sum_assignment(similarity, maximize=True)
        ok = similarity[rows, cols] >= self.minimum_iou_threshold
        if not ok.all():
            rows, cols = rows[ok], cols[ok]
        return rows, cols, _free(rows, n_tracks), _free(cols, n_detections)

    def _matched(self, tracks: np.ndarray) -> None:
        """ByteTrackTracklet.update's counters for the matched rows, and an ID for each that matures now,
        allocated in match order (the library's loop order)."""
        self._lost[tracks] = 0
        self._lost_s[tracks] = 0.0
        self._run[tracks] += 1  # rows are distinct: one increment each
        fresh = tracks[(self._run[tracks] >= self.minimum_consecutive_frames) & (self._tid[tracks] == -1)]
        if len(fresh):
            self._tid[fresh] = [self._allocate_tracker_id() for _ in range(len(fresh))]

    def _predict(self, timing: PredictTiming) -> None:
        """Every track's KalmanFilter.predict (F and Q of this frame step) and ByteTrackTracklet.predict's
        counters; nothing when the timestamp did not advance (the library's _predict_tracklets)."""
        if timing.skip_predict:
            return
        key = (timing.frame_step, timing.frame_rate)
        fq = self._fq.get(key)
        if fq is None:  # F and Q are functions of the step alone; timestamps' rounding gives a few step values
            if len(self._fq) >= 16:  # a variable frame rate: keep the cache small
                self._fq.clear()
            f = constant_velocity_transition_matrix(_DIM_X, self._pos, self._vel, timing.frame_step)
            fq = self._fq[key] = (f, self._noise.build_Q(timing.frame_step, timing.frame_rate))
        f, q = fq
        self._x = f @ self._x
        self._p = f @ self._p @ f.T + q
        self._run[self._lost > 0] = 0
        self._lost += 1
        self._age += 1
        elapsed = timing.elapsed_seconds
        if elapsed is not None:
            self._lost_s += elapsed
        else:
            self._lost_s[:] = 0.0

    def _correct(self, tracks: np.ndarray, boxes: np.ndarray) -> None:
        """KalmanFilter.update for the matched tracks at once (Joseph form, the library's operand order)."""
        if not len(tracks):
            return
        h, r = self._h, self._r
        every = len(tracks) == len(self._x)  # the usual frame: every track matched (rows are independent)
        if every:  # the boxes in row order rather than gathering and scattering the filters
            boxes = boxes[tracks.argsort()]
            x, p = self._x, self._p
        else:
            x, p = self._x[tracks], self._p[tracks]
        z = boxes.astype(np.float64).reshape((len(tracks), _DIM_Z, 1))
        if self._h_selects:  # H x, P H^T, H P H^T: slices, equal to the products to the bit
            innovation, pht = z - x[:, :_DIM_Z], p[:, :, :_DIM_Z]
            s = p[:, :_DIM_Z, :_DIM_Z] + r
        else:
            innovation, pht = z - h @ x, p @ h.T
            s = h @ pht + r
        k = pht @ _inv(s)
        kt = k.transpose(0, 2, 1)  # np.swapaxes(k, -1, -2), as a method: no Python wrapper
        i_kh = self._eye - k @ h
        kr = k * self._r_diag[None, None, :] if self._r_diag is not None else k @ r
        x, p = x + k @ innovation, i_kh @ p @ i_kh.transpose(0, 2, 1) + kr @ kt
        if every:
            self._x, self._p = x, p
        else:
            self._x[tracks], self._p[tracks] = x, p

    def _spawn(self, boxes: np.ndarray) -> None:
        """New tracks from unmatched confident boxes: state = the box at rest, covariance the library's,
        counters a new ByteTrackTracklet's (the spawning box counts as one update)."""
        n = len(boxes)
        x = np.zeros((n, _DIM_X, 1))
        x[:, :_DIM_Z, 0] = boxes
        self._x = np.concatenate([self._x, x])
        self._p = np.concatenate([self._p, np.broadcast_to(self._p0, (n, _DIM_X, _DIM_X))])
        zeros = np.zeros(n, dtype=np.int64)
        self._age = np.concatenate([self._age, zeros])
        self._lost = np.concatenate([self._lost, zeros])
        self._lost_s = np.concatenate([self._lost_s, np.zeros(n)])
        self._run = np.concatenate([self._run, zeros + 1])
        self._tid = np.concatenate([self._tid, zeros - 1])

    def _alive(self, budget: float | None) -> np.ndarray:
        """_get_alive_tracklets' rule per row: within the lost-track budget (BaseTracklet.within_lost_track_budget:
        seconds when timestamps are given, else frames) and (confirmed, mature or just seen)."""
        if budget is not None:
            within = self._lost_s <= budget
        else:
            within = self._lost <= self.maximum_frames_without_update
        mature = (self._tid != -1) | (self._run >= self.minimum_consecutive_frames)
        return within & (mature | (self._lost == 0))

    def _keep(self, keep: np.ndarray) -> None:
        if keep.all():
            return
        idx = keep.nonzero()[0]
        self._x, self._p = self._x[idx], self._p[idx]
        self._age, self._lost, self._lost_s = self._age[idx], self._lost[idx], self._lost_s[idx]
        self._run, self._tid = self._run[idx], self._tid[idx]
