"""Counting lines as segments and polylines (analytics/lines.py, geometry.Polyline), on anchor paths whose
truth is known by construction: which segment a path cuts, where it goes round an end, where it wiggles.

The polyline of these tests, in pixels of a 640 x 360 frame: P0 (160, 162) -> P1 (320, 306) -> P2 (576, 306),
a path coming down to the right and turning right. Its right-hand side ("in") is the region below and left
of it; above and right is "out".
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from yolovino.inference.analytics.geometry import Polyline
from yolovino.inference.analytics.lines import LineCounter, LineSpec
from yolovino.inference.core.events import Scene
from yolovino.inference.draw.scene import LINE_COLOR, draw_scene

W, H = 640, 360
BENT = ((0.25, 0.45), (0.5, 0.85), (0.9, 0.85))


def count(points, path, min_frames: int = 2) -> tuple[Counter, LineCounter]:
    """Feed one track's anchor path (pixels, one point per update) to a LineCounter; the directions counted."""
    counter = LineCounter(LineSpec(name="l", points=points), min_frames=min_frames)
    hits = []
    for k, (x, y) in enumerate(path):
        hits += counter.update([1], ["person"], [0], np.array([[x, y]], np.float64), k / 10, (H, W))
    return Counter(h.direction for h in hits), counter


def walk(start, stop, steps: int) -> list[tuple[float, float]]:
    return [tuple(p) for p in np.linspace(start, stop, steps)]


def test_a_two_point_line_keeps_the_straight_line_distance():
    """The 2-point form is the straight line through A and B, as before polylines: the same signed distance
    (the formula lines were counted with) at every point, beyond the ends too."""
    a, b = np.array([100.0, 50.0]), np.array([500.0, 300.0])
    p = np.random.default_rng(1).uniform(-200, 900, (500, 2))
    d = b - a
    before = (d[0] * (p[:, 1] - a[1]) - d[1] * (p[:, 0] - a[0])) / float(np.hypot(*d))
    np.testing.assert_allclose(Polyline(np.array([a, b])).signed_distance(p), before, atol=1e-9)


def test_polyline_sides_are_one_region_each_along_the_bend():
    line = Polyline(np.array([[160.0, 162.0], [320.0, 306.0], [576.0, 306.0]]))
    right = [(100, 250), (400, 340), (250, 340), (300, 330), (600, 340)]  # below / left of the bend
    left = [(300, 200), (400, 250), (330, 290), (600, 250), (100, 100)]  # above / right of it
    assert (line.signed_distance(np.array(right, np.float64)) > 0).all()
    assert (line.signed_distance(np.array(left, np.float64)) < 0).all()
    # below the vertex, between the two segments' normals, the nearest point is the vertex itself: the
    # distance is to it, on the side of the pseudo-normal; just above segment 1, the distance to that segment
    dist = line.signed_distance(np.array([[317.0, 316.0], [330.0, 296.0]]))
    np.testing.assert_allclose(dist, [109**0.5, -10.0])


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (walk((100, 250), (420, 250), 41), {"out": 1}),  # across segment 0, rightwards
        (walk((420, 250), (100, 250), 41), {"in": 1}),  # the same, back
        (walk((450, 230), (450, 350), 16), {"in": 1}),  # across segment 1, downwards
        (walk((450, 350), (450, 230), 16), {"out": 1}),  # the same, up
        (walk((100, 250), (420, 250), 41) + walk((420, 258), (420, 350), 12), {"out": 1, "in": 1}),  # bent path
        (walk((390, 236), (250, 376), 21), {"in": 1}),  # through the vertex P1, down-left
        (walk((250, 376), (390, 236), 21), {"out": 1}),  # through the vertex, up-right
        (walk((610, 200), (610, 350), 20), {}),  # past the end P2: changes side round the end, no crossing
        (walk((40, 150), (320, 150), 30), {}),  # past the end P0
    ],
)
def test_each_segment_the_vertex_and_beyond_the_ends(path, expected):
    assert count(BENT, path)[0] == Counter(expected)


def test_one_step_through_the_vertex_or_over_the_bend_counts_once():
    """A fast track: one frame step cuts both segments at the vertex (counted once), or cuts segment 1 and
    segment 0 on its way over the bend, in and straight out again (its side does not change: no count)."""
    through = [(400, 226)] * 3 + [(240, 386)] * 3  # the step passes exactly through P1 (320, 306)
    assert count(BENT, through)[0] == Counter({"in": 1})
    sharp = ((0.2, 0.2), (0.5, 0.8), (0.8, 0.2))  # a V; a step across its tip cuts both arms
    over = [(200, 260)] * 3 + [(440, 260)] * 3
    assert count(sharp, over)[0] == Counter()
    into = [(200, 240)] * 3 + [(320, 200)] * 3  # one arm only: into the V
    assert count(sharp, into)[0] == Counter({"out": 1})


def test_wiggling_on_the_vertex_counts_once():
    """A track that stops on the vertex, shaking by up to 6 px each way for 3 s, then walks on."""
    rng = np.random.default_rng(5)
    shake = [(320 + dx, 306 + dy) for dx, dy in rng.uniform(-6, 6, (30, 2))]
    path = walk((400, 226), (320, 306), 11) + shake + walk((320, 306), (240, 386), 11)
    assert count(BENT, path)[0] == Counter({"in": 1})


def test_leaving_the_frame_across_a_polyline_at_the_edge():
    """A polyline along the right border (a bent one) is crossed by the path out of the frame (end's exit
    path), from the track's settled side; a track leaving by the other border is not counted."""
    edge = ((0.99, 0.0), (0.97, 0.5), (0.99, 1.0))  # drawn downwards: its right-hand side is the frame (y down)
    counts, counter = count(edge, walk((300, 200), (610, 200), 20))
    assert counts == Counter()  # the anchor never gets past it
    hit = counter.end(1, 2.0, exit_path=((610, 200), (2000, 200)))
    assert hit is not None and hit.direction == "out"
    counts, counter = count(edge, walk((300, 200), (20, 200), 20))
    assert counter.end(1, 2.0, exit_path=((20, 200), (-2000, 200))) is None


def test_the_annotator_draws_every_segment():
    img = np.zeros((H, W, 3), np.uint8)
    pts = [(160, 162), (320, 306), (576, 306)]
    draw_scene(img, Scene(lines=[("bent", pts)]), 2, 0.6)
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        x, y = round(x0 + (x1 - x0) / 4), round(y0 + (y1 - y0) / 4)  # a quarter along: line, not arrow
        assert tuple(img[y, x]) == LINE_COLOR, (x, y)


def test_the_ui_editor_takes_a_polyline_and_refuses_a_self_crossing_one():
    """The UI's line editor (ui/analytics_state.py) goes through the YAML's checks: 3 clicked points make a
    polyline, listed point by point; a line crossing itself is refused with one line."""
    from yolovino.inference.core.errors import ConfigError
    from yolovino.ui.analytics_state import AnalyticsState

    state = AnalyticsState()
    assert "3 points" in state.add("line", "path", "0.25,0.45; 0.5,0.85; 0.9,0.85")
    assert state.lines[0].points == ((0.25, 0.45), (0.5, 0.85), (0.9, 0.85))
    assert "0.250,0.450; 0.500,0.850; 0.900,0.850" in state.geometry_md()
    with pytest.raises(ConfigError, match="crosses itself"):
        state.add("line", "knot", "0.1,0.5; 0.6,0.5; 0.6,0.9; 0.3,0.2")
