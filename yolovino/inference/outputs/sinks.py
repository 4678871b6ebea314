"""Where FrameResults go: an mp4 file, an RTSP publisher, a JSON-lines log, or nowhere.

Every sink has `write(frame_result)` and an idempotent `close()`. A sink may be bound to one source with
`source_id=...` (the pipeline then only hands it that source's frames); None takes every frame.
Video sinks write `frame_result.annotated` when present, else the raw frame.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from yolovino.inference.core.errors import InferenceError
from yolovino.inference.core.redact import redact, scrub
from yolovino.inference.core.results import FrameResult
from yolovino.inference.outputs.encode import Publisher, encode_i420, flush

log = logging.getLogger(__name__)


class SinkError(InferenceError):
    """An output that cannot be written (bad path, no encoder)."""


class Sink:
    source_id: str | None = None

    def accepts(self, source_id: str) -> bool:
        return self.source_id is None or self.source_id == source_id

    def write(self, fr: FrameResult) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The image at `size` (width, height) for an encoder whose size is fixed: a frame one pixel wider or
    taller (odd sizes, trimmed to even for 4:2:0) loses its last column or row; any other size (a camera
    whose resolution changed mid-stream) is scaled to fit inside, aspect ratio kept, on black bars."""
    h, w = image.shape[:2]
    tw, th = size
    if (w, h) == (tw, th):
        return image
    if 0 <= w - tw <= 1 and 0 <= h - th <= 1:
        return np.ascontiguousarray(image[:th, :tw])
    import cv2

    scale = min(tw / w, th / h)
    nw, nh = min(tw, max(1, round(w * scale))), min(th, max(1, round(h * scale)))
    out = np.zeros((th, tw, 3), np.uint8)
    top, left = (th - nh) // 2, (tw - nw) // 2
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out[top : top + nh, left : left + nw] = cv2.resize(image, (nw, nh), interpolation=interp)
    return out


def to_i420(image: np.ndarray) -> np.ndarray:
    """BGR (even width and height) -> planar YUV 4:2:0, what H.264 encodes. OpenCV's SIMD conversion is
    cheaper than FFmpeg's swscale from bgr24 (same BT.601 limited-range result within 1 level), and the
    encoder is handed half the bytes."""
    import cv2

    return cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)


class NullSink(Sink):
    """Counts frames and drops them (benchmarks, display-free runs)."""

    def __init__(self, source_id: str | None = None):
        self.source_id = source_id
        self.frames = 0
        self.closed = False

    def write(self, fr) -> None:
        self.frames += 1

    def close(self) -> None:
        self.closed = True


TIME_BASE = Fraction(1, 1000)  # of written video files: millisecond timestamps


class VideoFileSink(Sink):
    """Annotated video to a file, written atomically: a hidden temp file beside it, renamed on close.

    H.264 (libx264, yuv420p) through PyAV; falls back to MPEG-4 part 2 if libx264 is unavailable.
    The size is fixed by the first frame, trimmed to even; frames of another size are fitted (`fit`).
    Timestamps follow the source's (`_next_pts`), so a variable frame rate, or live frames dropped by
    keep-latest, keep their timing; `fps` is the nominal rate, used where a frame has no timestamp.
    Preset "ultrafast" by default: on a small box slower presets take CPU from inference for files only
    about half as large.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float = 25.0,
        *,
        codec: str | None = None,
        crf: int = 23,
        preset: str = "ultrafast",
        source_id: str | None = None,
    ):
        self.path = Path(path)
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.codec, self.crf, self.preset = codec, crf, preset
        self.source_id = source_id
        if self.path.is_dir():
            raise SinkError(f"{self.path}: is a directory; give a file name")
        if not self.path.parent.is_dir():
            raise SinkError(f"{self.path}: folder {self.path.parent} does not exist")
        self.tmp = self.path.with_name(f".{self.path.stem}.tmp-{os.getpid()}{self.path.suffix or '.mp4'}")
        self._container: Any = None  # av OutputContainer once the first frame fixed the size
        self._stream: Any = None  # its av VideoStream
        self._size: tuple[int, int] | None = None
        self.frames = 0
        self.closed = False
        self._lock = threading.Lock()
        self._last_t: float | None = None  # output time (s) of the last frame written
        self._offset: float | None = None  # output time - source pts
        self._last_pts = -1

    def _open(self, w: int, h: int) -> None:
        import av

        w2, h2 = w - w % 2, h - h % 2  # yuv420p needs even sizes
        self._size = (w2, h2)
        fmt = {".mkv": "matroska", ".avi": "avi", ".mov": "mov"}.get(self.path.suffix.lower(), "mp4")
        container = av.open(str(self.tmp), "w", format=fmt)
        rate = Fraction(self.fps).limit_denominator(1001)
        last = None
        for codec in [self.codec] if self.codec else ["libx264", "mpeg4"]:
            try:
                stream: Any = container.add_stream(codec, rate=rate)
                stream.width, stream.height, stream.pix_fmt = w2, h2, "yuv420p"
                if codec == "libx264":
                    stream.options = {"crf": str(self.crf), "preset": self.preset}
                else:
                    stream.bit_rate = 4_000_000
                stream.codec_context.time_base = TIME_BASE
                self._container, self._stream = container, stream
                self.codec = codec
                return
            except Exception as exc:  # noqa: BLE001 - codec missing in this FFmpeg build
                last = exc
        container.close()
        raise SinkError(f"{self.path}: no H.264/MPEG-4 encoder available ({last})")

    def write(self, fr) -> None:
        self.write_image(fr.image, fr.frame.pts)

    def _next_pts(self, pts: float | None, max_gap: float = 5.0) -> int:
        """Output timestamp (in TIME_BASE) of the next frame: the source's pts shifted to start at 0; one
        frame interval after the last when there is none, or when it goes back or leaps ahead by more
        than `max_gap` s (a reconnect, a looped file)."""
        step = 1.0 / self.fps
        last = self._last_t
        if last is None:
            t = 0.0
        elif pts is None or self._offset is None or not (last < pts + self._offset <= last + max_gap):
            t = last + step
        else:
            t = pts + self._offset
        if pts is not None:
            self._offset = t - pts
        self._last_t = t
        self._last_pts = max(round(t / TIME_BASE), self._last_pts + 1)
        return self._last_pts

    def write_image(self, image: np.ndarray, pts: float | None = None) -> None:
        """Encode one BGR frame; `pts` is its source timestamp in seconds (None: one interval on)."""

        with self._lock:
            if self.closed:
                return
            h, w = image.shape[:2]
            if self._container is None:
                self._open(w, h)
            image = fit(image, self._size or (w, h))
            encode_i420(self._stream, self._container, to_i420(image), self._next_pts(pts))
            self.frames += 1

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            if self._container is None:
                return
            try:
                flush(self._stream, self._container)
            finally:
                self._container.close()
            os.replace(self.tmp, self.path)
            log.info("wrote %s (%d frames, %s)", self.path, self.frames, self.codec)


class JsonlSink(Sink):
    """One JSON object per frame: {source_id, frame_index, timestamp, pts, latency_ms, ...results.to_dict()}."""

    def __init__(self, path: str | os.PathLike, *, source_id: str | None = None, skip_empty: bool = False):
        self.path = Path(path)
        self.source_id = source_id
        self.skip_empty = skip_empty
        if self.path.is_dir():
            raise SinkError(f"{self.path}: is a directory; give a file name")
        try:
            self._fh: TextIO | None = open(self.path, "a", encoding="utf-8")
        except OSError as exc:
            raise SinkError(f"{self.path}: cannot write ({exc.strerror})") from None
        self.lines = 0
        self._lock = threading.Lock()

    def write(self, fr) -> None:
        if self.skip_empty and not len(fr.results):
            return
        record = {
            "source_id": fr.frame.source_id,
            "frame_index": fr.frame.index,
            "timestamp": round(time.time(), 3),
            "pts": fr.frame.pts,
            "latency_ms": round(fr.latency_ms, 2),
            **fr.results.to_dict(),
        }
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            if self._fh is None:
                return
            self._fh.write(line)
            self._fh.flush()
            self.lines += 1

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


class RtspSink(Sink):
    """Publish annotated frames to an RTSP server (H.264, TCP, no audio), in-process (inference/publish.py:
    no child process is given the URL, so a password in it never shows in /proc/*/cmdline).

    `write` never blocks the pipeline: a writer thread takes the latest frame (older ones are dropped and
    counted). If the server goes away, the session fails; the writer starts a new one with backoff (one log
    line per outage) until `close()`. The size is fixed by the first frame, so readers stay connected when a
    camera's resolution changes; frames of another size are fitted (`fit`).
    """

    def __init__(
        self,
        url: str,
        fps: float = 25.0,
        *,
        source_id: str | None = None,
        bitrate: str = "2M",
        backoff: tuple[float, float] = (0.25, 1.0),
    ):
        self.url = url
        self.display = redact(url)
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.source_id = source_id
        self.bitrate = bitrate
        self.backoff = backoff
        if not url.lower().startswith(("rtsp://", "rtsps://")):
            raise SinkError(f"{self.display}: output must be an rtsp:// URL")
        self.frames_sent = 0
        self.frames_dropped = 0
        self.restarts = 0
        self.outages = 0
        self.up = False
        self.confirm_after = 1.0
        self._slot: queue.Queue[np.ndarray] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._proc: Publisher | None = None
        self._size: tuple[int, int] | None = None
        self._thread = threading.Thread(target=self._run, name=f"rtsp-sink:{self.display}", daemon=True)
        self._thread.start()
        self.closed = False

    def write(self, fr) -> None:
        self.write_image(fr.image)

    def write_image(self, image: np.ndarray) -> None:
        if self._stop.is_set():
            return
        try:
            self._slot.put_nowait(image)
        except queue.Full:
            try:
                self._slot.get_nowait()
                self.frames_dropped += 1
            except queue.Empty:
                pass
            try:
                self._slot.put_nowait(image)
            except queue.Full:
                self.frames_dropped += 1

    def _start(self, w: int, h: int) -> Publisher:
        return Publisher(self.url, w, h, self.fps, self.bitrate)

    def _stop_proc(self) -> str:
        proc, self._proc = self._proc, None
        if proc is None:
            return ""
        return scrub(proc.close() or "publisher closed", self.url)[:200]

    def _run(self) -> None:
        delay = self.backoff[0]
        down_since: float | None = None
        started_at = 0.0
        retry_at = 0.0
        while not self._stop.is_set():
            try:
                image = self._slot.get(timeout=0.2)
            except queue.Empty:
                continue
            h, w = image.shape[:2]
            if self._size is None:
                self._size = (w - w % 2, h - h % 2)
            image = fit(image, self._size)
            if self._proc is None and time.monotonic() < retry_at:
                self.frames_dropped += 1
                continue
            try:
                if self._proc is None:
                    self._proc = self._start(*self._size)
                    started_at = time.monotonic()
                    if down_since is not None:
                        self.restarts += 1
                self._proc.write(to_i420(image), time.monotonic())
                self.frames_sent += 1
                # "up" once the session has stayed connected a moment (a write may succeed before it fails)
                if not self.up and time.monotonic() - started_at >= self.confirm_after and self._proc.alive():
                    self.up = True
                    if down_since is not None:
                        log.warning(
                            "output %s: publishing again after %.1f s", self.display, time.monotonic() - down_since
                        )
                    down_since = None
                    delay = self.backoff[0]
            except (OSError, ValueError) as exc:
                reason = self._stop_proc() or scrub(str(exc), self.url)[:200]
                self.frames_dropped += 1
                if self.up or down_since is None:
                    down_since = time.monotonic()
                    self.outages += 1
                    log.warning("output %s: publisher stopped (%s); retrying", self.display, reason)
                self.up = False
                retry_at = time.monotonic() + delay
                delay = min(delay * 2, self.backoff[1])
        self._stop_proc()
        self.up = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._stop.set()
        self._thread.join(timeout=4)
        if self._thread.is_alive():  # writer stuck on a frozen server: its socket timeout ends the write
            self._thread.join(timeout=5)


def sink_for(target: str, fps: float = 25.0, *, source_id: str | None = None) -> Sink:
    """A sink from a CLI-style target: rtsp://... publisher, *.jsonl log, else a video file."""
    low = target.lower()
    if low.startswith(("rtsp://", "rtsps://")):
        return RtspSink(target, fps, source_id=source_id)
    if low.endswith((".jsonl", ".ndjson")):
        return JsonlSink(target, source_id=source_id)
    return VideoFileSink(target, fps, source_id=source_id)
