"""Issue 28, fault 2 (part): the zone polygon's self-crossing check is a sweep, not every pair of edges.

The old quadratic check is kept here as the reference: the sweep must give the same answer on random
polygons (general ones, simple star-shaped ones, and ones on a coarse grid, full of touching vertices,
collinear overlaps and repeated points), and a 10,000-point zone is checked in well under a second or two
(it took minutes)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from yolovino.inference.analytics.geometry import segments_intersect, self_intersects


def reference(points) -> bool:
    """The quadratic check as it was: every pair of non-adjacent edges."""
    pts = [tuple(p) for p in points]
    n = len(pts)
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue
            if segments_intersect(pts[i], pts[(i + 1) % n], pts[j], pts[(j + 1) % n]):
                return True
    return False


def star(n: int, rng: np.random.Generator, jitter: float = 0.3) -> list[tuple[float, float]]:
    """A simple (non-crossing) polygon: points at increasing angles, random radii."""
    angles = np.sort(rng.uniform(0, 2 * math.pi, n))
    radii = 0.5 * (1 - jitter * rng.uniform(0, 1, n))
    return [(0.5 + r * math.cos(t), 0.5 + r * math.sin(t)) for t, r in zip(angles, radii)]


def test_small_chunks_give_the_same_answers():
    rng = np.random.default_rng(7)
    for _ in range(50):
        pts = [tuple(p) for p in rng.integers(0, 5, (int(rng.integers(4, 30)), 2)) / 5]
        assert self_intersects(pts, chunk=3) == self_intersects(pts) == reference(pts)


@pytest.mark.parametrize("seed", range(40))
def test_same_answers_as_the_quadratic_check_on_random_polygons(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 40))
    cases = {
        "random": [tuple(p) for p in rng.uniform(0, 1, (n, 2))],
        "star": star(n, rng),
        "grid": [tuple(p) for p in rng.integers(0, 4, (n, 2)) / 4],  # touching, collinear, repeated points
        "star, one point moved": star(n, rng),
    }
    k = int(rng.integers(0, n))
    cases["star, one point moved"][k] = tuple(rng.uniform(0, 1, 2))
    for name, pts in cases.items():
        assert self_intersects(pts) == reference(pts), (name, pts)


# (polygon, crosses itself)
DEGENERATE = [
    ([(0, 0), (1, 0), (0.5, 1)], False),
    ([(0, 0), (1, 1), (1, 0), (0, 1)], True),  # a bow tie
    ([(0, 0), (1, 0), (1, 1), (0.5, 0), (0, 1)], True),  # a vertex touching another edge
    ([(0, 0), (1, 0), (1, 1), (1, 1), (0, 1)], True),  # a repeated point: the edges around it touch
    ([(0, 0), (2, 0), (1, 0), (1, 1)], True),  # a spike back along an edge touches it
    ([(0, 0), (2, 0), (2, 1), (1, 0), (0, 1)], True),
    ([(0, 0), (1, 0), (1, 1), (0, 1), (0, 0.5), (0, 0.2)], False),  # collinear edges that do not overlap
    ([(0, 0), (1, 0), (1, 1), (0, 1), (0, 0.5), (0, 0.7)], True),  # collinear edges that overlap
]


@pytest.mark.parametrize(("pts", "crosses"), DEGENERATE)
def test_degenerate_polygons(pts, crosses):
    assert reference(pts) == crosses
    assert self_intersects(pts) == crosses


@pytest.mark.parametrize("shape", ["star", "zigzag"])
def test_ten_thousand_points_are_checked_fast(shape):
    rng = np.random.default_rng(1)
    if shape == "star":
        pts = star(10_000, rng)
    else:  # long thin teeth: every edge spans the whole height, the worst case for a sweep over x
        xs = np.linspace(0.01, 0.99, 5_000)
        pts = [(x, 0.99 if k % 2 else 0.1) for k, x in enumerate(xs)] + [(0.99, 0.01), (0.01, 0.01)]
    start = time.perf_counter()
    assert self_intersects(pts) is False
    took = time.perf_counter() - start
    assert took < 5.0, f"{took:.1f} s for {len(pts)} points"
    i, j = len(pts) // 3, 2 * len(pts) // 3
    pts[i], pts[j] = pts[j], pts[i]  # two far-apart vertices swapped: their edges cross
    assert self_intersects(pts) is True
