"""What the Review tab costs on a store of 10,000 events, and what the store's durability costs its writer.

    .venv/bin/python -m bench.review_bench [--events 10000] [--repeats 5] [--out bench/results/review.json]

1. filter   a store of `--events` events (4 cameras, 7 days, 5 kinds, 4 classes, 2 zones, 2 lines; a snapshot
            of the sample clip on each event with one, 400 distinct JPEGs) written through the real `db`
            consumer; then each filter of the tab as the tab runs it (ui/review_data.py: the indexed query,
            the count, the rows of the newest 100 with their thumbnails), cold (thumbnail cache empty) and
            warm (median of `--repeats`), and the counts-over-time plot's query. Target: < 0.5 s each.
2. writer   commit latency per delivery (2 events) with synchronous=FULL (what the store uses) against
            NORMAL, runs alternated in one process: the price of surviving a power cut.
Prints tables and writes bench/results/review.json. Wall time is what a person waits for; CPU time beside it.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2

from bench.benchlib import REPO, default_clip, machine_info, machine_line, write_json
from yolovino.inference.core.events import Event, EventKind
from yolovino.inference.notify.base import Delivery
from yolovino.inference.notify.config import StoreOutput
from yolovino.inference.notify.eventdb import EventStore
from yolovino.inference.notify.store import EventStoreConsumer
from yolovino.ui import review_data as rd

TARGET_S = 0.5
CAMERAS = ["gate", "yard", "street", "lobby"]
LABELS = ["person", "person", "person", "car", "car", "bicycle", "dog"]


def snapshots(folder: Path, n: int) -> list[str]:
    """`n` JPEGs of the sample clip's frames (what the snapshot writer would have written)."""
    folder.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(default_clip()))
    out: list[str] = []
    frame = None
    while len(out) < n:
        ok, img = cap.read()
        if not ok:  # past the clip's end: start again
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            if frame is None:
                raise SystemExit(f"review_bench: cannot read {default_clip()}")
            continue
        frame = img
        path = folder / f"{len(out):05d}.jpg"
        cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 85])
        out.append(str(path))
    cap.release()
    return out


def fill(db: Path, n: int, snaps: list[str], seed: int = 7) -> float:
    """Write `n` events through the real consumer (deliveries of 1-3 events); returns the seconds it took."""
    rng = random.Random(seed)
    store = EventStoreConsumer(StoreOutput(path=str(db)))
    start, now = time.perf_counter(), time.time()
    written = 0
    while written < n:
        cam, ts = rng.choice(CAMERAS), now - 7 * 86400 * (1 - written / n)
        batch = []
        for _ in range(min(rng.randint(1, 3), n - written)):
            kind = rng.choice(list(EventKind))
            track = written // 3
            where: dict = {}
            if kind in (EventKind.ENTERED, EventKind.LEFT, EventKind.DWELL):
                where = {"zone": rng.choice(["door", "drive"])}
            elif kind == EventKind.CROSSED:
                where = {"line": rng.choice(["in-gate", "curb"]), "direction": rng.choice(["in", "out"])}
            snap = snaps[written % len(snaps)] if kind != EventKind.ENDED else None
            box = (100.0, 80.0, 220.0, 300.0)
            label = rng.choice(LABELS)
            batch.append(Event(kind, ts, cam, track, 0, label, 0.8, box, written, ts - now, snapshot=snap, **where))
            written += 1
        store.handle(Delivery(cam, batch))
    store.close()
    return time.perf_counter() - start


FILTERS: list[tuple[str, dict]] = [
    ("all (newest 100)", {}),
    ("camera", {"source": "yard"}),
    ("kind", {"kind": "line_crossed"}),
    ("class", {"label": "dog"}),
    ("zone", {"zone": "door"}),
    ("line + camera", {"line": "curb", "source": "street"}),
    ("camera + kind + 1 day", {"source": "gate", "kind": "zone_entered", "day": 1}),
]


def timed(fn) -> tuple[float, float, Any]:
    """(wall s, process CPU s, result) of one call."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def _row(name: str, matches: int, rows: int, cold: tuple[float, float, Any], warm: list) -> dict:
    return {
        "filter": name,
        "matches": int(matches),
        "rows": int(rows),
        "cold_s": round(cold[0], 4),
        "cold_cpu_s": round(cold[1], 4),
        "warm_s": round(statistics.median(w for w, _, _ in warm), 4),
        "warm_cpu_s": round(statistics.median(c for _, c, _ in warm), 4),
    }


def filter_costs(db: Path, repeats: int) -> list[dict]:
    """Each filter as the tab runs it: cold (empty thumbnail cache), then warm (median of `repeats`)."""
    import pandas  # noqa: F401  (imported with Gradio when the app starts: not a cost of the first plot)

    store = EventStore(db)
    newest = store.query(limit=1)[0].data["timestamp"]
    out = []
    for name, given in FILTERS:
        f = dict(given)
        if f.pop("day", None):
            f.update(since=newest - 2 * 86400, until=newest - 86400)
        thumbs = rd.Thumbnails()
        cold = timed(lambda f=f, t=thumbs: rd.rows(store, f, t))
        warm = [timed(lambda f=f, t=thumbs: rd.rows(store, f, t)) for _ in range(repeats)]
        table, _, total = cold[2]
        out.append(_row(name, total, len(table), cold, warm))
    for bucket in ("hour", "day"):
        runs = [timed(lambda b=bucket: rd.counts_frame(store, b)) for _ in range(repeats + 1)]
        frame = runs[0][2]
        out.append(_row(f"counts per {bucket} (plot)", frame["count"].sum(), len(frame), runs[0], runs[1:]))
    runs = [timed(lambda: rd.choices(store)) for _ in range(repeats + 1)]
    out.append(_row("dropdown choices (on open)", sum(len(v) for v in runs[0][2].values()), 0, runs[0], runs[1:]))
    return out


def commit_latency(folder: Path, deliveries: int, rounds: int) -> dict:
    """Median and p95 ms per delivery (one transaction of 2 events), FULL and NORMAL alternated."""
    out: dict[str, list[float]] = {"FULL": [], "NORMAL": []}
    for r in range(rounds):
        for mode in ("FULL", "NORMAL"):
            store = EventStoreConsumer(StoreOutput(path=str(folder / f"lat-{mode}-{r}.db")))
            store._db.execute(f"PRAGMA synchronous={mode}")
            now = time.time()
            for i in range(deliveries):
                batch = [
                    Event(EventKind.ENTERED, now, "cam", i, 0, "person", 0.9, (1, 2, 3, 4), i, 0.0, zone="door"),
                    Event(EventKind.CROSSED, now, "cam", i, 0, "person", 0.9, (1, 2, 3, 4), i, 0.0, line="gate"),
                ]
                t0 = time.perf_counter()
                store.handle(Delivery("cam", batch))
                out[mode].append(time.perf_counter() - t0)
            store.close()
    res: dict[str, Any] = {}
    for mode, xs in out.items():
        xs.sort()
        res[mode] = {
            "median_ms": round(1000 * statistics.median(xs), 3),
            "p95_ms": round(1000 * xs[int(0.95 * len(xs))], 3),
        }
    res["ratio_full_over_normal"] = round(res["FULL"]["median_ms"] / max(res["NORMAL"]["median_ms"], 1e-9), 2)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--deliveries", type=int, default=300, help="per writer run (latency)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "review.json")
    args = ap.parse_args()
    if not default_clip().exists():
        print(f"review_bench: the sample clip {default_clip()} is missing", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="review-bench-") as tmp:
        folder = Path(tmp)
        snaps = snapshots(folder / "snaps", 400)
        fill_s = fill(folder / "events.db", args.events, snaps)
        db_mb = (folder / "events.db").stat().st_size / 1e6
        costs = filter_costs(folder / "events.db", args.repeats)
        with sqlite3.connect(folder / "events.db") as conn:
            plan = conn.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM events WHERE source = ? AND kind = ? ORDER BY ts DESC LIMIT 100",
                ("gate", "zone_entered"),
            ).fetchall()
        latency = commit_latency(folder, args.deliveries, rounds=2)
    info = machine_info()
    print(machine_line(info))
    print(f"store: {args.events} events written in {fill_s:.1f} s through the db consumer ({db_mb:.1f} MB)")
    print(f"query plan, camera + kind: {' / '.join(str(p[-1]) for p in plan)}")
    print(
        f"\n1. Review tab filters on {args.events} events (query, count, 100 rows + thumbnails), target < {TARGET_S} s"
    )
    print(f"{'filter':30s} {'matches':>8s} {'rows':>5s} {'cold s':>8s} {'cpu s':>7s} {'warm s':>8s} {'cpu s':>7s}  ok")
    for r in costs:
        ok = "yes" if max(r["cold_s"], r["warm_s"]) < TARGET_S else "NO"
        print(
            f"{r['filter']:30s} {r['matches']:8d} {r['rows']:5d} {r['cold_s']:8.3f} {r['cold_cpu_s']:7.3f} "
            f"{r['warm_s']:8.3f} {r['warm_cpu_s']:7.3f}  {ok}"
        )
    print(f"\n2. writer: commit per delivery (2 events), {args.deliveries} deliveries x 2 rounds, alternated")
    for mode in ("FULL", "NORMAL"):
        print(
            f"   synchronous={mode:6s} median {latency[mode]['median_ms']:.2f} ms, p95 {latency[mode]['p95_ms']:.2f} ms"
        )
    print(f"   FULL / NORMAL median: {latency['ratio_full_over_normal']:.2f}x")
    report = {
        "machine": info,
        "events": args.events,
        "fill_s": round(fill_s, 2),
        "db_mb": round(db_mb, 2),
        "target_s": TARGET_S,
        "filters": costs,
        "all_under_target": all(max(r["cold_s"], r["warm_s"]) < TARGET_S for r in costs),
        "commit_latency": latency,
    }
    write_json(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
