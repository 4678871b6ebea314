"""Tracker, zones, lines and events on synthetic scenes whose truth is known by construction.

Each scene is a list of objects with a box per frame (or None while unseen); the detections handed to
the analytics stage are those boxes with pixel noise, in a shuffled order (the tracker must give each
box its own ID back, so masks and keypoints ride with it). Expected IDs, counts and directions follow
from the trajectories, not from a previous run.
"""

from __future__ import annotations

import numpy as np
import pytest

from yolovino.inference.analytics.config import parse_analytics, resolve_classes
from yolovino.inference.analytics.stage import Analytics
from yolovino.inference.core.events import Event, EventKind
from yolovino.inference.core.results import Frame, Results
from yolovino.inference.sources import SourceStats

W, H, FPS = 800, 400, 10.0
NAMES = {0: "person", 2: "car", 16: "dog"}
IMAGE = np.zeros((H, W, 3), np.uint8)


class FakeSource:
    """The members of FrameSource the analytics stage reads (id, fps, stats.reconnects)."""

    def __init__(self, sid: str = "cam"):
        self.id, self.fps, self.stats = sid, FPS, SourceStats()


def box_at(cx: float, cy: float, w: float = 40, h: float = 100) -> tuple[float, float, float, float]:
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def run_scene(
    objects, frames: int, cfg: dict | None = None, source=None, seed: int = 0, pts=None, score=None, cls=None
):
    """objects: (class_id, fn(k) -> box or None) each; score(i, k) / cls(i, k): object i's detection score
    (default 0.9) / class (default its class_id) in frame k. Returns ([(gt index, track id)] per frame,
    events, analytics)."""
    rng = np.random.default_rng(seed)
    analytics = Analytics(resolve_classes(parse_analytics(cfg or {}), NAMES))
    source = source or FakeSource()
    assignments: list[list[tuple[int, int]]] = []
    events: list[Event] = []
    for k in range(frames):
        dets = [(i, c, b) for i, (c, fn) in enumerate(objects) if (b := fn(k)) is not None]
        order = rng.permutation(len(dets))
        dets = [dets[j] for j in order]
        boxes = np.array([d[2] for d in dets], np.float32).reshape(-1, 4) + rng.normal(0, 1.0, (len(dets), 4)).astype(
            np.float32
        )
        results = Results(
            boxes,
            np.array([0.9 if score is None else score(d[0], k) for d in dets], np.float32),
            np.array([d[1] if cls is None else cls(d[0], k) for d in dets], np.int32),
            NAMES,
            (H, W),
            keypoints=np.array([[[d[0], 0, 1]] for d in dets], np.float32).reshape(-1, 1, 3),  # gt index rides along
        )
        t = k / FPS if pts is None else pts(k)
        out, info = analytics.process(source, Frame(IMAGE, k, source.id, t, t), results)
        assert out.track_ids is not None and out.keypoints is not None and info is not None
        assignments.append([(int(kp[0, 0]), int(tid)) for kp, tid in zip(out.keypoints, out.track_ids)])
        events += info.events
    return assignments, events, analytics


def ids_per_object(assignments) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for frame in assignments:
        for gt, tid in frame:
            if tid >= 0:
                out.setdefault(gt, set()).add(tid)
    return out


def of_kind(events, kind):
    return [e for e in events if e.kind == kind]


def test_head_on_crossing_keeps_ids_and_counts_both_directions():
    """Two people walk towards each other on the same row, pass, and go on; a vertical line in the middle."""
    a = (0, lambda k: box_at(100 + 12 * k, 200))
    b = (0, lambda k: box_at(700 - 12 * k, 205))
    cfg = {"lines": [{"name": "mid", "points": [[0.5, 0.0], [0.5, 1.0]]}]}
    assignments, events, analytics = run_scene([a, b], 50, cfg)
    ids = ids_per_object(assignments)
    assert len(ids[0]) == 1 and len(ids[1]) == 1 and ids[0] != ids[1], ids  # no switch at the crossing
    crossed = of_kind(events, EventKind.CROSSED)
    # A->B points down: its right-hand side is the left of the image, so moving left is "in"
    assert sorted((e.track_id, e.direction) for e in crossed) == sorted(
        [(next(iter(ids[0])), "out"), (next(iter(ids[1])), "in")]
    )
    counts = analytics.snapshot()["cam"]["regions"][0]
    assert counts.crossed_in == {"person": 1} and counts.crossed_out == {"person": 1}
    assert len(of_kind(events, EventKind.APPEARED)) == 2


def test_pass_each_other_at_an_angle_and_ids_ride_with_their_boxes():
    """Two objects cross diagonally with overlapping boxes; the detections come shuffled every frame."""
    a = (0, lambda k: box_at(150 + 10 * k, 100 + 5 * k))
    b = (2, lambda k: box_at(150 + 10 * k, 300 - 5 * k, w=60, h=40))
    assignments, _, _ = run_scene([a, b], 45)
    ids = ids_per_object(assignments)
    assert {len(v) for v in ids.values()} == {1} and ids[0] != ids[1]


def test_stop_in_zone_dwell_then_leave():
    """A person walks into a zone, stands 3 s, walks out: one entry, one dwell alert (T = 2 s), one exit."""

    def path(k):
        x = 100 + 20 * min(k, 15) + 20 * max(k - 45, 0)  # walks 15 frames, stands 30 frames (3 s), walks on
        return box_at(x, 200) if x < 780 else None

    cfg = {"zones": [{"name": "desk", "points": [[0.4, 0.2], [0.6, 0.2], [0.6, 0.9], [0.4, 0.9]], "dwell_s": 2.0}]}
    _, events, analytics = run_scene([(0, path)], 80, cfg)
    entered, dwell, left = (of_kind(events, k) for k in (EventKind.ENTERED, EventKind.DWELL, EventKind.LEFT))
    assert len(entered) == 1 and len(dwell) == 1 and len(left) == 1
    # the anchor is inside from x >= 320 (frame 11) to x <= 480 (frame 49): 3.8 s
    assert left[0].duration_s == pytest.approx(3.8, abs=0.15)
    assert dwell[0].duration_s == pytest.approx(2.1, abs=0.15)
    zone = analytics.snapshot()["cam"]["regions"][0]
    assert zone.entries == {"person": 1} and zone.exits == {"person": 1} and zone.occupancy == {}
    # loitering_s (Frigate's loitering_time) is the same setting under another name: the same one alert
    desk = cfg["zones"][0]
    loiter = {k: v for k, v in desk.items() if k != "dwell_s"} | {"loitering_s": 2.0}
    _, events2, _ = run_scene([(0, path)], 80, {"zones": [loiter]})
    assert [(e.kind, e.frame_index) for e in events2] == [(e.kind, e.frame_index) for e in events]
    from yolovino.inference.core.errors import ConfigError

    with pytest.raises(ConfigError, match="loitering_s .* and dwell_s .* are one setting"):
        parse_analytics({"zones": [{**loiter, "dwell_s": 5.0}]})


def test_short_occlusion_keeps_id_long_absence_gives_new_id():
    """Unseen for 0.5 s (< lost_track_s 1 s): same ID. Leaves for 3 s and comes back: a new ID, and the
    first track ends with its duration."""

    def path(k):
        if 20 <= k < 25 or 50 <= k < 80:
            return None
        return box_at(200 + 2 * (k % 50), 200)

    assignments, events, _ = run_scene([(0, path)], 100)
    tracks_in_order = []
    for frame in assignments:
        for _, tid in frame:
            if tid >= 0 and (not tracks_in_order or tracks_in_order[-1] != tid):
                tracks_in_order.append(tid)
    assert len(tracks_in_order) == 2 and tracks_in_order[0] != tracks_in_order[1], tracks_in_order
    ended = of_kind(events, EventKind.ENDED)
    assert len(ended) == 1 and ended[0].track_id == tracks_in_order[0] and ended[0].reason == "lost"
    assert ended[0].duration_s == pytest.approx(4.8, abs=0.2)  # confirmed at frame 1, last seen at frame 49


def test_jitter_on_a_line_counts_once():
    """A person walks down to a horizontal line, stands on it for 2 s while the box shakes by up to 6 px
    each way (sign flipping frame to frame), then walks on across it: exactly one crossing."""
    rng = np.random.default_rng(3)
    jitter = rng.uniform(-6, 6, 200)

    def path(k):
        y = 190 + 6 * k if k < 10 else 250 + jitter[k] if k < 30 else 250 + 6 * (k - 30)
        return box_at(400, y - 50)  # anchor (bottom centre) at y

    cfg = {"lines": [{"name": "gate", "points": [[0.0, 0.625], [1.0, 0.625]]}]}  # y = 250 px
    _, events, _ = run_scene([(0, path)], 45, cfg)
    crossed = of_kind(events, EventKind.CROSSED)
    assert [e.direction for e in crossed] == ["in"], crossed  # downward across a left-to-right line
    # the same anchors counted the naive way (any change of side, no dead band) count the shaking too
    from yolovino.inference.analytics.lines import LineCounter, LineSpec

    naive = LineCounter(LineSpec(name="gate", points=((0.0, 0.625), (1.0, 0.625))), min_frames=1, margin=0.0)
    hits = []
    for k in range(45):
        anchor = np.array([[400.0, path(k)[3]]])
        hits += naive.update([1], ["person"], [0], anchor, k / FPS, (H, W))
    assert len(hits) > 3


def test_going_round_the_end_of_a_line_is_not_a_crossing():
    """The line spans x 0..0.4; an object moving down at x = 0.75 changes side but never cuts the segment."""
    cfg = {"lines": [{"name": "short", "points": [[0.0, 0.5], [0.4, 0.5]]}]}
    _, events, _ = run_scene([(0, lambda k: box_at(600, 40 + 10 * k))], 35, cfg)
    assert of_kind(events, EventKind.CROSSED) == []


def test_class_filter_counts_only_that_class():
    cfg = {"lines": [{"name": "road", "points": [[0.5, 0.0], [0.5, 1.0]], "classes": ["car"]}]}
    person = (0, lambda k: box_at(100 + 12 * k, 120))
    car = (2, lambda k: box_at(100 + 12 * k, 300, w=80, h=50))
    _, events, analytics = run_scene([person, car], 60, cfg)
    crossed = of_kind(events, EventKind.CROSSED)
    assert [e.label for e in crossed] == ["car"]
    assert analytics.snapshot()["cam"]["regions"][0].crossed_out == {"car": 1}


def test_reconnect_resets_the_tracker_and_ids_never_repeat():
    src = FakeSource()
    obj = (0, lambda k: box_at(300 + k, 200))
    rng_state = {}

    def reconnect_at(k):
        if k == 30 and not rng_state:
            src.stats.reconnects += 1
            rng_state["done"] = True
        return k / FPS

    assignments, events, analytics = run_scene([obj], 60, source=src, pts=reconnect_at)
    ids = ids_per_object(assignments)[0]
    assert len(ids) == 2, ids  # one track before, a new one after the reset
    ended = of_kind(events, EventKind.ENDED)
    assert [e.reason for e in ended] == ["reset"] and analytics.snapshot()["cam"]["resets"] == 1


def test_stream_time_jump_resets_the_tracker():
    """A file source looping (pts back to 0), or a stream gap over reset_gap_s, starts tracking afresh."""
    obj = (0, lambda k: box_at(300 + k, 200))
    assignments, events, _ = run_scene([obj], 50, pts=lambda k: (k % 25) / FPS)  # back to 0 at frame 25
    assert len(ids_per_object(assignments)[0]) == 2
    assert [e.reason for e in of_kind(events, EventKind.ENDED)] == ["reset"]
    assignments, _, _ = run_scene([obj], 50, pts=lambda k: k / FPS + (10.0 if k >= 25 else 0.0))
    assert len(ids_per_object(assignments)[0]) == 2


def test_state_is_per_source():
    """The same boxes on two cameras: each camera's track IDs are its own (never mixed)."""
    analytics = Analytics(parse_analytics({}))
    cams = [FakeSource("a"), FakeSource("b")]
    seen: dict[str, set[int]] = {"a": set(), "b": set()}
    for k in range(20):
        for cam in cams:
            r = Results(
                np.array([box_at(100 + 5 * k, 200)], np.float32),
                np.array([0.9], np.float32),
                np.array([0], np.int32),
                NAMES,
                (H, W),
            )
            out, _ = analytics.process(cam, Frame(IMAGE, k, cam.id, k / FPS, 0.0), r)
            seen[cam.id] |= {int(i) for i in out.track_ids if i >= 0}
    assert seen["a"] == {1} and seen["b"] == {1}  # both start at 1: separate trackers


def test_carried_frames_follow_the_motion():
    """Detect every 3rd frame: frames in between get the tracker's boxes, close to the truth."""
    from yolovino.inference.analytics.tracker import Tracker

    tracker = Tracker(fps=FPS)
    errors = []
    for k in range(30):
        truth = np.array([box_at(100 + 8 * k, 200)], np.float32)
        t = k / FPS
        if k % 3 == 0:
            out = tracker.update(Results(truth, np.array([0.9], np.float32), np.array([0], np.int32), NAMES, (H, W)), t)
        else:
            out = tracker.carry(Results.empty(NAMES, (H, W)), t)
            assert out.carried
            if k > 6:
                assert len(out) == 1 and out.class_ids[0] == 0 and out.track_ids[0] == 1
                errors.append(float(np.abs(out.boxes[0] - truth[0]).max()))
    assert errors and max(errors) < 3.0, errors  # 8 px per frame of motion, carried within 3 px


def test_idf1_and_id_switches_on_a_crowded_synthetic_sequence():
    """Eight objects on crossing paths, 10 % of detections missed, 2 px noise: IDF1 and ID switches by
    motmetrics against the known identities."""
    motmetrics = pytest.importorskip("motmetrics")
    rng = np.random.default_rng(7)
    starts = rng.uniform([50, 60], [750, 340], (8, 2))
    vel = rng.uniform(-8, 8, (8, 2))
    miss = rng.random((120, 8)) < 0.1

    def make(i):
        def fn(k):
            x, y = starts[i] + vel[i] * k
            if miss[k, i] or not (20 < x < 780 and 50 < y < 350):
                return None
            return box_at(x, y, 40, 80)

        return (0, fn)

    assignments, _, _ = run_scene([make(i) for i in range(8)], 120, seed=1)
    acc = motmetrics.MOTAccumulator(auto_id=True)
    for k, frame in enumerate(assignments):
        # truth: every object inside the view, also when the detector missed it (a miss is a false negative)
        gts = [i for i in range(8) if make(i)[1](k) is not None or miss[k, i]]
        gts = [i for i in gts if 20 < (starts[i] + vel[i] * k)[0] < 780 and 50 < (starts[i] + vel[i] * k)[1] < 350]
        hyp = [(g, t) for g, t in frame if t >= 0]
        dist = np.full((len(gts), len(hyp)), np.nan)
        for j, (g, _) in enumerate(hyp):
            dist[gts.index(g), j] = 0.0  # a confirmed track sits on the box it was given, nowhere else
        acc.update(gts, [t for _, t in hyp], dist)
    summary = motmetrics.metrics.create().compute(acc, metrics=["idf1", "num_switches", "mota"], name="synthetic")
    idf1, switches = float(summary["idf1"].iloc[0]), int(summary["num_switches"].iloc[0])
    print(f"synthetic, 8 objects, 120 frames, 10 % missed: IDF1 {idf1:.3f}, ID switches {switches}")
    assert idf1 > 0.85 and switches <= 2


def test_events_wait_for_a_confirmed_track_and_carry_its_settled_class():
    """A person whose first detection reads "dog" (legs only, as in the door clip) and a shadow that scores
    0.75 for two frames, then 0.3: the person appears once, as "person", on its third detection; the shadow
    (median score under confirm_score 0.4) never becomes an event, not even "ended"."""
    person = (0, lambda k: box_at(100 + 10 * k, 200))
    shadow = (0, lambda k: box_at(600, 120 - 2 * k, 60, 30))
    cfg = {"lines": [{"name": "mid", "points": [[0.5, 0.0], [0.5, 1.0]]}]}
    score = lambda i, k: 0.9 if i == 0 else (0.75 if k < 2 else 0.3)  # noqa: E731
    cls = lambda i, k: 16 if (i == 0 and k < 2) else 0  # noqa: E731
    assignments, events, _ = run_scene([person, shadow], 50, cfg, score=score, cls=cls)
    appeared = of_kind(events, EventKind.APPEARED)
    assert [(e.label, e.frame_index) for e in appeared] == [("person", 3)], appeared  # lib ID at 1, 3 hits at 3
    assert {e.track_id for e in events} == {appeared[0].track_id}  # nothing at all of the shadow
    assert [e.label for e in of_kind(events, EventKind.CROSSED)] == ["person"]
    assert len(ids_per_object(assignments)[1]) == 1  # the shadow had a track (drawn), just no event


def test_confirm_hits_one_and_no_score_gives_every_track_at_once():
    """confirm_hits 1, confirm_score 0: the first event comes with the library's ID (min_frames 2)."""
    cfg = {"tracker": {"confirm_hits": 1, "confirm_score": 0.0}}
    _, events, _ = run_scene([(0, lambda k: box_at(100 + 10 * k, 200))], 10, cfg, cls=lambda i, k: 16 if k < 2 else 0)
    assert [(e.label, e.frame_index) for e in of_kind(events, EventKind.APPEARED)] == [("dog", 1)]


def test_per_class_filters_drop_detections_before_tracking():
    """Filters per class: a 10 x 10 px "car" (under min_area 1500 px) and a person-labelled box wider than
    tall (max_ratio 1.0) never get an ID; a real person and a real car (80 x 50) do; "*" drops a box that
    fills 60 % of the frame (max_area 0.5), whatever its class."""
    objects = [
        (0, lambda k: box_at(100 + 5 * k, 200)),  # person 40 x 100: kept
        (2, lambda k: box_at(300 + 5 * k, 300, w=80, h=50)),  # car 4000 px: kept
        (2, lambda k: box_at(500, 100 + 2 * k, w=10, h=10)),  # car 100 px: dropped (min_area)
        (0, lambda k: box_at(650, 300, w=120, h=40)),  # "person" 3:1 wide: dropped (max_ratio)
        (16, lambda k: box_at(400, 200, w=700, h=275)),  # a "dog" filling 60 % of the frame: dropped ("*")
    ]
    filters = {"car": {"min_area": 1500}, "person": {"max_ratio": 1.0}, "*": {"max_area": 0.5}}
    assignments, events, _ = run_scene(objects, 20, {"filters": filters})
    assert sorted(ids_per_object(assignments)) == [0, 1]
    assert all(gt in (0, 1) for frame in assignments for gt, _ in frame)  # dropped boxes are not in the results
    assert len(of_kind(events, EventKind.APPEARED)) == 2


def test_filters_are_checked_like_the_rest_of_the_analytics_block():
    from yolovino.inference.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"filters\.person.*min_area 0\.5 is above max_area 0\.1"):
        parse_analytics({"filters": {"person": {"min_area": 0.5, "max_area": 0.1}}})
    with pytest.raises(ConfigError, match=r"filters\.persn"):
        resolve_classes(parse_analytics({"filters": {"persn": {"min_score": 0.5}}}), NAMES)
    with pytest.raises(ConfigError, match="min_score"):
        parse_analytics({"filters": {"person": {"min_score": 1.5}}})


def test_zone_inertia_ignores_a_box_that_flickers_across_the_edge():
    """A person standing on a zone's edge: the anchor is inside on 2 frames of every 5 (a box that jitters
    by 16 px). With the default (2 updates) that is an entry and an exit every 5 frames; with the zone's
    `inertia: 3` it never enters."""

    def path(k):
        return box_at(400, 200 + (8 if k % 5 in (1, 2) else -8))  # anchor y 258 (inside) or 242 (outside)

    zone = {"name": "edge", "points": [[0.3, 0.625], [0.7, 0.625], [0.7, 1.0], [0.3, 1.0]]}  # y >= 250
    _, events, _ = run_scene([(0, path)], 40, {"zones": [zone]})
    assert len(of_kind(events, EventKind.ENTERED)) >= 5
    _, events, _ = run_scene([(0, path)], 40, {"zones": [{**zone, "inertia": 3}]})
    assert of_kind(events, EventKind.ENTERED) == []
