"""What one tracker update costs: the library's per-object ByteTrack against our batched one (bytetrack.py).

    .venv/bin/python -m bench.tracker_cost [--frames 400] [--objects 5 20 50]

Per object count: n boxes moving on straight lines and bouncing off the frame edges (they cross), 1 px
noise, `--miss` of the detections missed (0: the scene of tracker_compare's and analytics_bench's cost
figures; missed boxes make lost tracks, and re-association then runs), scores 0.5-0.95 (both ByteTrack
stages run), 10 fps. Both trackers get the same frames, alternately on each frame (the load of the shared
box hits both alike), and must give the same IDs on every frame (checked). Cost is this thread's CPU time
per update (`time.thread_time`, which other processes' load disturbs less than wall time), median and p95
over the frames after the first 50:
  library   the tracker alone: trackers.ByteTrackTracker.update(sv.Detections) vs BatchedByteTrack.assign
  Tracker   what the analytics stage calls: our Tracker.update (IDs, votes, trails, motion for re-association)
Prints a table, writes bench/results/tracker_cost.json.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from bench.benchlib import REPO, machine_info, machine_line, write_json
from yolovino.inference.analytics.tracker import Tracker, TrackerConfig, library_bytetrack
from yolovino.inference.core.results import Results

NAMES = {0: "person"}


def moving_boxes(n: int, frames: int, seed: int = 1, miss: float = 0.0) -> list[Results]:
    rng = np.random.default_rng(seed)
    lo, hi = np.array([30.0, 50.0]), np.array([738.0, 382.0])
    pos, vel = rng.uniform(lo, hi, (n, 2)), rng.uniform(-6, 6, (n, 2))
    out = []
    for _ in range(frames):
        pos += vel
        bounce = (pos < lo) | (pos > hi)
        vel[bounce] *= -1
        pos = np.clip(pos, lo, hi)
        c = pos[rng.random(n) >= miss]
        boxes = (np.c_[c - [15, 35], c + [15, 35]] + rng.normal(0, 1, (len(c), 4))).astype(np.float32)
        scores = rng.uniform(0.5, 0.95, len(c)).astype(np.float32)
        out.append(Results(boxes, scores, np.zeros(len(c), np.int32), NAMES, (432, 768)))
    return out


def stats(seconds: list[float]) -> dict:
    ms = np.array(seconds[50:]) * 1e3
    return {"median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95))}


def measure(n: int, frames: int, miss: float) -> dict:
    """Per-object and batched, library alone and whole Tracker, alternating frame by frame."""
    import supervision as sv

    seq = moving_boxes(n, frames, miss=miss)
    cfg = TrackerConfig()
    ref, bat = Tracker(cfg, fps=10, library=library_bytetrack), Tracker(cfg, fps=10)
    lib_ref, lib_bat = Tracker(cfg, fps=10, library=library_bytetrack)._lib, Tracker(cfg, fps=10)._lib
    cost: dict[str, list[float]] = {"library_per_object": [], "library_batched": [], "tracker_per_object": []}
    cost["tracker_batched"] = []
    for k, res in enumerate(seq):
        t = k / 10
        t0 = time.thread_time()
        a = ref.update(res, t).track_ids
        t1 = time.thread_time()
        b = bat.update(res, t).track_ids
        t2 = time.thread_time()
        assert a is not None and b is not None and np.array_equal(a, b), f"{n} objects, frame {k}: IDs differ"
        det = sv.Detections(xyxy=res.boxes, confidence=res.scores, class_id=res.class_ids.astype(int))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            t3 = time.thread_time()
            out = lib_ref.update(det, timestamp=t)
            t4 = time.thread_time()
            rows, ids = lib_bat.assign(res.boxes, res.scores, t)
            t5 = time.thread_time()
        assert np.array_equal(out.tracker_id, ids), f"{n} objects, frame {k}: library IDs differ"
        for key, dt in zip(cost, (t4 - t3, t5 - t4, t1 - t0, t2 - t1), strict=True):
            cost[key].append(dt)
    row: dict = {"objects": n, "frames": frames, "miss": miss, "ids_identical": True}
    for key, seconds in cost.items():
        row[key] = stats(seconds)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--objects", type=int, nargs="+", default=[5, 20, 50])
    ap.add_argument("--miss", type=float, default=0.0, help="fraction of detections dropped")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "tracker_cost.json")
    args = ap.parse_args()
    if args.frames <= 60 or any(n < 1 for n in args.objects) or not 0 <= args.miss < 1:
        print("tracker_cost: --frames must be > 60, --objects >= 1, 0 <= --miss < 1", file=sys.stderr)
        return 2
    rows = [measure(n, args.frames, args.miss) for n in args.objects]
    print(machine_line())
    print(f"ms of thread CPU per update, median (p95); {args.miss:.0%} missed; IDs identical on every frame")
    head = f"{'per-object':>19}{'batched':>16}{'x':>6}"
    print(f"{'':>9}{'library alone':<41}{'Tracker (what analytics calls)'}")
    print(f"{'objects':>7}  {head}  {head}")
    for r in rows:
        cells = []
        for a, b in (("library_per_object", "library_batched"), ("tracker_per_object", "tracker_batched")):
            ra, rb = r[a], r[b]
            cells.append(
                f"{ra['median_ms']:9.3f} ({ra['p95_ms']:5.2f}){rb['median_ms']:9.3f} ({rb['p95_ms']:5.2f})"
                f"{ra['median_ms'] / rb['median_ms']:6.1f}"
            )
        print(f"{r['objects']:>7}  " + "  ".join(cells))
    write_json(args.out, {"machine": machine_info(), "rows": rows})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
