"""Reliability under faults: the live pipeline against the real local RTSP server (tests/rtsp_server.py).

    .venv/bin/python -m bench.reliability [--outages 5,30,120] [--freeze 20] [--publisher-outage 15]
                                          [--stream-faults resize,corrupt,codec] [--corrupt-burst 10]
                                          [--model models/yolov8n/int8] [--out bench/results/reliability.json]

Setup: server A plays the camera on /x: a 6 s clip (768x432 H.264, a keyframe a second) and the same
clip at 1280x720 and 640x360, one after the other on SIGUSR1; server B receives our published output on
/out. Pipeline: open_source(A/x) -> engine -> Annotator -> RtspSink(B/out), running in a thread.
Faults, one after the other, each preceded by a check that frames flow:
  kill-N      server A killed (SIGKILL) for N seconds, then restarted on the same port
  freeze      server A frozen with SIGSTOP (TCP stays open, no data) for --freeze seconds, then SIGCONT
  resize-WxH  A's /x switches to the clip of that size (768x432 -> 1280x720 -> 640x360 -> 768x432): the
              first frame of the new size must come through (its graph compiled, or reused when the size
              comes back), every annotated frame at its frame's size, no reconnect, and the published
              output keeps its first size (read back from B's /out-live)
  corrupt     bytes flipped in --corrupt-burst non-key access units on /x: decode errors counted, no
              outage, no gap over 2 s between results, errors stop at the next keyframe
  codec-h265  server A killed for 2 s and restarted serving the clip in H.265: the source reconnects and
              decodes the new codec
  pub-gone    server B killed for --publisher-outage seconds: input must keep flowing, the publisher must
              come back by itself (checked by reading B's /out-live)
Per fault: detect time (fault -> source/publisher marked down; for corrupt the first decode error; none
for resize), resume time (fault cleared -> frames again; for resize, switch -> first result at the new
size; for corrupt, burst sent -> last decode error), frames lost (gap x nominal fps; for corrupt, frames
expected over the burst minus frames delivered). Pass = detected within --detect-limit s and resumed
within --resume-limit s, plus each fault's own checks. Ends with an "N passed, N failed" line; exit code
1 if any failed.
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
from typing import Any

REPO = Path(__file__).resolve().parents[1]

import av  # noqa: E402

from bench.benchlib import RtspServer, default_model, write_json  # noqa: E402
from yolovino.inference import AsyncEngine, InferenceConfig, YoloModel  # noqa: E402
from yolovino.inference.draw.annotate import Annotator  # noqa: E402
from yolovino.inference.outputs.rtsp_publish import RtspSink  # noqa: E402
from yolovino.inference.pipeline import Pipeline  # noqa: E402
from yolovino.inference.sources import open_source  # noqa: E402

SIZES = ["1280x720", "640x360", "768x432"]  # what /x switches to, in turn (it starts at 768x432)


def wait_until(cond, timeout: float, step: float = 0.05) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        time.sleep(step)
    return None


def read_back(url: str, n: int = 3, timeout: float = 15) -> list[tuple[int, int]]:
    """(height, width) of the first n frames a plain client decodes from url; [] if it cannot."""
    shapes: list[tuple[int, int]] = []
    try:
        with av.open(
            url,
            options={"rtsp_transport": "tcp", "analyzeduration": "500000", "probesize": "65536"},
            timeout=(timeout, 5),
        ) as c:
            for f in c.decode(video=0):
                shapes.append((f.height, f.width))
                if len(shapes) >= n:
                    break
    except Exception:  # noqa: BLE001
        return []
    return shapes


def make_clips(src_clip: Path, folder: Path) -> dict[str, Path]:
    """The camera's clips: 6 s of the source (stream copy) and the same re-encoded at other sizes / H.265."""

    def ffmpeg(*args: str) -> None:
        subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=300)

    clips = {"768x432": folder / "clip.mp4"}
    ffmpeg("-ss", "25", "-i", str(src_clip), "-t", "6", "-c", "copy", "-an", str(clips["768x432"]))
    for size in SIZES[:2]:
        clips[size] = folder / f"{size}.mp4"
        w, h = size.split("x")
        x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-an"]
        ffmpeg("-i", str(clips["768x432"]), "-vf", f"scale={w}:{h}", *x264, str(clips[size]))
    clips["h265"] = folder / "h265.mp4"
    x265 = ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:keyint=10", "-an"]
    ffmpeg("-i", str(clips["768x432"]), *x265, str(clips["h265"]))
    return clips


class Bench:
    """The pipeline under test on a thread, what it delivered (time, frame size, annotated size), the rows."""

    def __init__(self, args, engine: AsyncEngine, cam: RtspServer, out: RtspServer):
        self.args, self.engine, self.cam, self.out = args, engine, cam, out
        # the same settings the headless app uses (library defaults), unless --fast
        tuned: dict[str, Any] = dict(open_timeout=5, read_timeout=2, backoff=(0.25, 2.0)) if args.fast else {}
        self.src = open_source(cam.url("x"), **tuned)
        self.fps = self.src.fps or 10.0
        self.sink = RtspSink(out.url("out"), self.fps, backoff=(0.25, 2.0) if args.fast else (0.25, 1.0))
        self.pipe = Pipeline(engine, [self.src], [self.sink], Annotator())
        self.stop = threading.Event()
        self.times: list[float] = []
        self.shapes: list[tuple[int, int]] = []  # (height, width) of each delivered frame
        self.misdrawn = 0  # annotated frames whose size differs from their frame's
        self.error: BaseException | None = None
        self.first_size: tuple[int, int] | None = None  # the published output keeps this size
        self.records: list[dict] = []
        self.worker = threading.Thread(target=self._run, daemon=True)
        self.worker.start()

    def _run(self) -> None:
        try:
            for fr in self.pipe.run(self.stop):
                self.misdrawn += fr.annotated is None or fr.annotated.shape != fr.frame.image.shape
                self.shapes.append(fr.frame.image.shape[:2])
                self.times.append(time.monotonic())
        except BaseException as exc:  # noqa: BLE001 - reported as a failed row, not a traceback
            self.error = exc

    def close(self) -> None:
        self.stop.set()
        self.worker.join(timeout=30)
        self.cam.kill()
        self.out.kill()

    def flowing(self, timeout: float = 30.0) -> bool:
        n0 = len(self.times)
        return wait_until(lambda: len(self.times) >= n0 + 5, timeout) is not None

    def first_after(self, t: float, shape: tuple[int, int] | None = None) -> float | None:
        return next(
            (x for x, s in zip(self.times, self.shapes) if x > t and (shape is None or s == shape)),
            None,
        )

    def report(self, name, detect, resume, lost, ok, note="") -> None:
        rec = {"fault": name, "detect_s": detect, "resume_s": resume, "frames_lost": lost, "passed": ok, "note": note}
        self.records.append(rec)
        f = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        print(
            f"{name:<15} detect {f(detect):>6} s  resume {f(resume):>6} s  lost {lost if lost is not None else '-':>5}"
            f"  {'PASS' if ok else 'FAIL'} {note}",
            flush=True,
        )

    def within(self, detect: float | None, resume: float | None) -> bool:
        a = self.args
        return detect is not None and detect <= a.detect_limit and resume is not None and resume <= a.resume_limit

    def recovered(self, name: str, detect: float | None, last_before: float, note: str = "", ok: bool = True):
        """The fault has just been cleared: time to the next frame, frames lost over the gap, verdict."""
        t_clear = time.monotonic()
        resume = wait_until(lambda: self.first_after(t_clear) is not None, self.args.resume_limit * 3)
        first = self.first_after(t_clear)
        lost = round((first - last_before) * self.fps) - 1 if first else None
        self.report(name, detect, resume, lost, ok and self.within(detect, resume), note)

    # -- faults ---------------------------------------------------------------------------------------
    def kill(self, seconds: float, clips: list[Path] | None = None, name: str | None = None) -> None:
        name = name or f"kill-{seconds:g}"
        if not self.flowing():
            self.report(name, None, None, None, False, "no frames before the fault")
            return
        last_before, t_fault = self.times[-1], time.monotonic()
        self.cam.kill()
        detect = wait_until(lambda: self.src.stats.state != "running", max(self.args.detect_limit * 2, seconds + 5))
        time.sleep(max(0.0, seconds - (time.monotonic() - t_fault)))
        self.cam.start(clips=clips)
        if clips is None:
            self.recovered(name, detect, last_before)
            return
        codec_ok = wait_until(lambda: self.src.codec == "hevc", self.args.resume_limit) is not None
        self.recovered(name, detect, last_before, f"(decoding {self.src.codec})", ok=codec_ok)

    def freeze(self, seconds: float) -> None:
        if not self.flowing():
            return
        last_before, t_fault = self.times[-1], time.monotonic()
        self.cam.signal(signal.SIGSTOP)
        try:
            detect = wait_until(lambda: self.src.stats.state != "running", max(seconds, self.args.detect_limit * 2))
            time.sleep(max(0.0, seconds - (time.monotonic() - t_fault)))
        finally:
            self.cam.signal(signal.SIGCONT)
        self.recovered(f"freeze-{seconds:g}", detect, last_before)

    def resize(self, size: str) -> None:
        """/x switches to the clip of `size`: time to its first frame, frames lost, graphs built or reused."""
        w, h = (int(v) for v in size.split("x"))
        if not self.flowing():
            self.report(f"resize-{size}", None, None, None, False, "no frames before the fault")
            return
        graphs0, outages0, misdrawn0 = list(self.engine.frame_sizes), self.src.stats.outages, self.misdrawn
        last_before, t_switch = self.times[-1], time.monotonic()
        self.cam.switch()
        resume = wait_until(lambda: self.first_after(t_switch, (h, w)) is not None, self.args.resume_limit * 3)
        first = self.first_after(t_switch, (h, w))
        steady = wait_until(lambda: self.shapes[-5:] == [(h, w)] * 5, self.args.resume_limit) is not None
        lost = round((first - last_before) * self.fps) - 1 if first else None
        graph = "reused" if (h, w) in graphs0 else "compiled"
        published = read_back(self.out.url("out-live"), 2)
        sizes_ok = self.misdrawn == misdrawn0 and published and set(published) == {self.first_size}
        ok = (
            resume is not None
            and resume <= self.args.resume_limit
            and steady
            and self.src.stats.outages == outages0
            and bool(sizes_ok)
        )
        note = f"(graph {graph}, {len(self.engine.frame_sizes)} kept; output {published[:1] or 'unreadable'})"
        self.report(f"resize-{size}", None, resume, lost, ok, note)

    def corrupt(self) -> None:
        """A burst of corrupt access units: counted, no outage, no stall, clean again at the next keyframe."""
        if not self.flowing():
            self.report("corrupt", None, None, None, False, "no frames before the fault")
            return
        st = self.src.stats
        errors0, outages0, n0 = st.decode_errors, st.outages, len(self.times)
        t_burst = time.monotonic()
        self.cam.corrupt()
        detect = wait_until(lambda: st.decode_errors > errors0, self.args.detect_limit * 2)
        last = {"errors": st.decode_errors, "at": time.monotonic(), "frames": len(self.times)}

        def clean_for(n: int) -> bool:  # n results in a row without a new decode error
            if st.decode_errors != last["errors"]:
                last.update(errors=st.decode_errors, at=time.monotonic(), frames=len(self.times))
            return len(self.times) - last["frames"] >= n

        clean = wait_until(lambda: clean_for(int(2 * self.fps)), self.args.resume_limit * 3) is not None
        resume = last["at"] - t_burst if detect is not None else None
        window = [x for x in self.times[n0:] if x <= last["at"]]
        gaps = [b - a for a, b in zip([t_burst, *window], window)]
        lost = max(0, round((last["at"] - t_burst) * self.fps) - len(window))
        stalled = max(gaps, default=0.0) > 2.0
        ok = self.within(detect, resume) and clean and st.outages == outages0 and not stalled
        note = (
            f"(decode errors {st.decode_errors - errors0}, outages {st.outages - outages0}, "
            f"longest gap {max(gaps, default=0.0):.1f} s)"
        )
        self.report("corrupt", detect, resume, lost, ok, note)

    def publisher_gone(self, seconds: float) -> None:
        if not self.flowing():
            return
        sink = self.sink
        sent0, dropped0 = sink.frames_sent, sink.frames_dropped
        t_fault = time.monotonic()
        self.out.kill()
        detect = wait_until(lambda: not sink.up, self.args.detect_limit * 2)
        n_in = len(self.times)
        time.sleep(max(0.0, seconds - (time.monotonic() - t_fault)))
        input_kept_flowing = len(self.times) - n_in >= max(1, int(seconds * self.fps * 0.3))
        self.out.start()
        resume = wait_until(lambda: sink.up, self.args.resume_limit * 3)
        visible = bool(read_back(self.out.url("out-live"))) if resume is not None else False
        ok = self.within(detect, resume) and input_kept_flowing and visible
        note = (
            f"(input kept flowing: {input_kept_flowing}, /out-live readable: {visible}, "
            f"sent {sink.frames_sent - sent0})"
        )
        self.report(f"pub-{seconds:g}", detect, resume, sink.frames_dropped - dropped0, ok, note)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outages", default="5,30,120", help="server-killed durations in seconds, comma-separated")
    ap.add_argument("--freeze", type=float, default=20, help="SIGSTOP duration (0 = skip)")
    ap.add_argument(
        "--stream-faults", default="resize,corrupt,codec", help="of resize,corrupt,codec (comma-separated; '' = none)"
    )
    ap.add_argument("--corrupt-burst", type=int, default=10, help="non-key access units damaged by 'corrupt'")
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
    stream_faults = {x.strip() for x in args.stream_faults.split(",") if x.strip()}
    if stream_faults - {"resize", "corrupt", "codec"}:
        ap.error(f"--stream-faults: unknown {', '.join(sorted(stream_faults - {'resize', 'corrupt', 'codec'}))}")
    from yolovino.common.paths import assets_root

    src_clip = args.clip or assets_root() / "videos" / "one-by-one-person-detection.mp4"
    clips = make_clips(src_clip, Path(tempfile.mkdtemp(prefix="reliability-")))
    camera = [clips["768x432"], *(clips[s] for s in SIZES[:2])]
    cam = RtspServer(camera, corrupt_burst=args.corrupt_burst).start()
    out = RtspServer(clips["768x432"]).start()
    engine = AsyncEngine(YoloModel.load(args.model or default_model(script="reliability"), InferenceConfig()))
    bench = Bench(args, engine, cam, out)
    src, sink = bench.src, bench.sink
    try:
        if not bench.flowing():
            print("pipeline never started", file=sys.stderr)
            return 1
        bench.first_size = bench.shapes[0]
        print(
            f"{'fault':<15} (source {src.display}, output {sink.display}, nominal {bench.fps:g} fps, "
            f"read timeout {getattr(src, 'read_timeout', 0):g} s, backoff {src.backoff[0]:g}..{src.backoff[1]:g} s)"
        )
        for seconds in outages:
            bench.kill(seconds)
        if args.freeze > 0:
            bench.freeze(args.freeze)
        if "resize" in stream_faults:
            for size in SIZES:
                bench.resize(size)
        if "corrupt" in stream_faults:
            bench.corrupt()
        if "codec" in stream_faults:
            bench.kill(2.0, clips=[clips["h265"]], name="codec-h265")
        if args.publisher_outage > 0:
            bench.publisher_gone(args.publisher_outage)
    finally:
        bench.close()
    if bench.error is not None:
        bench.report("pipeline", None, None, None, False, f"(raised {type(bench.error).__name__}: {bench.error})")
    records = bench.records
    passed = sum(r["passed"] for r in records)
    failed = len(records) - passed
    st = src.stats.as_dict()
    print(
        f"source stats: {st['frames_read']} read, {st['frames_dropped']} dropped (keep-latest), "
        f"{st['outages']} outages, {st['reconnects']} reconnects, {st['decode_errors']} decode errors; "
        f"publisher outages {sink.outages}; graphs kept for {engine.frame_sizes}"
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
