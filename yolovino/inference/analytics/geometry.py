"""Plane geometry of zones and lines, in pixels: polygons (inside tests, self-crossing checks) and segments.

Pure NumPy, no state: zones.py and lines.py prepare their shapes with these once per frame size.
"""

from __future__ import annotations

import numpy as np

Point = tuple[float, float]


def to_pixels(points, frame_hw: tuple[int, int]) -> np.ndarray:
    h, w = frame_hw
    return np.asarray(points, np.float64) * np.array([w, h], np.float64)


class PolygonEdges:
    """A polygon's edges, prepared once per frame size for vectorised point-in-polygon tests."""

    def __init__(self, polygon: np.ndarray):
        self.x1, self.y1 = polygon[:, 0], polygon[:, 1]
        x2, self.y2 = np.roll(self.x1, -1), np.roll(self.y1, -1)
        dy = self.y2 - self.y1
        self.slope = np.divide(x2 - self.x1, dy, out=np.zeros_like(dy), where=dy != 0)

    def inside(self, points: np.ndarray) -> np.ndarray:
        """(N,) bool: which of the (N, 2) points lie inside the polygon (even-odd ray casting)."""
        if not len(points):
            return np.zeros(0, bool)
        x, y = points[:, 0:1], points[:, 1:2]
        straddles = (self.y1 > y) != (self.y2 > y)
        x_cross = self.x1 + (y - self.y1) * self.slope
        return ((straddles & (x < x_cross)).sum(axis=1) % 2).astype(bool)


def _orient(a, b, c) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def segments_intersect(p1, p2, q1, q2) -> bool:
    """True when segment p1-p2 and segment q1-q2 share a point (touching counts)."""
    d1, d2 = _orient(q1, q2, p1), _orient(q1, q2, p2)
    d3, d4 = _orient(p1, p2, q1), _orient(p1, p2, q2)
    if ((d1 > 0) != (d2 > 0) or d1 == 0 or d2 == 0) and ((d3 > 0) != (d4 > 0) or d3 == 0 or d4 == 0):
        if 0 in (d1, d2, d3, d4):  # collinear cases: check the bounding boxes overlap
            return (
                min(p1[0], p2[0]) <= max(q1[0], q2[0])
                and min(q1[0], q2[0]) <= max(p1[0], p2[0])
                and min(p1[1], p2[1]) <= max(q1[1], q2[1])
                and min(q1[1], q2[1]) <= max(p1[1], p2[1])
            )
        return True
    return False


def self_intersects(points, chunk: int = 1 << 20) -> bool:
    """True when two non-adjacent edges of the closed polygon share a point (as `segments_intersect` says).

    A sweep over x instead of every pair (a 10,000-point zone took minutes at start-up): edges sorted by
    their left end; an edge can only meet the edges whose left end lies within its own x extent, a
    contiguous run of that order (found by binary search). Those candidate pairs, taken `chunk` at a time,
    are pruned by their y extents and get the exact test, vectorised: O(n log n) plus the pairs whose
    boxes overlap (few in a real zone outline). The exact test is the arithmetic of `segments_intersect`,
    so the answers are the same."""
    pts = np.asarray([tuple(p) for p in points], dtype=np.float64).reshape(-1, 2)
    n = len(pts)
    if n < 4:
        return False  # every pair of a triangle's edges is adjacent
    a, b = pts, np.roll(pts, -1, axis=0)  # edge i runs a[i] -> b[i]
    xlo, xhi = np.minimum(a[:, 0], b[:, 0]), np.maximum(a[:, 0], b[:, 0])
    ylo, yhi = np.minimum(a[:, 1], b[:, 1]), np.maximum(a[:, 1], b[:, 1])
    order = np.argsort(xlo, kind="stable")
    first = np.arange(1, n + 1)  # sorted position of each edge's first candidate
    counts = np.maximum(np.searchsorted(xlo[order], xhi[order], side="right") - first, 0)
    total = np.cumsum(counts)
    pos = 0
    while pos < n:
        stop = max(int(np.searchsorted(total, (total[pos - 1] if pos else 0) + chunk, side="right")), pos + 1)
        c = counts[pos:stop]
        k = int(c.sum())
        pos, start = stop, pos
        if not k:
            continue
        owner = np.repeat(np.arange(start, stop), c)  # sorted position of the pair's first edge
        offset = np.arange(k) - np.repeat(np.cumsum(c) - c, c)
        i, j = order[owner], order[first[owner] + offset]
        keep = (ylo[j] <= yhi[i]) & (ylo[i] <= yhi[j])
        gap = np.abs(i - j)
        keep &= (gap != 1) & (gap != n - 1)  # adjacent edges share a vertex
        i, j = i[keep], j[keep]
        if len(i) and _crossing(a[i], b[i], a[j], b[j]).any():
            return True
    return False


def _crossing(p1: np.ndarray, p2: np.ndarray, q1: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """`segments_intersect(p1[k], p2[k], q1[k], q2[k])` for every k, with the same float arithmetic."""

    def orient(a, b, c):
        return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])

    d1, d2 = orient(q1, q2, p1), orient(q1, q2, p2)
    d3, d4 = orient(p1, p2, q1), orient(p1, p2, q2)
    straddle = (((d1 > 0) != (d2 > 0)) | (d1 == 0) | (d2 == 0)) & (((d3 > 0) != (d4 > 0)) | (d3 == 0) | (d4 == 0))
    collinear = (d1 == 0) | (d2 == 0) | (d3 == 0) | (d4 == 0)
    lo_p, hi_p, lo_q, hi_q = np.minimum(p1, p2), np.maximum(p1, p2), np.minimum(q1, q2), np.maximum(q1, q2)
    boxes = ((lo_p <= hi_q) & (lo_q <= hi_p)).all(axis=1)
    return straddle & (~collinear | boxes)


class Polyline:
    """An open polyline P0 -> P1 -> ... in pixels (a counting line: 2 points or more), prepared once per frame
    size for the signed distance of many points at once and for cut tests of one path.

    Its sides are the right-hand and the left-hand side of the walking direction P0 -> P1 -> ..., one
    continuous region each along the bends. To give every point of the plane a side, the first and last
    segments extend as rays beyond the ends (a 2-point line: the whole straight line through it, as a line
    always counted here): the polyline and its two rays split the plane in two. Whether a track's path
    really cut the drawn polyline is `cuts`, asked only when its side changed.
    """

    def __init__(self, points: np.ndarray):
        self.points = np.asarray(points, np.float64)
        self.a, b = self.points[:-1], self.points[1:]
        self.b = b
        self.d = b - self.a
        length = np.hypot(self.d[:, 0], self.d[:, 1])
        self.len2 = length**2
        self.normal = np.stack([-self.d[:, 1], self.d[:, 0]], axis=1) / length[:, None]  # to the right (y down)
        n = len(self.d)
        self.lo, self.hi = np.zeros(n), np.ones(n)
        self.lo[0], self.hi[-1] = -np.inf, np.inf  # the end segments extend as rays
        # at an inner vertex the side is the pseudo-normal's (the sum of the two segments' normals): the
        # side of a point whose nearest point of the polyline is that vertex (Baerentzen & Aanaes, 2005)
        self.vertex_normal = np.zeros_like(self.points)
        self.vertex_normal[1:-1] = self.normal[:-1] + self.normal[1:]
        # the columns signed_distance broadcasts (plain attributes: indexing them again per call costs more
        # than the arithmetic for a few tracks), and the segments as tuples for cuts' scalar test
        self.ax, self.ay, self.dx, self.dy = self.a[:, 0], self.a[:, 1], self.d[:, 0], self.d[:, 1]
        self.nx, self.ny = self.normal[:, 0], self.normal[:, 1]
        self.single = n == 1
        self._segments = [(tuple(map(float, a)), tuple(map(float, b))) for a, b in zip(self.a, self.b)]

    def signed_distance(self, p: np.ndarray) -> np.ndarray:
        """(N,) distances of the (N, 2) points to the polyline (its end rays included): + on its right-hand
        side, - on its left. For 2 points: the signed distance to the straight line through them (the
        formula lines were always counted with, and as cheap: this runs for every track on every frame)."""
        x, y = p[:, 0:1], p[:, 1:2]  # (N, 1): columns broadcast against the (S,) segments
        rx, ry = x - self.ax, y - self.ay
        perp = rx * self.nx + ry * self.ny  # (N, S) signed distance to each segment's straight line
        if self.single:
            return perp[:, 0]
        t = np.clip((rx * self.dx + ry * self.dy) / self.len2, self.lo, self.hi)
        gx, gy = rx - t * self.dx, ry - t * self.dy
        dist2 = gx * gx + gy * gy
        rows = np.arange(len(p))
        k = dist2.argmin(axis=1)
        tk = t[rows, k]
        dist = np.sqrt(dist2[rows, k])
        vertex = np.where(tk <= 0.0, k, np.where(tk >= 1.0, k + 1, 0))  # 0: inside a segment (or its ray)
        inner = (vertex > 0) & (vertex < len(self.points) - 1)
        at_vertex = ((p - self.points[vertex]) * self.vertex_normal[vertex]).sum(axis=1)
        side = np.where(inner, np.sign(at_vertex), np.sign(perp[rows, k]))
        return side * dist

    def cuts(self, p: Point | list[float] | np.ndarray, q: Point | list[float] | np.ndarray) -> bool:
        """True when the path p -> q shares a point with a drawn segment (touching a vertex counts)."""
        p, q = (float(p[0]), float(p[1])), (float(q[0]), float(q[1]))
        return any(segments_intersect(p, q, a, b) for a, b in self._segments)


def polyline_problem(points) -> str | None:
    """Why an open polyline cannot be a counting line (None when it can): a segment without length, one
    that folds straight back onto the previous one, or two segments that cross or touch (a line crossing
    itself has no consistent sides)."""
    pts = np.asarray([tuple(p) for p in points], dtype=np.float64).reshape(-1, 2)
    d = np.diff(pts, axis=0)
    length = np.hypot(d[:, 0], d[:, 1])
    if (length < 1e-3).any():
        i = int(np.argmax(length < 1e-3))
        return f"points {i} and {i + 1} are the same"
    u = d / length[:, None]
    cross = u[:-1, 0] * u[1:, 1] - u[:-1, 1] * u[1:, 0]
    dot = (u[:-1] * u[1:]).sum(axis=1)
    back = (dot < 0) & (np.abs(cross) < 1e-6)
    if back.any():
        return f"the line folds back on itself at point {int(np.argmax(back)) + 1}"
    first, second = np.triu_indices(len(d), k=2)  # every pair of non-adjacent segments
    if len(first) and _crossing(pts[first], pts[first + 1], pts[second], pts[second + 1]).any():
        return "the line crosses itself: list the points in order along it"
    return None
