"""Tracking and counting on the real sample clips, through the real pipeline and detector, default settings.

Ground truth, counted by eye from contact sheets of the clips (every 10th frame of the person clip, every
5th of the car clip, each frame numbered; the sheets are made by `bench/tracker_compare.py --sheets`):

* one-by-one-person-detection.mp4 (1394 frames, 10 fps): **6 different people**, one at a time: a blonde
  woman in a grey cardigan (frames ~60-200), a man in a black hoodie (~230-445), a long-haired woman in black
  (~505-700), a man in a black T-shirt with glasses (~745-870), a dark-haired woman in a grey cardigan
  (~925-1200), a man in a grey shirt (~1235-1365). Each walks in from the bottom left, stands at the
  high table for 10-25 s and leaves to the right: so 6 entries into the floor zone in front of the table,
  6 exits, and 6 stays longer than 5 s.
* car-detection.mp4 (377 frames, 12.5 fps, camera looking straight down on a lane): **4 cars**: a white car
  driving up the frame (~55-105), a silver car driving down (~185-255) that passes a red car driving up
  (~195-235), and a white car driving down (~315-350). A line across the middle of the lane is crossed
  twice downwards ("in") and twice upwards ("out"). Seen from above, COCO's model calls these cars "car",
  "cell phone", "suitcase", "bus" or "toilet" from frame to frame, so this test counts tracks of any class
  (a track's class is the majority of its detections) instead of filtering on "car".
"""

from __future__ import annotations

import pytest

from yolovino.inference import AsyncEngine, InferenceConfig, YoloModel
from yolovino.inference.analytics.config import parse_analytics, resolve_classes
from yolovino.inference.analytics.stage import Analytics
from yolovino.inference.core.events import EventKind
from yolovino.inference.pipeline import Pipeline
from yolovino.inference.sources import open_source

pytestmark = pytest.mark.slow


def run_clip(detect_ir, clip, analytics_yaml: dict):
    model = YoloModel.load(detect_ir, InferenceConfig())
    analytics = Analytics(resolve_classes(parse_analytics(analytics_yaml), model.names))
    events = []
    with AsyncEngine(model) as engine:
        for fr in Pipeline(engine, [open_source(str(clip), live=False)], analytics=analytics).run():
            assert fr.analytics is not None and fr.results.track_ids is not None
            events += fr.analytics.events
    events += analytics.close()  # the tracks still alive at the end of the clip end here
    return events, next(iter(analytics.snapshot().values()))


def test_person_clip_six_people_each_visit_the_table(detect_ir, require_asset):
    clip = require_asset("videos/one-by-one-person-detection.mp4")
    table = [[0.45, 0.8], [0.7, 0.8], [0.7, 0.96], [0.45, 0.96]]  # the floor in front of the table (feet)
    events, snap = run_clip(
        detect_ir, clip, {"zones": [{"name": "table", "points": table, "classes": ["person"], "dwell_s": 5}]}
    )
    # a track's class is settled when it ends (majority of its detections; the first frames of someone
    # walking in, legs only, can read "dog"); close() ended the tracks still alive at the end of the clip
    people = {e.track_id for e in events if e.kind == EventKind.ENDED and e.label == "person"}
    kinds = [e.kind for e in events]
    summary = f"tracks {sorted(people)}, totals {snap['tracks_total']}, zone {snap['regions'][0]}"
    print(summary)
    assert len(people) == 6, summary
    zone = snap["regions"][0]
    assert zone.entries == {"person": 6} and zone.exits == {"person": 6}, summary
    assert kinds.count(EventKind.DWELL) == 6, summary


def test_car_clip_four_cars_two_each_way(detect_ir, require_asset):
    clip = require_asset("videos/car-detection.mp4")
    # seen from straight above a car has no "feet": its box centre is the point that crosses the line
    middle = {"name": "middle", "points": [[0.0, 0.5], [1.0, 0.5]], "anchor": "center"}
    events, snap = run_clip(detect_ir, clip, {"lines": [middle]})
    tracks = {e.track_id for e in events if e.kind == EventKind.ENDED}
    line = snap["regions"][0]
    summary = f"tracks {sorted(tracks)} ({snap['tracks_total']}), in {line.crossed_in}, out {line.crossed_out}"
    print(summary)
    assert len(tracks) == 4, summary
    crossed = [e for e in events if e.kind == EventKind.CROSSED]
    assert sorted(e.direction for e in crossed) == ["in", "in", "out", "out"], summary
    assert len({e.track_id for e in crossed}) == 4, summary  # four different cars, each counted once


def test_detect_every_third_frame_through_the_pipeline(detect_ir, person_clip):
    """StridedEngine: every frame comes out in order, a third of them inferred; the others carry the
    tracker's boxes with their IDs (the person is in view for the whole 6 s clip)."""
    from yolovino.inference.model.stride import StridedEngine

    model = YoloModel.load(detect_ir, InferenceConfig())
    analytics = Analytics(parse_analytics({"detect_every": 3}))
    with AsyncEngine(model) as base:
        engine = StridedEngine(base, 3)
        out = list(Pipeline(engine, [open_source(str(person_clip), live=False)], analytics=analytics).run())
    analytics.close()
    assert [fr.frame.index for fr in out] == list(range(len(out))) and len(out) > 50
    assert engine.detected == (len(out) + 2) // 3 and engine.skipped == len(out) - engine.detected
    carried = [fr for fr in out if fr.results.carried]
    assert len(carried) == engine.skipped and all(fr.frame.index % 3 for fr in carried)
    with_ids = [fr for fr in carried[4:] if len(fr.results) and (fr.results.track_ids >= 0).all()]
    assert len(with_ids) > 0.8 * len(carried[4:])  # carried boxes keep the person's track
    ids = {int(i) for fr in out for i in fr.results.track_ids if i >= 0}
    assert len(ids) <= 3, ids


@pytest.mark.parametrize("task", ["segment", "pose"])
def test_masks_and_keypoints_ride_with_their_track(task, seg_ir, pose_ir, person_clip):
    """Segment and pose results keep one mask / keypoint set per box after tracking, drawn with the ID."""
    from yolovino.inference.draw.annotate import Annotator

    ir = seg_ir if task == "segment" else pose_ir
    model = YoloModel.load(ir, InferenceConfig())
    analytics = Analytics(parse_analytics({}))
    seen = 0
    with AsyncEngine(model) as engine:
        pipe = Pipeline(engine, [open_source(str(person_clip), live=False)], annotator=Annotator(), analytics=analytics)
        for fr in pipe.run(max_frames=25):
            r = fr.results
            assert r.track_ids is not None and len(r.track_ids) == len(r)
            extra = r.masks if task == "segment" else r.keypoints
            assert extra is not None and len(extra) == len(r)
            for i in range(len(r)):  # the mask / skeleton of box i lies on box i
                x1, y1, x2, y2 = r.boxes[i]
                if task == "segment":
                    ys, xs = extra[i].nonzero() if extra[i].any() else ([y1], [x1])
                    assert x1 - 2 <= min(xs) and max(xs) <= x2 + 2 and y1 - 2 <= min(ys) and max(ys) <= y2 + 2
                else:
                    vis = extra[i][extra[i][:, 2] > 0.5]
                    assert ((vis[:, 0] >= x1 - 2) & (vis[:, 0] <= x2 + 2)).all()
            seen += int((r.track_ids >= 0).sum())
    analytics.close()
    assert seen > 10


@pytest.mark.rtsp
def test_tracker_resets_when_the_camera_reconnects(detect_ir, rtsp_server):
    """A real RTSP camera (the local server looping a clip with a person in view) goes away and comes back:
    the tracks of before end with reason "reset" and the person gets a new ID afterwards."""
    import threading

    from waiting import wait_until

    src = open_source(rtsp_server.url("x"), open_timeout=5, read_timeout=2, backoff=(0.25, 2.0))
    analytics = Analytics(parse_analytics({}))
    events: list = []
    stop = threading.Event()
    with AsyncEngine(YoloModel.load(detect_ir, InferenceConfig())) as engine:
        pipe = Pipeline(engine, [src], analytics=analytics)

        def consume():
            for fr in pipe.run(stop):
                events.extend(fr.analytics.events if fr.analytics else [])

        worker = threading.Thread(target=consume, daemon=True)
        worker.start()
        try:
            appeared = lambda: [e for e in events if e.kind == EventKind.APPEARED]  # noqa: E731
            assert wait_until(lambda: appeared(), 30), "no track before the outage"
            before = {e.track_id for e in appeared()}
            rtsp_server.kill()
            assert wait_until(lambda: src.stats.state == "reconnecting", 20)
            rtsp_server.start()
            assert wait_until(lambda: src.stats.reconnects >= 1, 30), src.stats
            reset = lambda: [e for e in events if e.kind == EventKind.ENDED and e.reason == "reset"]  # noqa: E731
            assert wait_until(lambda: reset() and any(e.track_id not in before for e in appeared()), 30), events[-5:]
        finally:
            stop.set()
            worker.join(15)
    analytics.close()
    after = {e.track_id for e in appeared()} - before
    assert after and min(after) > max(before)  # IDs never repeat within a source
