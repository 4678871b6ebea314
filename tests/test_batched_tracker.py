"""The batched ByteTrack (analytics/bytetrack.py) against the library's per-object ByteTrack, frame by frame.

The batched tracker claims the library's algorithm with the same numbers: so on every frame of a real clip
(car-detection.mp4 through the real detector, every frame and every 3rd), of a rendered crowd scene
(tests/scenes.py: real COCO cut-outs crossing behind a pole, through the detector) and of synthetic
sequences that exercise every branch (low-score second stage, misses, gaps, duplicate timestamps, a reset),
both must give the same track IDs, and their Kalman states must be equal to the bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from scenes import PERSON, PERSON_2, H, W, background, cutout, render

from yolovino.inference import AsyncEngine, InferenceConfig, YoloModel
from yolovino.inference.analytics.bytetrack import iou
from yolovino.inference.analytics.tracker import Tracker, TrackerConfig, library_bytetrack
from yolovino.inference.core.results import Results
from yolovino.inference.sources import open_source

NAMES = {0: "person"}


def twin_run(frames: list[tuple[float, Results]], cfg: TrackerConfig | None = None, reset_at: int = -1) -> int:
    """Both trackers on the same (t, results) frames; asserts equal IDs and states on each; returns the
    number of distinct IDs given (so a caller can check the sequence tracked something)."""
    cfg = cfg or TrackerConfig()
    ref, batched = Tracker(cfg, fps=10, library=library_bytetrack), Tracker(cfg, fps=10)
    seen: set[int] = set()
    for k, (t, res) in enumerate(frames):
        if k == reset_at:
            assert [tr.id for tr in ref.reset()] == [tr.id for tr in batched.reset()]
        a, b = ref.update(res, t).track_ids, batched.update(res, t).track_ids
        assert a is not None and b is not None
        assert np.array_equal(a, b), f"frame {k}: per-object {a.tolist()} batched {b.tolist()}"
        lib_ref, lib_b = ref._lib, batched._lib
        states = [tr.state_estimator.kf.state for tr in lib_ref.tracks]
        assert np.array_equal(np.array(states).reshape(-1, 8, 1), lib_b._x), f"frame {k}: Kalman states differ"
        covs = [tr.state_estimator.kf.state_covariance for tr in lib_ref.tracks]
        assert np.array_equal(np.array(covs).reshape(-1, 8, 8), lib_b._p), f"frame {k}: covariances differ"
        assert [tr.tracker_id for tr in lib_ref.tracks] == [tr.tracker_id for tr in lib_b.tracks]
        assert ref.alive() == batched.alive()
        seen.update(int(i) for i in b if i >= 0)
    return len(seen)


def crowd(n: int, frames: int, seed: int, miss: float) -> list[tuple[float, Results]]:
    """n boxes on straight lines bouncing off the frame edges (they cross and overlap), 1 px noise, scores
    0.3..0.95 (both ByteTrack stages, some never start a track), a fraction `miss` dropped."""
    rng = np.random.default_rng(seed)
    lo, hi = np.array([30.0, 50.0]), np.array([738.0, 382.0])
    pos, vel = rng.uniform(lo, hi, (n, 2)), rng.uniform(-8, 8, (n, 2))
    out = []
    for k in range(frames):
        pos += vel
        bounce = (pos < lo) | (pos > hi)
        vel[bounce] *= -1
        pos = np.clip(pos, lo, hi)
        c = pos[rng.random(n) >= miss]
        boxes = (np.c_[c - [15, 35], c + [15, 35]] + rng.normal(0, 1, (len(c), 4))).astype(np.float32)
        scores = rng.uniform(0.3, 0.95, len(c)).astype(np.float32)
        out.append((k / 10, Results(boxes, scores, np.zeros(len(c), np.int32), NAMES, (432, 768))))
    return out


def test_same_ids_and_states_on_a_crossing_crowd_with_misses_gaps_and_a_reset():
    frames = crowd(20, 300, seed=11, miss=0.15)
    # gaps (the detector skipping frames: gap-scaled Q), a repeated timestamp (no predict), an empty frame
    frames = frames[:100] + frames[100:160:3] + [frames[159]] + [(16.05, frames[0][1][:0])] + frames[170:]
    assert twin_run(frames, reset_at=200) >= 20


def test_same_ids_with_other_settings_and_a_one_frame_start():
    cfg = TrackerConfig(min_frames=1, activation=0.4, high_score=0.8, min_iou=0.3, lost_track_s=0.3)
    assert twin_run(crowd(12, 200, seed=4, miss=0.3), cfg) >= 12


def test_library_signature_gives_the_librarys_detections():
    """BatchedByteTrack.update(sv.Detections) returns what ByteTrackTracker.update does: same rows, same order,
    same tracker ids."""
    import supervision as sv
    from trackers import ByteTrackTracker

    from yolovino.inference.analytics.bytetrack import BatchedByteTrack

    ref, batched = ByteTrackTracker(frame_rate=10), BatchedByteTrack(frame_rate=10)
    for t, res in crowd(10, 60, seed=2, miss=0.2):
        det = sv.Detections(xyxy=res.boxes, confidence=res.scores, class_id=res.class_ids.astype(int))
        a, b = ref.update(det, timestamp=t), batched.update(det, timestamp=t)
        assert np.array_equal(a.xyxy, b.xyxy) and np.array_equal(a.tracker_id, b.tracker_id)
        assert np.array_equal(a.confidence, b.confidence)


def test_iou_is_supervisions_to_the_bit():
    import supervision as sv

    rng = np.random.default_rng(0)
    for _ in range(300):
        n, m = rng.integers(1, 25, 2)
        a = rng.uniform(0, 500, (n, 2))
        a = np.c_[a, a + rng.uniform(0, 150, (n, 2))]
        a[: n // 3, 2] = a[: n // 3, 0]  # zero-width boxes: a zero union somewhere
        b = rng.uniform(0, 500, (m, 2))
        b = np.c_[b, b + rng.uniform(0, 150, (m, 2))].astype(np.float32)
        assert np.array_equal(iou(a, b), sv.box_iou_batch(a, b))


@pytest.fixture(scope="module")
def model(detect_ir):
    return YoloModel.load(detect_ir, InferenceConfig())


@pytest.mark.slow
def test_same_ids_on_the_car_clip_every_frame_and_every_third(model, require_asset):
    src = open_source(str(require_asset("videos/car-detection.mp4")), live=False)
    fps = src.fps or 12.5
    with AsyncEngine(model) as engine:  # both cores
        frames = [(f.index / fps, res) for _, res, f in engine.stream(((f.image, f) for f in src), with_userdata=True)]
    assert len(frames) > 300
    assert twin_run(frames) >= 4  # the clip's 4 cars at least (plus the labels' flicker)
    assert twin_run(frames[::3]) >= 4


@pytest.mark.slow
def test_same_ids_on_a_rendered_crowd_behind_a_pole(model, require_asset):
    coco = require_asset("datasets/coco128-seg")
    a, b = cutout(coco, *PERSON, height=150), cutout(coco, *PERSON_2, height=150)
    walkers = [(a, 40, 7, 300), (b, 600, -7, 310), (b, 100, 7, 320), (a, 560, -7, 330)]
    bg, pole = background(), ((W // 2 - 30, 0, W // 2 + 30, H),)
    frames = []
    for k in range(85):
        placed = [(c, x0 + v * k, y) for c, x0, v, y in walkers if 10 < x0 + v * k < W - 10]
        frames.append((k / 10, model.predict(render(bg, placed, pole))))
    assert twin_run(frames) >= 4
