"""Counting on rendered scenes: real COCO cut-outs (tests/scenes.py) through the real detector and the real
analytics stage, with occluders, crowds and fast objects. The truth is this script's: where each object is
drawn in each frame, hence which side of a line it is on and how often it crosses.

Coordinates: frames are 640 x 360 at 10 fps; the counting line is the vertical x = 320 drawn top to bottom,
so (see lines.py) moving right is "out" and moving left is "in"; the bent line (a polyline) is described at
its test.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from scenes import PERSON, PERSON_2, H, W, background, cutout, render

from yolovino.inference import InferenceConfig, YoloModel
from yolovino.inference.analytics.config import parse_analytics, resolve_classes
from yolovino.inference.analytics.stage import Analytics
from yolovino.inference.core.events import Event, EventKind
from yolovino.inference.core.results import Frame
from yolovino.inference.sources import SourceStats

FPS = 10.0
LINE = {"name": "mid", "points": [[0.5, 0.0], [0.5, 1.0]]}
CAR = ("000000000247", 0)  # a saloon seen from the side


class FakeSource:
    id, fps = "cam", FPS

    def __init__(self) -> None:
        self.stats = SourceStats()


@pytest.fixture(scope="module")
def model(detect_ir):
    return YoloModel.load(detect_ir, InferenceConfig())


@pytest.fixture(scope="module")
def coco_seg(require_asset):
    return require_asset("datasets/coco128-seg")


Placer = Callable[[int], list]


def run_rendered(model, place: Placer, frames: int, cfg: dict, occluders=()) -> tuple[list[Event], dict]:
    """Render `frames` frames (place(k) -> [(cutout, cx, bottom)]), detect, analyse; events and snapshot."""
    analytics = Analytics(resolve_classes(parse_analytics(cfg), model.names))
    source, bg, events = FakeSource(), background(), []
    for k in range(frames):
        image = render(bg, place(k), occluders)
        t = k / FPS
        _, info = analytics.process(source, Frame(image, k, source.id, t, t), model.predict(image))
        assert info is not None
        events += info.events
    events += analytics.close()
    return events, analytics.snapshot()["cam"]


def crossings(events: list[Event]) -> Counter:
    return Counter(e.direction for e in events if e.kind == EventKind.CROSSED)


def pole(width: int) -> tuple[tuple[int, int, int, int], ...]:
    return ((W // 2 - width // 2, 0, W // 2 + width // 2, H),)


@pytest.mark.parametrize(("speed", "width"), [(6, 100), (10, 110), (-6, 100), (-10, 110)])
def test_person_hidden_behind_a_pole_on_the_line_is_counted_once(model, coco_seg, speed, width):
    """A person (41 px wide) walks across the line behind a pole centred on it: wholly hidden for
    (width - 41) / |speed| frames (1.0 s at 6 px/frame, 0.7 s at 10), partly hidden for 14 frames more."""
    person = cutout(coco_seg, *PERSON, height=150)
    start = 30 if speed > 0 else W - 30
    frames = int((W - 60) / abs(speed))
    events, _ = run_rendered(
        model, lambda k: [(person, start + speed * k, 330)], frames, {"lines": [LINE]}, pole(width)
    )
    expected = Counter({"out" if speed > 0 else "in": 1})
    assert crossings(events) == expected, [(e.kind.value, e.track_id, e.direction) for e in events]
    assert len([e for e in events if e.kind == EventKind.APPEARED]) == 1  # one object, one track


def test_car_behind_a_sign_on_the_line_is_counted_once(model, coco_seg):
    """A car (121 x 50 px) drives left at 8 px/frame behind a 190 px sign over the line: wholly hidden for
    0.9 s, partly for 3 s more."""
    car = cutout(coco_seg, *CAR, height=50)
    sign = ((W // 2 - 95, 200, W // 2 + 95, H),)
    events, _ = run_rendered(model, lambda k: [(car, W - 70 - 8 * k, 320)], 62, {"lines": [LINE]}, sign)
    assert crossings(events) == Counter({"in": 1}), [(e.kind.value, e.track_id, e.label, e.direction) for e in events]


def test_crowd_crossing_both_ways_counts_each_person_once(model, coco_seg):
    """Four people: two walk right, two walk left, on rows 20 px apart, so they overlap and hide each other
    as they pass (the nearer row, lower in the frame, is drawn in front); a pole on the line hides them too."""
    a, b = cutout(coco_seg, *PERSON, height=150), cutout(coco_seg, *PERSON_2, height=150)
    walkers = [(a, 40, 7, 300), (b, 600, -7, 310), (b, 100, 7, 320), (a, 560, -7, 330)]

    def place(k):
        return [(c, x0 + v * k, y) for c, x0, v, y in walkers if 10 < x0 + v * k < W - 10]

    events, _ = run_rendered(model, place, 85, {"lines": [LINE]}, pole(60))
    assert crossings(events) == Counter({"out": 2, "in": 2}), [(e.kind.value, e.track_id, e.direction) for e in events]


@pytest.mark.parametrize(("x", "speed", "expected"), [(0.99, 8, {"out": 1}), (0.01, -8, {"in": 1}), (0.99, -8, {})])
def test_line_at_the_frame_edge_counts_objects_leaving_through_it(model, coco_seg, x, speed, expected):
    """A vertical line 1 % from the left or right border: a person walking out of the frame across it is
    counted once, in the right direction (the border cuts the box, so its anchor never passes the line);
    one walking out through the other border is not."""
    person = cutout(coco_seg, *PERSON, height=150)
    line = {"name": "edge", "points": [[x, 0.0], [x, 1.0]]}
    start = W // 2 - 100 if speed > 0 else W // 2 + 100
    frames = (W // 2 + 160) // abs(speed) + 25  # out of view, and past reassociate_s (2 s): the track ends
    events, snap = run_rendered(model, lambda k: [(person, start + speed * k, 330)], frames, {"lines": [line]})
    assert crossings(events) == Counter(expected), [(e.kind.value, e.track_id, e.direction) for e in events]
    counts = snap["regions"][0]
    assert sum(counts.crossed_in.values()) + sum(counts.crossed_out.values()) == len(expected)


BENT = {"name": "bent", "points": [[0.25, 0.45], [0.5, 0.85], [0.9, 0.85]]}  # (160, 162) (320, 306) (576, 306)


def _path(*legs: tuple[tuple[float, float], tuple[float, float], int]) -> list[tuple[float, float]]:
    """Feet positions frame by frame along straight legs (start, stop, frames), then 4 frames standing."""
    pts = [(x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n) for (x0, y0), (x1, y1), n in legs for i in range(n)]
    return pts + [legs[-1][1]] * 4


@pytest.mark.parametrize(
    ("walkers", "expected"),
    [
        # right across segment 0 at 8 px/frame, then down across segment 1: a bent path cutting each segment
        ([_path(((100, 250), (420, 250), 40), ((420, 250), (420, 350), 13))], {"out": 1, "in": 1}),
        ([_path(((390, 236), (270, 356), 20))], {"in": 1}),  # through the vertex P1, down-left
        ([_path(((270, 356), (390, 236), 20))], {"out": 1}),  # through the vertex, up-right
        # round both ends at once: down past P2 (x 610 > 576), right above P0 (y 150 < 162)
        ([_path(((610, 200), (610, 350), 19)), _path(((40, 150), (320, 150), 19))], {}),
    ],
    ids=["each-segment", "vertex-in", "vertex-out", "beyond-the-ends"],
)
def test_bent_line_counts_each_segment_and_the_vertex_once_and_nothing_beyond_its_ends(
    model, coco_seg, walkers, expected
):
    """A polyline for a bent path (down to the right, then right): "in" is its right-hand side (below and
    left of the bend) at every segment. A person's path across each segment counts once per segment, one
    through the vertex (the detected anchor passes within a few pixels of it, cutting either segment or
    both) once; paths round its ends count nothing."""
    person = cutout(coco_seg, *PERSON, height=150)
    frames = max(len(w) for w in walkers)

    def place(k):
        return [(person, *w[min(k, len(w) - 1)]) for w in walkers]

    events, snap = run_rendered(model, place, frames, {"lines": [BENT]})
    assert crossings(events) == Counter(expected), [(e.kind.value, e.track_id, e.direction) for e in events]
    counts = snap["regions"][0]
    assert sum(counts.crossed_in.values()) == expected.get("in", 0)
    assert sum(counts.crossed_out.values()) == expected.get("out", 0)


def test_fast_car_crossing_at_40_px_per_frame_is_counted(model, coco_seg):
    """A car at 40 px per frame (Ultralytics #25492 lost half of these): a third of its own length per
    frame, it jumps over the line's dead band; the path between updates still cuts the segment."""
    car = cutout(coco_seg, *CAR, height=50)
    events, _ = run_rendered(model, lambda k: [(car, 20 + 40 * k, 320)], 16, {"lines": [LINE]})
    assert crossings(events) == Counter({"out": 1}), [(e.kind.value, e.track_id, e.direction) for e in events]


def test_car_crossing_before_its_track_is_confirmed_is_counted_once_confirmed(model, coco_seg):
    """A car in view from the stream's first frame, just before the line, crossing it at 25 px per frame:
    its track is confirmed on its third detection (confirm_hits), already past the line. The crossing made
    while it was unconfirmed counts then (the line settles a new track where it was first detected); it
    used to be lost, as were the car clip's crossings when detecting every 2nd frame."""
    car = cutout(coco_seg, *CAR, height=50)
    events, _ = run_rendered(model, lambda k: [(car, 280 + 25 * k, 320)], 12, {"lines": [LINE]})
    assert crossings(events) == Counter({"out": 1}), [(e.kind.value, e.track_id, e.direction) for e in events]
    appeared = [e for e in events if e.kind == EventKind.APPEARED]
    assert len(appeared) == 1 and appeared[0].box[0] + appeared[0].box[2] > 2 * 320  # confirmed past the line


def test_parked_car_whose_detection_drops_out_keeps_its_id(model, coco_seg):
    """A parked car in a zone, wholly hidden (a passing van: a box drawn over it) for 1.5 s twice: longer
    than the library keeps a lost track (lost_track_s 1 s), within reassociate_s (2 s). One object: one
    track_appeared, one zone entry, no exit until it drives off at the end."""
    car = cutout(coco_seg, *CAR, height=50)
    zone = {"name": "bay", "points": [[0.3, 0.6], [0.7, 0.6], [0.7, 1.0], [0.3, 1.0]], "anchor": "center"}

    def place(k):
        return [(car, W // 2 if k < 70 else W // 2 + 15 * (k - 70), 320)]

    analytics_cfg = {"zones": [zone]}
    hidden = lambda k: 10 <= k < 25 or 40 <= k < 55  # noqa: E731
    van = (W // 2 - 90, 250, W // 2 + 90, H)
    events: list[Event] = []
    # the van is there on some frames only: render frame by frame
    analytics = Analytics(resolve_classes(parse_analytics(analytics_cfg), model.names))
    source, bg = FakeSource(), background()
    for k in range(90):
        image = render(bg, place(k), (van,) if hidden(k) else ())
        _, info = analytics.process(source, Frame(image, k, source.id, k / FPS, k / FPS), model.predict(image))
        assert info is not None
        events += info.events
    events += analytics.close()
    kinds = Counter(e.kind for e in events)
    assert kinds[EventKind.APPEARED] == 1 and kinds[EventKind.ENTERED] == 1, [
        (e.kind.value, e.track_id) for e in events
    ]
    assert kinds[EventKind.LEFT] == 1  # when it drives out of the bay


def test_parked_car_becomes_stationary_after_stationary_s_and_a_walking_person_never(model, coco_seg):
    """stationary_s 3: a car parked from the start is marked stationary in the results and its events once it
    has stood still 3 s (not before), until it drives off; a person walking past at 6 px/frame never is."""
    car, person = cutout(coco_seg, *CAR, height=50), cutout(coco_seg, *PERSON, height=150)

    def place(k):
        car_x = 100 if k < 60 else 100 - 8 * (k - 60)
        return [(car, car_x, 320), (person, 250 + 6 * k, 340)]

    zone = {"name": "all", "points": [[0, 0], [1, 0], [1, 1], [0, 1]], "dwell_s": 4.0}
    cfg = {"stationary_s": 3.0, "zones": [zone]}
    analytics = Analytics(resolve_classes(parse_analytics(cfg), model.names))
    source, bg, events = FakeSource(), background(), []
    car_flags: dict[int, bool] = {}
    person_flags: list[bool] = []
    for k in range(70):
        image = render(bg, place(k))
        out, info = analytics.process(source, Frame(image, k, source.id, k / FPS, k / FPS), model.predict(image))
        assert info is not None and out.stationary is not None and out.track_ids is not None
        events += info.events
        for det, flag in zip(out.to_dict()["detections"], out.stationary.tolist()):
            assert det.get("stationary", False) == flag  # the JSON lines carry the flag
            if "track_id" not in det:
                continue
            if det["label"] == "car":
                car_flags[k] = flag
            elif det["label"] == "person":
                person_flags.append(flag)
    events += analytics.close()
    assert car_flags and not any(f for k, f in car_flags.items() if k < 30), car_flags  # not before 3 s
    assert all(car_flags.get(k, True) for k in range(35, 60)), car_flags  # marked by 3.5 s, while parked
    assert not any(car_flags.get(k, False) for k in range(63, 70)), car_flags  # driving off: moving again
    assert len(person_flags) > 50 and not any(person_flags)
    by_label = {e.label: e for e in events if e.kind == EventKind.ENDED}
    assert not by_label["person"].stationary and "stationary" not in by_label["person"].to_dict()
    assert not any(e.stationary for e in events if e.label == "person")
    assert not any(e.stationary for e in events if e.kind == EventKind.APPEARED)  # appeared before 3 s
    dwell = {e.label: e for e in events if e.kind == EventKind.DWELL}  # at 4 s in the zone
    assert dwell["car"].stationary and dwell["car"].to_dict()["stationary"] is True
    assert not dwell["person"].stationary


def test_speed_through_a_ground_calibration_is_within_ten_percent(model, coco_seg):
    """A ground rectangle 10 m wide and 20 m long seen in perspective (its far side 40 % of the frame wide,
    its near side 90 %); a car drives along the ground row 17 m deep at 20 km/h, placed frame by frame where
    the homography ground -> image (cv2, from the same four points) puts it. Every speed measured, and the one
    its line_crossed event carries, is within 10 % of 20 km/h, heading 90 (along the width)."""
    import cv2
    import numpy as np

    points = [[0.3, 0.55], [0.7, 0.55], [0.95, 0.95], [0.05, 0.95]]
    to_image = cv2.getPerspectiveTransform(
        np.float32([[0, 0], [10, 0], [10, 20], [0, 20]]), np.float32(points) * np.float32([W, H])
    )
    v = 20 / 3.6  # m/s

    def pixel(x_m: float) -> tuple[float, float]:
        p = to_image @ np.array([x_m, 17.0, 1.0])
        return float(p[0] / p[2]), float(p[1] / p[2])

    start = -3.5  # metres: the car's bottom centre enters on the left
    car = cutout(coco_seg, *CAR, height=50)
    cfg = {"lines": [LINE], "speed": {"points": points, "size_m": [10, 20]}}
    analytics = Analytics(resolve_classes(parse_analytics(cfg), model.names))
    source, bg, events, speeds = FakeSource(), background(), [], []
    for k in range(40):
        cx, bottom = pixel(start + v * k / FPS)
        if cx > W - 20:
            break
        image = render(bg, [(car, cx, bottom)])
        out, info = analytics.process(source, Frame(image, k, source.id, k / FPS, k / FPS), model.predict(image))
        assert info is not None and out.speed_kmh is not None
        events += info.events
        speeds += [d for d in out.to_dict()["detections"] if "speed_kmh" in d]
    events += analytics.close()
    assert len(speeds) >= 10, speeds
    assert all(abs(d["speed_kmh"] - 20) <= 2 and abs(d["heading_deg"] - 90) <= 10 for d in speeds), speeds
    crossed = [e for e in events if e.kind == EventKind.CROSSED]
    assert len(crossed) == 1 and crossed[0].speed_kmh is not None, crossed
    assert abs(crossed[0].speed_kmh - 20) <= 2 and crossed[0].to_dict()["speed_kmh"] == round(crossed[0].speed_kmh, 1)
