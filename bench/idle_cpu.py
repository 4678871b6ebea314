"""The CPU of one idle camera: its RTSP decode and the motion gate, per frame and per thread, by frame path.

Used by `bench.cameras_bench` (its idle figure; `--idle-only` runs just this). One camera alone on the idle
scene (bench/idle_scene.py) through the real source (sources/pyav.py: the RTSP reader thread, keep-latest) and
the real motion gate (model/motion.py MotionGate.decide, as StridedEngine calls it for every frame). The
process CPU over the window is split by thread from /proc/self/task/*/schedstat (nanoseconds): the source's
reader thread (demux + decode), this thread (the gate), and the others (decoder slice threads, OpenCV's pool).

Paths, alternated in one run so that load from other processes hits each alike:
* `bgr`: the frame path before lazy frames: every frame converted to BGR, the gate fed the BGR image;
* `luma`: the path now: the gate reads the decoder's Y plane (core Frame.luma), nothing converts to BGR;
* `app` (needs a model): the whole service path of one camera: the headless supervisor's pipeline (StridedEngine
  with the motion gate, tracking, a zone and a line, drawing only for outputs that show pictures: none here),
  so also the detector on motion (the passer-by), every keepalive_s and while tracks live; "gate" is then the
  pipeline thread and "others" OpenVINO's threads.
"""

from __future__ import annotations

import functools
import os
import threading
import time

from yolovino.inference import AsyncEngine, YoloModel
from yolovino.inference.analytics.config import parse_analytics, resolve_classes
from yolovino.inference.analytics.stage import Analytics
from yolovino.inference.core.motion import MotionConfig
from yolovino.inference.draw.annotate import Annotator
from yolovino.inference.model.motion import MotionGate
from yolovino.inference.model.stride import StridedEngine
from yolovino.inference.pipeline import Pipeline, frame_time
from yolovino.inference.sources import open_source

APP_SETUP = {  # cameras_bench's zone and line, motion gating on (as for any live source)
    "motion": True,
    "zones": [{"name": "table", "points": [[0.45, 0.8], [0.7, 0.8], [0.7, 0.96], [0.45, 0.96]]}],
    "lines": [{"name": "door", "points": [[0.3, 0.0], [0.3, 1.0]]}],
}

PATHS = {"bgr": True, "luma": False, "app": False}  # path -> every frame converted to BGR


def thread_cpu() -> dict[int, float]:
    """CPU seconds of each thread of this process (schedstat: nanoseconds on a CPU)."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                out[int(tid)] = int(f.read().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
    return out


def idle_camera_cpu(
    url: str, seconds: float, path: str = "luma", warmup: float = 2.0, model: YoloModel | None = None
) -> dict:
    """One idle camera alone, by `path` (see the module docstring): its CPU as % of one core and per frame."""
    convert = PATHS[path]
    src = open_source(url, live=True, name="idle", wait=True)
    if path == "app":
        if model is None:
            raise ValueError("the app path needs a model")
        return _app(src, model, seconds, warmup)
    gate = MotionGate(MotionConfig())
    me = threading.get_native_id()
    frames, detector, converted, motion0 = 0, 0, 0, 0
    t_start = time.monotonic() + warmup
    before: dict[int, float] | None = None
    cpu0 = t0 = None
    try:
        while True:
            frame = src.read(timeout=0.5)
            now = time.monotonic()
            if before is None and now >= t_start:
                before, cpu0, t0 = thread_cpu(), time.process_time(), now
                frames = detector = converted = 0
                motion0 = gate.motion_frames
            if t0 is not None and now - t0 >= seconds:
                break
            if frame is None:
                continue
            if gate.decide(frame.image if convert else frame):
                gate.ran()
                detector += 1
            converted += frame.converted
            frames += 1
        after, cpu = thread_cpu(), time.process_time() - (cpu0 or 0.0)
        wall = time.monotonic() - (t0 or time.monotonic())
        reader = src._thread.native_id if src._thread is not None else None
    finally:
        src.close()
    return _row(path, before or {}, after, cpu, wall, frames, reader, me) | {
        "motion_frames": gate.motion_frames - motion0,
        "detector_frames": detector,  # frames the gate let the detector run on (motion or keepalive)
        "converted_frames": converted,
    }


def _app(src, model: YoloModel, seconds: float, warmup: float) -> dict:
    """The `app` path: one camera through the service's pipeline (Supervisor's lane, as built there)."""
    cfg = resolve_classes(parse_analytics(APP_SETUP), model.names)
    analytics = Analytics(cfg)
    base = AsyncEngine(model)
    engine = StridedEngine(base, {}, frame_time)
    gate = MotionGate(MotionConfig(), tracks=functools.partial(analytics.track_needs, src.id))
    engine.set_gate(src.id, gate)
    pipe = Pipeline(engine, [src], [], Annotator(), analytics=analytics, draw_for_sinks=True)
    me, stop = threading.get_native_id(), threading.Event()
    t_start = time.monotonic() + warmup
    before: dict[int, float] | None = None
    frames = converted = det0 = motion0 = 0
    cpu0 = t0 = 0.0
    try:
        for fr in pipe.run(stop):
            now = time.monotonic()
            if before is None and now >= t_start:
                before, cpu0, t0 = thread_cpu(), time.process_time(), now
                det0, motion0 = engine.per_source[src.id][0], gate.motion_frames
                continue
            if before is None:
                continue
            frames += 1
            converted += fr.frame.converted
            if now - t0 >= seconds:  # measured here: leaving the loop closes the pipeline and its source
                after, cpu, wall = thread_cpu(), time.process_time() - cpu0, time.monotonic() - t0
                reader = src._thread.native_id if src._thread is not None else None
                detected = engine.per_source[src.id][0] - det0
                break
        else:
            raise RuntimeError("the idle camera's stream ended")
    finally:
        stop.set()
        pipe.close()
        base.close()
        analytics.close()
    return _row("app", before or {}, after, cpu, wall, frames, reader, me) | {
        "motion_frames": gate.motion_frames - motion0,
        "detector_frames": detected,
        "converted_frames": converted,
    }


def _row(path, before, after, cpu, wall, frames, reader, me) -> dict:
    delta = {tid: t - before.get(tid, 0.0) for tid, t in after.items()}
    per = 1000.0 / max(frames, 1)
    read_ms = delta.get(reader or -1, 0.0) * per
    gate_ms = delta.get(me, 0.0) * per
    return {
        "path": path,
        "seconds": wall,
        "frames": frames,
        "fps": frames / max(wall, 1e-6),
        "cpu_percent_of_one_core": 100 * cpu / max(wall, 1e-6),
        "cpu_ms_per_frame": cpu * per,
        "reader_ms_per_frame": read_ms,
        "gate_ms_per_frame": gate_ms,
        "other_threads_ms_per_frame": max(0.0, cpu * per - read_ms - gate_ms),
    }


def table(rows: list[dict]) -> list[str]:
    """Median per path over its rounds, as printed lines."""
    import numpy as np

    lines = [
        f"{'path':>11}{'rounds':>7}{'% core':>8}{'ms/frame':>9}{'reader':>8}{'gate':>7}{'others':>8}"
        f"{'fps':>6}{'detected':>9}{'converted':>10}"
    ]
    for path in dict.fromkeys(r["path"] for r in rows):
        mine = [r for r in rows if r["path"] == path]

        def med(key: str, mine: list[dict] = mine) -> float:
            return float(np.median([r[key] for r in mine]))

        detected = sum(r["detector_frames"] for r in mine) / max(sum(r["frames"] for r in mine), 1)
        share = sum(r["converted_frames"] for r in mine) / max(sum(r["frames"] for r in mine), 1)
        lines.append(
            f"{path:>11}{len(mine):>7}{med('cpu_percent_of_one_core'):8.2f}{med('cpu_ms_per_frame'):9.2f}"
            f"{med('reader_ms_per_frame'):8.2f}{med('gate_ms_per_frame'):7.2f}{med('other_threads_ms_per_frame'):8.2f}"
            f"{med('fps'):6.1f}{detected:9.0%}{share:10.0%}"
        )
    return lines
