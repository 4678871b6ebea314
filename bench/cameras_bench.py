"""Cameras per box: how many live RTSP cameras one box keeps up with, with analytics, detecting every Nth frame.

    .venv/bin/python -m bench.cameras_bench [--model models/yolov8n/int8] [--strides 1,2,3] [--max-cameras 12]
                                           [--seconds 15] [--warmup 5] [--clip one-by-one-person-detection.mp4]

tests/rtsp_server.py on 127.0.0.1 loops the clip at its own frame rate; each camera is its own RTSP session
(keep-latest, as headless runs it), all sharing one engine, with tracking, a zone and a line, events to a
JSON-lines file and the drawing on. For each stride, cameras are added one at a time until the p95
capture-to-result latency exceeds 2 frame intervals or more than 1 % of the frames read are dropped
(keep-latest drops a frame the pipeline had no time for); the last count within both limits is the answer.
The server runs on the same cores (its CPU share is printed). Prints a table, writes bench/results/cameras.json.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
import time
from pathlib import Path

import av
import numpy as np

from bench.benchlib import (
    REPO,
    RtspServer,
    default_clip,
    default_model,
    machine_info,
    machine_line,
    video_only,
    write_json,
)
from yolovino.inference import AsyncEngine, InferenceConfig, YoloModel
from yolovino.inference.analytics.config import parse_analytics, resolve_classes
from yolovino.inference.analytics.stage import Analytics
from yolovino.inference.draw.annotate import Annotator
from yolovino.inference.model.stride import StridedEngine
from yolovino.inference.notify.hub import EventHub
from yolovino.inference.pipeline import Pipeline
from yolovino.inference.sources import open_source

SETUP = {
    "zones": [{"name": "table", "points": [[0.45, 0.8], [0.7, 0.8], [0.7, 0.96], [0.45, 0.96]]}],
    "lines": [{"name": "door", "points": [[0.3, 0.0], [0.3, 1.0]]}],
}


def run(model: YoloModel, url: str, cameras: int, stride: int, seconds: float, warmup: float, events: Path) -> dict:
    sources = [open_source(url, live=True, name=f"cam{i}", wait=True) for i in range(cameras)]
    cfg = resolve_classes(parse_analytics({**SETUP, "events": {"jsonl": str(events)}}), model.names)
    analytics = Analytics(cfg, hub=EventHub.build({s.id: cfg.events for s in sources}))
    engine = AsyncEngine(model)
    eng = StridedEngine(engine, stride) if stride > 1 else engine
    pipe = Pipeline(eng, sources, annotator=Annotator(), analytics=analytics)
    stop, lat = threading.Event(), []
    t_measure = t_end = None
    start: dict[str, tuple[int, int]] = {}
    for fr in pipe.run(stop):
        now = time.monotonic()
        if t_measure is None and all(s.stats.frames_read for s in sources):
            t_measure = now + warmup
        if t_measure is not None and now >= t_measure:
            if not start:
                start = {s.id: (s.stats.frames_read, s.stats.frames_dropped) for s in sources}
                t_measure = now
            lat.append(fr.latency_ms)
            if now - t_measure >= seconds:
                t_end = now
                stop.set()
                break
    read = sum(s.stats.frames_read - start.get(s.id, (0, 0))[0] for s in sources)
    dropped = sum(s.stats.frames_dropped - start.get(s.id, (0, 0))[1] for s in sources)
    pipe.close()
    engine.close()
    analytics.close()
    span = (t_end or time.monotonic()) - (t_measure or time.monotonic())
    return {
        "cameras": cameras,
        "stride": stride,
        "fps": len(lat) / max(span, 1e-6),
        "frames_read": read,
        "dropped": dropped,
        "drop_rate": dropped / max(read, 1),
        "p50_ms": float(np.percentile(lat, 50)) if lat else float("nan"),
        "p95_ms": float(np.percentile(lat, 95)) if lat else float("nan"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--clip", default="one-by-one-person-detection.mp4")
    ap.add_argument("--strides", default="1,2,3")
    ap.add_argument("--max-cameras", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cameras.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    model_path = args.model or default_model(script="cameras_bench")
    model = YoloModel.load(model_path, InferenceConfig())
    clip = Path(args.clip) if Path(args.clip).exists() else default_clip(args.clip)
    with av.open(str(clip)) as c:
        fps = float(c.streams.video[0].average_rate or 25)
    interval_ms = 1000.0 / fps
    rows, best = [], {}
    with tempfile.TemporaryDirectory() as tmp, RtspServer(video_only(clip, Path(tmp))) as server:
        for stride in (int(s) for s in args.strides.split(",")):
            best[stride] = 0
            for n in range(1, args.max_cameras + 1):
                cpu0, t0 = server.cpu_seconds(), time.monotonic()
                r = run(model, server.url("x"), n, stride, args.seconds, args.warmup, Path(tmp) / "events.jsonl")
                r["server_cpu_share"] = (server.cpu_seconds() - cpu0) / max(time.monotonic() - t0, 1e-6) / 2
                r["ok"] = r["p95_ms"] <= 2 * interval_ms and r["drop_rate"] <= 0.01
                rows.append(r)
                print(
                    f"[stride {stride}] {n} cameras: p95 {r['p95_ms']:.0f} ms, dropped {r['drop_rate'] * 100:.1f} %"
                    f" -> {'ok' if r['ok'] else 'over'}",
                    file=sys.stderr,
                    flush=True,
                )
                if not r["ok"]:
                    break
                best[stride] = n
    print("\n" + machine_line())
    print(f"model {model_path}, clip {clip.name} at {fps:g} fps (interval {interval_ms:.0f} ms)")
    print("limits: p95 capture-to-result <= 2 intervals, dropped <= 1 %; analytics on (tracking, zone, line, events)")
    print(f"{'stride':>6}{'cameras':>8}{'FPS':>8}{'p50 ms':>8}{'p95 ms':>8}{'p95/intv':>9}{'dropped':>9}{'server':>8}")
    for r in rows:
        print(
            f"{r['stride']:>6}{r['cameras']:>8}{r['fps']:8.1f}{r['p50_ms']:8.0f}{r['p95_ms']:8.0f}"
            f"{r['p95_ms'] / interval_ms:9.2f}{r['drop_rate'] * 100:8.1f}%{r['server_cpu_share'] * 100:7.1f}%"
        )
    print("cameras per box: " + ", ".join(f"stride {s}: {n}" for s, n in best.items()))
    write_json(
        args.out,
        {
            "model": str(model_path),
            "machine": machine_info(),
            "clip": clip.name,
            "fps": fps,
            "rows": rows,
            "cameras_per_box": best,
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
