"""Motion-gated detection (model/motion.py): the `motion:` setting, the motion detector on real frames of the
sample clips, the gate's decisions, and the counts of the sample clips with gating on, through the real
pipeline (the same ground truth as tests/test_analytics_clips.py, which detects every frame)."""

from __future__ import annotations

import functools

import av
import numpy as np
import pytest
from waiting import wait_until

from yolovino.inference import AsyncEngine, InferenceConfig, YoloModel
from yolovino.inference.analytics.config import parse_analytics, resolve_classes
from yolovino.inference.analytics.stage import Analytics
from yolovino.inference.core.errors import ConfigError
from yolovino.inference.core.events import EventKind
from yolovino.inference.core.motion import MotionConfig, TrackNeeds
from yolovino.inference.core.results import Frame, Results
from yolovino.inference.model.motion import MotionDetector, MotionGate
from yolovino.inference.model.stride import StridedEngine
from yolovino.inference.pipeline import Pipeline, frame_time
from yolovino.inference.service.metrics import Metrics
from yolovino.inference.service.supervisor import Outputs, SourcePlan, Supervisor
from yolovino.inference.sources import SourceStats, open_source

PERSON = "videos/one-by-one-person-detection.mp4"  # empty until frame ~55, then a woman walks in (bottom left)


class FakeSource:
    """The members of FrameSource the analytics stage reads (id, fps, stats.reconnects)."""

    def __init__(self, sid: str):
        self.id, self.fps, self.stats = sid, 10.0, SourceStats()


TABLE = [[0.45, 0.8], [0.7, 0.8], [0.7, 0.96], [0.45, 0.96]]


@pytest.fixture(scope="module")
def person_frames(require_asset) -> list[np.ndarray]:
    with av.open(str(require_asset(PERSON))) as c:
        frames = []
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="bgr24"))
            if len(frames) == 110:
                return frames
    raise AssertionError("the person clip is shorter than 110 frames")


def test_motion_setting_forms_and_defaults():
    assert parse_analytics({}).motion is None  # unset: decided by the source
    assert parse_analytics({}).motion_for(live=True) == MotionConfig()
    assert parse_analytics({}).motion_for(live=False) is None
    assert parse_analytics({"motion": True}).motion_for(live=False) == MotionConfig()
    assert parse_analytics({"motion": False}).motion_for(live=True) is None
    block = parse_analytics({"motion": {"keepalive_s": 2, "threshold": 20, "mask": [[[0, 0], [0.3, 0], [0.3, 0.1]]]}})
    assert block.motion is not None and block.motion.keepalive_s == 2 and block.motion.threshold == 20
    assert block.motion_for(live=False) == block.motion
    assert parse_analytics({"tracker": "off"}).motion_for(live=True) is None  # nothing would carry the boxes
    with pytest.raises(ConfigError, match=r"analytics\.motion\.mask.*polygon 0, point 1.*out of the frame"):
        parse_analytics({"motion": {"mask": [[[0, 0], [640, 0], [640, 40]]]}})
    with pytest.raises(ConfigError, match=r"analytics\.motion\.threshold"):
        parse_analytics({"motion": {"threshold": 0}})
    with pytest.raises(ConfigError, match="motion gating needs tracking"):
        parse_analytics({"tracker": "off", "motion": True})


def test_an_empty_scene_with_sensor_noise_is_still_and_a_person_walking_in_moves(person_frames):
    rng = np.random.default_rng(0)
    quiet, noisy = MotionDetector(MotionConfig()), MotionDetector(MotionConfig())
    assert quiet.update(person_frames[0]) and noisy.update(person_frames[0])  # the first frame learns the scene
    for img in person_frames[1:50]:  # the real empty room: its own compression and sensor noise
        noise = rng.normal(0, 4, img.shape)  # and more sensor noise on top (a darker, grainier camera)
        assert not quiet.update(img) and quiet.boxes == []
        assert not noisy.update(np.clip(img + noise, 0, 255).astype(np.uint8)), noisy.changed
    moved = [quiet.update(img) for img in person_frames[50:110]]
    assert sum(moved) > 30, moved  # she walks in from the bottom left and on to the table
    assert all(x0 < 0.75 and y1 > 0.5 for x0, _, _, y1 in quiet.boxes), quiet.boxes


def test_a_mask_ignores_motion_inside_it(person_frames):
    table = [[0.42, 0.0], [0.75, 0.0], [0.75, 1.0], [0.42, 1.0]]  # where she stands at the table
    free, masked = MotionDetector(MotionConfig()), MotionDetector(MotionConfig(mask=(table,)))
    inside = outside = 0
    for img in person_frames[:-1]:
        moved, moved_masked = free.update(img), masked.update(img)
        if not moved or img is person_frames[0]:
            continue
        if all(x0 >= 0.44 and x1 <= 0.73 for x0, _, x1, _ in free.boxes):
            inside += 1  # all of this frame's motion lies in the mask
            assert not moved_masked, masked.boxes
        elif all(x1 <= 0.41 for _, _, x1, _ in free.boxes):
            outside += 1  # walking in, left of the mask: still seen
            assert moved_masked and masked.boxes == free.boxes
    assert inside >= 10 and outside >= 1, (inside, outside)


def test_a_light_change_counts_as_motion_and_is_relearned(person_frames):
    det = MotionDetector(MotionConfig())
    for img in person_frames[:20]:
        det.update(img)
    dark = (person_frames[20] * 0.4).astype(np.uint8)
    assert det.update(dark) and det.changed > 0.8 and det.boxes == [(0.0, 0.0, 1.0, 1.0)]
    assert not det.update((person_frames[21] * 0.4).astype(np.uint8))  # the darker scene is the new background


def test_the_gate_runs_the_detector_on_motion_as_tracks_need_and_every_keepalive(person_frames):
    now, need = [100.0], [None]  # type: list[TrackNeeds | None]
    gate = MotionGate(MotionConfig(keepalive_s=5), tracks=lambda: need[0], clock=lambda: now[0])
    still = person_frames[1:40]

    def step(img):
        wanted = gate.decide(img)
        if wanted:
            gate.ran()
        now[0] += 0.125  # 8 fps, exact in binary floating point
        return wanted

    assert step(person_frames[0])  # nothing known yet
    assert [step(img) for img in still[:20]] == [False] * 20
    need[0] = TrackNeeds(0.0)  # a track is new or missing: every frame although nothing moves in the picture
    assert step(still[20]) and step(still[21])
    need[0] = TrackNeeds(0.5)  # every track stands still: every 4th frame at 8 fps
    assert [step(img) for img in still[22:30]] == [False, False, False, True] * 2
    need[0] = None  # no track
    quiet = [step(img) for img in still[30:] * 8]  # 72 frames, 9 s: one keepalive run, 5 s after the last
    assert quiet.count(True) == 1 and quiet.index(True) == 39, quiet
    assert gate.frames == 1 + 20 + 2 + 8 + 72 and gate.motion_frames == 1


def test_motion_of_moving_tracks_runs_the_detector_every_moving_interval_and_motion_elsewhere_at_once(person_frames):
    """A woman walks in (frames 60-109, she moves on every one of them). While a confirmed track moves where
    she moves, the detector runs every moving_interval_s (every 2nd frame at 8 fps, 0.2 s); while the moving
    tracks are elsewhere, her motion is unexplained and runs it on every frame; moving_interval_s 0 keeps the
    detector on every moving frame."""
    walk = person_frames[60:110]
    probe = MotionDetector(MotionConfig())
    for img in person_frames[:60]:  # the empty room: the background
        probe.update(img)
    regions = []
    for img in walk:
        assert probe.update(img), "she moves on every frame"
        regions += probe.boxes
    x0, y0 = min(b[0] for b in regions), min(b[1] for b in regions)
    x1, y1 = max(b[2] for b in regions), max(b[3] for b in regions)
    assert x1 < 0.8, "her motion leaves the right of the frame still"
    hers = TrackNeeds(0.5, True, ((x0, y0, x1, y1),))
    # boxes of moving tracks on the other side of the frame
    elsewhere = TrackNeeds(0.5, True, ((x1 + 0.05, 0.0, 1.0, 1.0),))

    def ran(cfg: MotionConfig, needs: TrackNeeds) -> list[bool]:
        now = [0.0]
        gate = MotionGate(cfg, tracks=lambda: needs, clock=lambda: now[0])
        out = []
        for img in person_frames[:110]:
            wanted = gate.decide(img)
            if wanted:
                gate.ran()
            out.append(wanted)
            now[0] += 0.125
        return out[60:]  # the walk

    every_2nd = ran(MotionConfig(), hers)
    assert sum(every_2nd) == 25 and all(a != b for a, b in zip(every_2nd, every_2nd[1:])), every_2nd
    assert all(ran(MotionConfig(), elsewhere))
    assert all(ran(MotionConfig(moving_interval_s=0), hers))
    slow = ran(MotionConfig(moving_interval_s=0.5), TrackNeeds(0.25, True, hers.boxes))  # a fast track: 0.25 s
    assert sum(slow) == 25, slow


def test_track_needs_follow_new_moving_fast_missing_and_still_tracks():
    """Analytics.track_needs on tracks fed frame by frame: a new track needs every frame; a confirmed one
    walking 3 px per frame (0.15 of its size per second) may be carried for 0.3 of its size's travel (capped by
    lost_track_s / 2) and its box, widened and stretched back along its way, is where motion is its own; one
    five times faster allows 0.3 s; a missing one is moving but explains no motion; one standing still
    needs lost_track_s / 2."""
    names = {0: "person"}
    analytics = Analytics(resolve_classes(parse_analytics({"motion": True}), names))
    source = FakeSource("hall")
    t = 0.0

    def feed(*boxes: list[float]) -> None:
        nonlocal t
        arr = np.array(boxes, np.float32).reshape(-1, 4)
        n = len(arr)
        results = Results(arr, np.full(n, 0.9, np.float32), np.zeros(n, np.int32), names, (400, 800))
        analytics.process(source, Frame(np.zeros((400, 800, 3), np.uint8), int(t * 10), "hall", t, t), results)
        t += 0.1

    assert analytics.track_needs("hall") is None  # nothing seen yet
    early = []
    for k in range(6):
        feed([100 + 3 * k, 100, 200 + 3 * k, 300])  # 30 px/s, size 200: 0.3 * 200 / 30 = 2 s, capped at 0.5
        early.append(analytics.track_needs("hall"))
    assert TrackNeeds(0.0) in early, early  # new: every frame until confirmed
    needs = early[-1]
    assert needs is not None and needs.moving and needs.interval_s == pytest.approx(0.5)
    ((x0, y0, x1, y1),) = needs.boxes
    # widened by 0.25 x 200 + 30 px/s x 0.5 s = 65 px, and back along the way it came since it was tracked
    assert (y0 * 400, x1 * 800, y1 * 400) == pytest.approx((35, 215 + 65, 365), abs=0.5)
    assert 115 - 65 - 15 <= x0 * 800 <= 115 - 65 - 9, x0 * 800  # its first 1-2 detections were before its ID
    for k in range(6, 11):
        feed([100 + 10 * k, 100, 200 + 10 * k, 300])  # 100 px/s: 0.3 * 200 / 100 = 0.6 s; then faster
    for k in range(11, 14):
        feed([200 + 20 * (k - 10), 100, 300 + 20 * (k - 10), 300])  # 200 px/s: 0.3 s
    needs = analytics.track_needs("hall")
    assert needs is not None and needs.moving and needs.interval_s == pytest.approx(0.3, rel=0.05)
    feed()  # not seen on this detection
    assert analytics.track_needs("hall") == TrackNeeds(0.5, True, ())
    for _ in range(6):
        feed([260, 100, 360, 300])  # found again, then standing still
    needs = analytics.track_needs("hall")
    assert needs is not None and not needs.moving and needs.interval_s == pytest.approx(0.5)


def test_a_car_that_parks_keeps_its_id_while_the_detector_skips_most_frames():
    """Gate -> detector -> tracker, on a rendered scene: an empty lot for 1 s, a car drives in for 3 s and
    parks for 30 s. Every frame is detected until its track is confirmed, then every 2nd (moving_interval_s
    0.2 s at 10 fps); parked, the detector runs every lost_track_s / 2, its motion (the background learning
    the car) being the car's own, and the car is neither lost nor announced again (Frigate#195)."""
    rng = np.random.default_rng(1)
    names = {2: "car"}
    analytics = Analytics(resolve_classes(parse_analytics({"motion": True}), names))
    source = FakeSource("lot")
    clock = [0.0]
    gate = MotionGate(MotionConfig(), tracks=functools.partial(analytics.track_needs, "lot"), clock=lambda: clock[0])
    ran, ids, events = [], set(), []
    grain = [np.clip(rng.normal(90, 3, (400, 800, 3)), 0, 255).astype(np.uint8) for _ in range(6)]
    for k in range(340):
        t = clock[0] = k / 10
        img = grain[k % len(grain)].copy()  # fresh-looking sensor noise every frame
        x = 100 + 10 * min(k - 10, 30)  # in from frame 10, parked at x = 400 from frame 40
        if k >= 10:
            img[250:330, x : x + 160] = 230
        wanted = gate.decide(img)
        if wanted:
            gate.ran()
        if wanted and k >= 10:
            box = np.array([[x, 250, x + 160, 330]], np.float32) + rng.normal(0, 1.0, (1, 4)).astype(np.float32)
            results = Results(box, np.array([0.9], np.float32), np.array([2], np.int32), names, (400, 800))
        else:
            results = Results.empty(names, (400, 800))
            results.carried = not wanted
        ran.append(wanted)
        out, info = analytics.process(source, Frame(img, k, "lot", t, t), results)
        assert info is not None and out.track_ids is not None
        ids.update(int(i) for i in out.track_ids if i >= 0)
        events += info.events
    assert not any(ran[2:10]), ran[:10]  # the empty lot, once calibrated
    assert all(ran[10:13]), ran[10:13]  # a new track: every frame until it is confirmed (3 detections)
    assert ran[13:40] == [False, True] * 13 + [False] or ran[13:40] == [True, False] * 13 + [True], ran[13:40]
    parked = ran[70:]
    assert 0.15 < sum(parked) / len(parked) < 0.3, sum(parked)  # every 0.5 s (lost_track_s 1.0 / 2)
    assert len(ids) == 1, ids
    assert [e.kind for e in events] == [EventKind.APPEARED]  # never lost, never announced again


@pytest.mark.slow
def test_person_clip_counts_unchanged_with_motion_gating(detect_ir, require_asset):
    """Six people, six entries into and exits from the floor zone, six stays: as detecting every frame."""
    clip = require_asset(PERSON)
    model = YoloModel.load(detect_ir, InferenceConfig())
    yaml = {"motion": True, "zones": [{"name": "table", "points": TABLE, "classes": ["person"], "dwell_s": 5}]}
    cfg = resolve_classes(parse_analytics(yaml), model.names)
    analytics = Analytics(cfg)
    src = open_source(str(clip), live=False)
    motion = cfg.motion_for(src.live)
    assert motion is not None
    events = []
    with AsyncEngine(model) as base:
        engine = StridedEngine(base, 1, frame_time)
        engine.set_gate(src.id, MotionGate(motion, tracks=functools.partial(analytics.track_needs, src.id)))
        for fr in Pipeline(engine, [src], analytics=analytics).run():
            assert fr.analytics is not None
            events += fr.analytics.events
    events += analytics.close()
    snap = next(iter(analytics.snapshot().values()))
    detected, frames = engine.per_source[src.id]
    people = {e.track_id for e in events if e.kind == EventKind.ENDED and e.label == "person"}
    summary = f"detected {detected}/{frames}, people {sorted(people)}, zone {snap['regions'][0]}"
    print(summary)
    assert frames == 1394 and detected < frames, summary  # the empty stretches between visitors are skipped
    assert len(people) == 6, summary
    zone = snap["regions"][0]
    assert zone.entries == {"person": 6} and zone.exits == {"person": 6}, summary
    assert [e.kind for e in events].count(EventKind.DWELL) == 6, summary


@pytest.mark.slow
def test_car_clip_counts_unchanged_with_motion_gating_in_the_service(detect_ir, require_asset):
    """The headless service's path (plan -> supervisor -> gate): four cars, two crossings each way, and the
    detector's share of the frames in the metrics."""
    clip = require_asset("videos/car-detection.mp4")
    middle = {"name": "middle", "points": [[0.0, 0.5], [1.0, 0.5]], "anchor": "center"}
    cfg = parse_analytics({"motion": True, "lines": [middle]})
    model = YoloModel.load(detect_ir, InferenceConfig())
    plan = SourcePlan(
        "lane", str(clip), "lane", False, detect_ir, InferenceConfig(), analytics=resolve_classes(cfg, model.names)
    )
    events: list = []
    metrics = Metrics()
    sup = Supervisor(metrics, Outputs(annotate=False), lambda fr: events.extend(fr.analytics.events))
    try:
        sup.apply([plan], strict=True)
        assert wait_until(sup.all_ended, 180), "the clip did not run to its end"
        assert sup.analytics is not None
        line = sup.analytics.snapshot()["lane"]["regions"][0]
        snap = metrics.snapshot()["lane"]
        page = metrics.render()
    finally:
        sup.close()
    crossed = [e for e in events if e.kind == EventKind.CROSSED]
    appeared = {e.track_id for e in events if e.kind == EventKind.APPEARED}
    summary = f"detector share {snap['detector_share']:.2f}, appeared {sorted(appeared)}, line {line}"
    print(summary)
    assert snap["frames"] == 377 and 0.3 < snap["detector_share"] < 0.95, summary  # gaps between cars skipped
    assert snap["detector_share"] == snap["detector_frames"] / 377
    assert f'yolo_detector_share{{source="lane"}} {snap["detector_share"]}' in page
    assert len(appeared) == 4, summary
    assert sorted(e.direction for e in crossed) == ["in", "in", "out", "out"], summary
    assert len({e.track_id for e in crossed}) == 4, summary
