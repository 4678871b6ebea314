"""Which tracker: the torch-free candidates of Roboflow's `trackers` on the sample clips, with library defaults.

    .venv/bin/python -m bench.tracker_compare [--model models/yolov8n/int8] [--sheets DIR]

Per candidate (ByteTrack, SORT, OC-SORT; other torch-free libraries were ruled out: norfair needs numpy<2,
supervision 0.31 dropped its ByteTrack, boxmot and Ultralytics' trackers import torch):
  person clip   distinct people tracked (truth 6, counted by eye), entries into the table zone (truth 6),
                IDF1 and ID switches (motmetrics) against the identities counted by eye
  car clip      distinct tracks (truth 4) and crossings of the middle line in/out (truth 2/2)
  synthetic     IDF1 / ID switches on 8 objects on crossing paths with 10 % missed detections
  occluded      IDF1 / ID switches on 8 people walking across a pole (its box cuts theirs, then hides them)
  cost          median and p99 ms per update with 20 moving objects
Detections come from one pass of the detector per clip (default thresholds). `--sheets DIR` also writes the
numbered contact sheets the ground truth was counted from. Prints a table, writes bench/results/trackers.json.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from bench.analyticslib import detect_clip, idf1_person_clip, replay, score
from bench.benchlib import REPO, default_clip, default_model, machine_info, machine_line, write_json
from yolovino.inference.analytics.tracker import Tracker, TrackerConfig
from yolovino.inference.core.results import Results

CANDIDATES = ("bytetrack", "sort", "ocsort")
NAMES = {0: "person"}


def moving_boxes(n: int, frames: int, seed: int = 0, miss: float = 0.0):
    """n boxes moving on straight lines and bouncing off the frame's edges (so all n stay in view), 1 px
    noise, a fraction `miss` of detections dropped; yields (ground-truth ids, Results) per frame."""
    rng = np.random.default_rng(seed)
    lo, hi = np.array([30.0, 50.0]), np.array([738.0, 382.0])
    pos, vel = rng.uniform(lo, hi, (n, 2)), rng.uniform(-6, 6, (n, 2))
    for _ in range(frames):
        pos += vel
        out = (pos < lo) | (pos > hi)
        vel[out] *= -1
        pos = np.clip(pos, lo, hi)
        keep = rng.random(n) >= miss
        c = pos[keep]
        boxes = (np.c_[c - [15, 35], c + [15, 35]] + rng.normal(0, 1, (len(c), 4))).astype(np.float32)
        scores = rng.uniform(0.5, 0.95, len(c)).astype(np.float32)
        yield np.flatnonzero(keep), Results(boxes, scores, np.zeros(len(c), np.int32), NAMES, (432, 768))


def synthetic_idf1(kind: str) -> tuple[float, int]:
    return idf1_of(kind, moving_boxes(8, 150, seed=7, miss=0.1))


def behind_pole(frames: int = 200, seed: int = 5):
    """8 boxes (40 x 120) walking left or right at 4-9 px/frame on rows 30 px apart, across a pole at
    x 360..440: the part of a box behind the pole is cut off (the detector sees the rest), a box narrower
    than 8 px or wholly behind is not detected; they turn round at the frame's edges. Yields (ids, Results)
    per frame."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 800, 8)
    v = rng.uniform(4, 9, 8) * rng.choice([-1, 1], 8)
    rows = 150 + 30 * np.arange(8)
    for _ in range(frames):
        x += v
        v[(x < 20) | (x > 780)] *= -1  # turn round at the frame's edges (a jump would be an ID switch)
        x = x.clip(20, 780)
        gt, boxes = [], []
        for i in range(8):
            x0, x1 = x[i] - 20, x[i] + 20
            if x0 < 440 and x1 > 360:  # behind the pole: keep the part outside it
                x0, x1 = (x0, 360.0) if 360 - x0 >= x1 - 440 else (440.0, x1)
            if x1 - x0 < 8:
                continue
            gt.append(i)
            boxes.append((x0, rows[i] - 120, x1, rows[i]))
        b = (np.array(boxes, np.float32).reshape(-1, 4) + rng.normal(0, 1, (len(boxes), 4))).astype(np.float32)
        scores = rng.uniform(0.75, 0.95, len(gt)).astype(np.float32)
        yield np.array(gt), Results(b, scores, np.zeros(len(gt), np.int32), NAMES, (432, 800))


def idf1_of(kind: str, sequence) -> tuple[float, int]:
    """IDF1 and ID switches (motmetrics) of a tracker of that kind on a (ids, Results) sequence at 10 fps."""
    import motmetrics as mm

    tracker, acc = Tracker(TrackerConfig.for_kind(kind), fps=10), mm.MOTAccumulator(auto_id=True)
    for k, (gt, res) in enumerate(sequence):
        ids = tracker.update(res, k / 10).track_ids
        assert ids is not None
        ok = np.asarray(ids >= 0)
        dist = np.full((len(gt), int(ok.sum())), np.nan)
        dist[np.flatnonzero(ok), np.arange(int(ok.sum()))] = 0.0  # a track sits on the box it was given
        acc.update(list(gt), list(ids[ok]), dist)
    s = mm.metrics.create().compute(acc, metrics=["idf1", "num_switches"], name="scene")
    return float(s["idf1"].iloc[0]), int(s["num_switches"].iloc[0])


def update_cost(kind: str, n: int = 20, frames: int = 400) -> tuple[float, float]:
    tracker, times = Tracker(TrackerConfig.for_kind(kind), fps=10), []
    for k, (_, res) in enumerate(moving_boxes(n, frames, seed=1)):
        t0 = time.perf_counter()
        tracker.update(res, k / 10)
        times.append(time.perf_counter() - t0)
    ms = np.array(times[50:]) * 1e3
    return float(np.median(ms)), float(np.percentile(ms, 99))


def contact_sheets(clip: Path, step: int, out: Path) -> list[Path]:
    import cv2

    out.mkdir(parents=True, exist_ok=True)
    cap, tiles, i = cv2.VideoCapture(str(clip)), [], 0
    while True:
        ok, f = cap.read()
        if not ok:
            break
        if i % step == 0:
            t = cv2.resize(f, (256, 144))
            cv2.putText(t, str(i), (4, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 255), 2)
            tiles.append(t)
        i += 1
    paths = []
    for s in range(0, len(tiles), 36):
        chunk = tiles[s : s + 36] + [np.zeros((144, 256, 3), np.uint8)] * (36 - len(tiles[s : s + 36]))
        path = out / f"{clip.stem}-{s // 36}.png"
        cv2.imwrite(str(path), np.vstack([np.hstack(chunk[r * 6 : (r + 1) * 6]) for r in range(6)]))
        paths.append(path)
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--sheets", type=Path, default=None, help="also write numbered contact sheets of both clips here")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "trackers.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    model = args.model or default_model(script="tracker_compare")
    clips = {name: default_clip(name) for name in ("one-by-one-person-detection.mp4", "car-detection.mp4")}
    if args.sheets:
        for name, clip in clips.items():
            print("sheets:", *contact_sheets(clip, 10 if name.startswith("one") else 5, args.sheets), file=sys.stderr)
    dets = {}
    for name, clip in clips.items():
        print(f"[{name}] detecting ...", file=sys.stderr, flush=True)
        dets[name] = detect_clip(model, clip)
    person, car = dets["one-by-one-person-detection.mp4"], dets["car-detection.mp4"]
    rows: list[dict] = []
    for kind in CANDIDATES:
        tracked: list = []
        p = score(person, *replay(person, tracker=kind, keep=tracked))
        idf1, switches = idf1_person_clip(person, tracked)
        c = score(car, *replay(car, tracker=kind))
        syn = synthetic_idf1(kind)
        occ = idf1_of(kind, behind_pole())
        med, p99 = update_cost(kind)
        rows.append(
            {
                "tracker": kind,
                "person": p,
                "person_idf1": idf1,
                "person_switches": switches,
                "car": c,
                "synthetic_idf1": syn[0],
                "synthetic_switches": syn[1],
                "occluded_idf1": occ[0],
                "occluded_switches": occ[1],
                "ms_median_20": med,
                "ms_p99_20": p99,
            }
        )
        print(f"[{kind}] done", file=sys.stderr, flush=True)
    print("\n" + machine_line())
    print(f"model {model}; truth: 6 people / 6 zone entries; 4 cars, 2 in, 2 out")
    print(
        f"{'tracker':<11}{'people':>7}{'entries':>8}{'IDF1':>7}{'IDsw':>5}{'car tracks':>11}{'in/out':>8}"
        f"{'syn IDF1':>9}{'syn IDsw':>9}{'occ IDF1':>9}{'occ IDsw':>9}{'ms/upd@20':>10}{'p99':>7}"
    )
    for r in rows:
        print(
            f"{r['tracker']:<11}{r['person']['people']:>7}{r['person']['zone_entries']:>8}{r['person_idf1']:7.3f}"
            f"{r['person_switches']:>5}{r['car']['tracks']:>11}{r['car']['in']:>4}/{r['car']['out']:<3}"
            f"{r['synthetic_idf1']:9.3f}{r['synthetic_switches']:>9}{r['occluded_idf1']:9.3f}{r['occluded_switches']:>9}"
            f"{r['ms_median_20']:10.3f}{r['ms_p99_20']:7.2f}"
        )
    write_json(args.out, {"model": str(model), "machine": machine_info(), "rows": rows})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
