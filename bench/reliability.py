"""Reliability under faults: the live pipeline against the real local RTSP server (tests/rtsp_server.py).

    .venv/bin/python bench/reliability.py [--outages 5,30,120] [--freeze 20] [--publisher-outage 15]
                                          [--model models/yolov8n/int8] [--out bench/results/reliability.json]

Setup: server A loops a clip on /x (the camera); server B receives our published output on /out.
Pipeline: open_source(A/x) -> engine -> Annotator -> RtspSink(B/out), running in a thread.
Faults, one after the other, each preceded by a check that frames flow:
  kill-N   server A killed (SIGKILL) for N seconds, then restarted on the same port
  freeze   server A frozen with SIGSTOP (TCP stays open, no data) for --freeze seconds, then SIGCONT
  pub-gone server B killed for --publisher-outage seconds: input must keep flowing, the publisher must
           come back by itself (checked by reading B's /out-live)
Per fault: detect time (fault -> source/publisher marked down), resume time (fault cleared -> frames
again), frames lost (gap x nominal fps). Pass = detected within --detect-limit s and resumed within
--resume-limit s. Ends with an "N passed, N failed" line; exit code 1 if any failed.
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import av  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import RtspServer, default_model, write_json  # noqa: E402

from inference import AsyncEngine, InferenceConfig, YoloModel  # noqa: E402
from inference.annotate import Annotator  # noqa: E402
from inference.pipeline import Pipeline  # noqa: E402
from inference.sinks import RtspSink  # noqa: E402
from inference.sources import open_source  # noqa: E402


def wait_until(cond, timeout: float, step: float = 0.05) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        time.sleep(step)
    return None


def readable(url: str, n: int = 3, timeout: float = 15) -> bool:
    try:
        with av.open(
            url,
            options={"rtsp_transport": "tcp", "analyzeduration": "500000", "probesize": "65536"},
            timeout=(timeout, 5),
        ) as c:
            for i, _ in enumerate(c.decode(video=0)):
                if i + 1 >= n:
                    return True
    except Exception:  # noqa: BLE001
        return False
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outages", default="5,30,120", help="server-killed durations in seconds, comma-separated")
    ap.add_argument("--freeze", type=float, default=20, help="SIGSTOP duration (0 = skip)")
    ap.add_argument("--publisher-outage", type=float, default=15, help="output server gone for N s (0 = skip)")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--clip", type=Path, default=None)
    ap.add_argument("--detect-limit", type=float, default=10.0)
    ap.add_argument("--resume-limit", type=float, default=15.0)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "reliability.json")
    ap.add_argument(
        "--fast",
        action="store_true",
        help="read timeout 2 s, backoff 0.25..2 s (default: library defaults, read timeout 3 s, backoff 0.25..1 s)",
    )
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR, format="%(asctime)s %(levelname)s %(message)s"
    )
    outages = [float(x) for x in args.outages.split(",") if x.strip()]
    from inference.assets import assets_root

    assets = assets_root()
    src_clip = args.clip or assets / "videos" / "one-by-one-person-detection.mp4"
    tmp = Path(tempfile.mkdtemp(prefix="reliability-"))
    clip = tmp / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-ss", "25", "-i", str(src_clip), "-t", "6", "-c", "copy", "-an", str(clip)],
        check=True,
    )
    cam, out = RtspServer(clip).start(), RtspServer(clip).start()
    engine = AsyncEngine(YoloModel.load(args.model or default_model(script="reliability"), InferenceConfig()))
    # the same settings the headless app uses (library defaults), unless --fast
    tuned = dict(open_timeout=5, read_timeout=2, backoff=(0.25, 2.0)) if args.fast else {}
    src = open_source(cam.url("x"), **tuned)
    fps = src.fps or 10.0
    sink = RtspSink(out.url("out"), fps, **({"backoff": (0.25, 2.0)} if args.fast else {}))
    pipe = Pipeline(engine, [src], [sink], Annotator())
    stop = threading.Event()
    times: list[float] = []

    def run():
        for _ in pipe.run(stop):
            times.append(time.monotonic())

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    records = []

    def flowing(timeout=30.0) -> bool:
        n0 = len(times)
        return wait_until(lambda: len(times) >= n0 + 5, timeout) is not None

    def frames_after(t: float) -> int:
        return sum(1 for x in times if x > t)

    def report(name, detect, resume, lost, ok, note=""):
        rec = {"fault": name, "detect_s": detect, "resume_s": resume, "frames_lost": lost, "passed": ok, "note": note}
        records.append(rec)
        f = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        print(
            f"{name:<10} detect {f(detect):>6} s  resume {f(resume):>6} s  lost {lost if lost is not None else '-':>5}"
            f"  {'PASS' if ok else 'FAIL'} {note}",
            flush=True,
        )

    def recovered(name: str, detect: float | None, last_before: float) -> None:
        """The fault has just been cleared: time to the next frame, frames lost over the gap, verdict."""
        t_clear = time.monotonic()
        resume = wait_until(lambda: frames_after(t_clear) > 0, args.resume_limit * 3)
        first_after = next((x for x in times if x > t_clear), None)
        lost = round((first_after - last_before) * fps) - 1 if first_after else None
        ok = detect is not None and detect <= args.detect_limit and resume is not None and resume <= args.resume_limit
        report(name, detect, resume, lost, ok)

    try:
        if not flowing():
            print("pipeline never started", file=sys.stderr)
            return 1
        print(
            f"{'fault':<10} (source {src.display}, output {sink.display}, nominal {fps:g} fps, "
            f"read timeout {src.read_timeout:g} s, backoff {src.backoff[0]:g}..{src.backoff[1]:g} s)"
        )
        for seconds in outages:
            if not flowing():
                report(f"kill-{seconds:g}", None, None, None, False, "no frames before the fault")
                continue
            last_before = times[-1]
            t_fault = time.monotonic()
            cam.kill()
            detect = wait_until(lambda: src.stats.state != "running", max(args.detect_limit * 2, seconds + 5))
            time.sleep(max(0.0, seconds - (time.monotonic() - t_fault)))
            cam.start()
            recovered(f"kill-{seconds:g}", detect, last_before)
        if args.freeze > 0 and flowing():
            last_before = times[-1]
            t_fault = time.monotonic()
            cam.signal(signal.SIGSTOP)
            try:
                detect = wait_until(lambda: src.stats.state != "running", max(args.freeze, args.detect_limit * 2))
                time.sleep(max(0.0, args.freeze - (time.monotonic() - t_fault)))
            finally:
                cam.signal(signal.SIGCONT)
            recovered(f"freeze-{args.freeze:g}", detect, last_before)
        if args.publisher_outage > 0 and flowing():
            sent0, dropped0 = sink.frames_sent, sink.frames_dropped
            t_fault = time.monotonic()
            out.kill()
            detect = wait_until(lambda: not sink.up, args.detect_limit * 2)
            n_in = len(times)
            time.sleep(max(0.0, args.publisher_outage - (time.monotonic() - t_fault)))
            input_kept_flowing = len(times) - n_in >= max(1, int(args.publisher_outage * fps * 0.3))
            out.start()
            resume = wait_until(lambda: sink.up, args.resume_limit * 3)
            visible = readable(out.url("out-live")) if resume is not None else False
            ok = (
                detect is not None
                and detect <= args.detect_limit
                and resume is not None
                and resume <= args.resume_limit
                and input_kept_flowing
                and visible
            )
            note = (
                f"(input kept flowing: {input_kept_flowing}, /out-live readable: {visible}, "
                f"sent {sink.frames_sent - sent0})"
            )
            report(f"pub-{args.publisher_outage:g}", detect, resume, sink.frames_dropped - dropped0, ok, note)
    finally:
        stop.set()
        worker.join(timeout=30)
        cam.kill()
        out.kill()
    passed = sum(r["passed"] for r in records)
    failed = len(records) - passed
    st = src.stats.as_dict()
    print(
        f"source stats: {st['frames_read']} read, {st['frames_dropped']} dropped (keep-latest), "
        f"{st['outages']} outages, {st['reconnects']} reconnects; publisher outages {sink.outages}"
    )
    write_json(
        args.out,
        {
            "faults": records,
            "source_stats": st,
            "publisher_outages": sink.outages,
            "limits": {"detect_s": args.detect_limit, "resume_s": args.resume_limit},
        },
    )
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
