"""The CPU of one idle camera: its RTSP decode and the motion gate, per frame and per thread, by frame path.

Used by `bench.cameras_bench` (its idle figure; `--idle-only` runs just this). One camera alone on the idle
scene (bench/idle_scene.py) through the real source (sources/pyav.py: the RTSP reader thread, keep-latest) and
the real motion gate (model/motion.py MotionGate.decide, as StridedEngine calls it for every frame). The
process CPU over the window is split by thread from /proc/self/task/*/schedstat (nanoseconds): the source's
reader thread (demux + decode), this thread (the gate), and the others (decoder slice threads, OpenCV's pool).

Paths, alternated in one run so that load from other processes hits each alike:
* `bgr`: the frame path before lazy frames: every frame converted to BGR, the gate fed the BGR image, the
  decoder on FFmpeg's slice threads (decoder_threads=0);
* `luma-slice`: the gate reads the decoder's Y plane (core Frame.luma), no BGR conversion, slice threads;
* `luma`: the default path now: as luma-slice, with the small stream decoded on one thread.
"""

from __future__ import annotations

import os
import threading
import time

from yolovino.inference.core.motion import MotionConfig
from yolovino.inference.model.motion import MotionGate
from yolovino.inference.sources import open_source

PATHS = {"bgr": (True, 0), "luma-slice": (False, 0), "luma": (False, None)}  # path -> (convert, decoder_threads)


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


def idle_camera_cpu(url: str, seconds: float, path: str = "luma", warmup: float = 2.0) -> dict:
    """One idle camera alone, by `path` (see the module docstring): its CPU as % of one core and per frame."""
    convert, threads = PATHS[path]
    src = open_source(url, live=True, name="idle", wait=True, decoder_threads=threads)
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
    delta = {tid: t - (before or {}).get(tid, 0.0) for tid, t in after.items()}
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
        "motion_frames": gate.motion_frames - motion0,
        "detector_frames": detector,  # frames the gate let the detector run on (motion or keepalive)
        "converted_frames": converted,
    }


def table(rows: list[dict]) -> list[str]:
    """Median per path over its rounds, as printed lines."""
    import numpy as np

    lines = [
        f"{'path':>11}{'rounds':>7}{'% core':>8}{'ms/frame':>9}{'reader':>8}{'gate':>7}{'others':>8}"
        f"{'fps':>6}{'converted':>10}"
    ]
    for path in dict.fromkeys(r["path"] for r in rows):
        mine = [r for r in rows if r["path"] == path]

        def med(key: str, mine: list[dict] = mine) -> float:
            return float(np.median([r[key] for r in mine]))

        share = sum(r["converted_frames"] for r in mine) / max(sum(r["frames"] for r in mine), 1)
        lines.append(
            f"{path:>11}{len(mine):>7}{med('cpu_percent_of_one_core'):8.2f}{med('cpu_ms_per_frame'):9.2f}"
            f"{med('reader_ms_per_frame'):8.2f}{med('gate_ms_per_frame'):7.2f}{med('other_threads_ms_per_frame'):8.2f}"
            f"{med('fps'):6.1f}{share:10.0%}"
        )
    return lines
