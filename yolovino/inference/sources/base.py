"""What every source is: the FrameSource protocol, SourceStats, and the threaded Source base class.

A reader thread fills a queue: every frame with backpressure for files, keep-latest (a queue of one, stale
frames dropped and counted) for live sources; network sources and webcams reconnect with exponential
backoff, one log line per outage. Subclasses in pyav.py and local.py say how to open and read.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from yolovino.inference.core.errors import SourceError
from yolovino.inference.core.packets import PacketTap
from yolovino.inference.core.redact import one_line, redact, safe_name
from yolovino.inference.core.results import Frame
from yolovino.inference.sources.packets import Picture

log = logging.getLogger(__name__)


@dataclass
class SourceStats:
    frames_read: int = 0
    frames_delivered: int = 0
    frames_dropped: int = 0
    reconnects: int = 0
    failed_attempts: int = 0  # reconnect attempts that failed, over all outages
    outages: int = 0
    decode_errors: int = 0  # packets the decoder rejected + frames it decoded with concealed errors
    state: str = "opening"  # opening | running | reconnecting | ended | failed | closed
    last_frame_at: float | None = None
    last_error: str | None = None

    @property
    def up(self) -> bool:
        return self.state == "running"

    def as_dict(self) -> dict:
        return {
            "frames_read": self.frames_read,
            "frames_delivered": self.frames_delivered,
            "frames_dropped": self.frames_dropped,
            "reconnects": self.reconnects,
            "failed_attempts": self.failed_attempts,
            "outages": self.outages,
            "decode_errors": self.decode_errors,
            "state": self.state,
            "up": self.up,
            "last_error": self.last_error,
        }


class FrameSource(Protocol):
    """What the pipeline, metrics and sinks need of a source; `Source` below is the threaded
    implementation for files, folders, webcams and streams, and anything else that pushes frames
    (a browser webcam, a test) implements these few members."""

    id: str
    fps: float | None
    live: bool
    stats: SourceStats
    error: SourceError | None
    on_frame: Callable[[], None] | None

    def read(self, timeout: float | None = None) -> Frame | None: ...

    @property
    def ended(self) -> bool: ...

    def close(self) -> None: ...


def output_fps(source: FrameSource, default: float = 25.0) -> float:
    """The frame rate to write a source's video at: its nominal rate when it has a plausible one."""
    fps = source.fps
    return float(fps) if fps and 1 <= fps <= 240 else default


class _Stop(Exception):
    pass


class Source:
    """Base: a reader thread fills a queue; consumers call `read()` or iterate.

    Subclasses implement `_open()` (synchronous, raises SourceError) and `_frames()` (a generator of
    (image, pts) from the opened handle, the image a BGR array or a decoder's packets.Picture, raising on
    read errors) and `_close_handle()`.
    """

    kind = "source"
    fps: float | None = None  # nominal frame rate when the container tells it
    codec: str | None = None  # decoder of the video stream (h264, hevc, mjpeg ...) when known
    packets: PacketTap | None = None  # its compressed video before decoding, for sources that demux (pyav.py)

    def __init__(
        self,
        spec: str,
        *,
        live: bool,
        name: str | None = None,
        queue_size: int = 4,
        max_retries: int | None = None,
        backoff: tuple[float, float] = (0.25, 1.0),
        stall_timeout: float = 5.0,
    ):
        self.spec = str(spec)
        # what logs, errors, metric labels and events call it: no password, no control characters
        self.display = safe_name(redact(self.spec))
        self.id = safe_name(name) if name else self.display
        self.live = live
        self.stats = SourceStats()
        self.max_retries = max_retries
        self.backoff = backoff
        self.stall_timeout = stall_timeout
        self.on_frame: Callable[[], None] | None = None  # called (reader thread) after each new frame
        self.error: SourceError | None = None
        self._queue: queue.Queue[Frame] = queue.Queue(maxsize=1 if live else max(1, queue_size))
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._handle = None
        self._index = 0
        self._lock = threading.Lock()
        self._size: tuple[int, int] | None = None  # (width, height) of the last frame
        self._last_decode_error = float("-inf")

    # -- public ---------------------------------------------------------------------------------------
    def start(self, wait: bool = False) -> Source:
        """Open synchronously (errors raise SourceError), then start the reader thread.

        wait=True (reconnectable sources only): a first open that fails is treated as an outage, so the
        source keeps retrying in the background instead of raising (a camera that boots after us).
        """
        if self._thread is None:
            pending = None
            try:
                self._handle = self._open()
            except SourceError as exc:
                if not (wait and self.reconnectable):
                    self.stats.state = "failed"
                    self.stats.last_error = str(exc)
                    raise
                pending = str(exc)
            self.stats.state = "running" if pending is None else "reconnecting"
            self._thread = threading.Thread(target=self._run, args=(pending,), name=f"source:{self.id}", daemon=True)
            self._thread.start()
        return self

    @property
    def ended(self) -> bool:
        """No frame will ever come again (end of file, failure or close) and the queue is empty."""
        return self._done.is_set() and self._queue.empty()

    def read(self, timeout: float | None = None) -> Frame | None:
        """The next frame, or None if none arrived within `timeout` (0 = don't wait) or the source ended."""
        try:
            if timeout == 0:
                return self._queue.get_nowait()
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                wait = 0.1 if deadline is None else min(0.1, max(0.0, deadline - time.monotonic()))
                try:
                    return self._queue.get(timeout=wait)
                except queue.Empty:
                    if self._done.is_set() and self._queue.empty():
                        return None
                    if deadline is not None and time.monotonic() >= deadline:
                        return None
        except queue.Empty:
            return None

    def __iter__(self) -> Iterator[Frame]:
        while True:
            frame = self.read(timeout=None)
            if frame is None:
                if self.error is not None:
                    raise self.error
                return
            yield frame

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        self._release()
        if self.stats.state not in ("ended", "failed"):
            self.stats.state = "closed"
        self._done.set()

    def __enter__(self) -> Source:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.display!r}, live={self.live}, state={self.stats.state})"

    # -- reader thread --------------------------------------------------------------------------------
    def _release(self) -> None:
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is not None:
            try:
                self._close_handle(handle)
            except Exception:  # noqa: BLE001 - closing a broken stream may fail in many ways
                pass

    def _decode_error(self, rejected: bool, reason: str, quiet_after: float = 10.0) -> None:
        """Count a decode error; log only the first of a burst (none in the `quiet_after` s before)."""
        now = time.monotonic()
        self.stats.decode_errors += 1
        if now - self._last_decode_error > quiet_after:
            log.warning(
                "source %s: corrupt data (%s); decode errors are counted in its stats, not logged each",
                self.display,
                reason,
            )
        self._last_decode_error = now

    def _deliver(self, image: np.ndarray | Picture, pts: float | None) -> None:
        """Queue one picture: a BGR array, or a decoder's Picture that is converted when first used."""
        now = time.monotonic()
        if isinstance(image, Picture):
            frame = Frame.decoded(
                image.bgr, image.size, self._index, self.id, pts, now, luma=image.luma, luma_full=image.luma_full
            )
        else:
            frame = Frame(image, self._index, self.id, pts, now)
        size = (frame.shape[1], frame.shape[0])
        if size != self._size:
            if self._size is not None:
                log.warning("source %s: frame size changed %dx%d -> %dx%d", self.display, *self._size, *size)
            self._size = size
        self._index += 1
        self.stats.frames_read += 1
        self.stats.last_frame_at = now
        if self.live:
            while True:
                try:
                    self._queue.put_nowait(frame)
                    break
                except queue.Full:
                    try:
                        self._queue.get_nowait()
                        self.stats.frames_dropped += 1
                    except queue.Empty:
                        pass
        else:
            while not self._stop.is_set():
                try:
                    self._queue.put(frame, timeout=0.1)
                    break
                except queue.Full:
                    continue
            else:
                raise _Stop
        self.stats.frames_delivered = self.stats.frames_read - self.stats.frames_dropped
        if self.on_frame is not None:
            self.on_frame()

    def _run(self, pending: str | None = None) -> None:
        try:
            if pending is not None and not self._reconnect(pending):
                return
            while not self._stop.is_set():
                try:
                    for image, pts in self._frames(self._handle):
                        if self._stop.is_set():
                            raise _Stop
                        self._deliver(image, pts)
                    reason = "end of stream"
                except _Stop:
                    break
                except SourceError as exc:
                    reason = str(exc)
                except Exception as exc:  # noqa: BLE001 - decoder/network errors come in many types
                    reason = one_line(exc, self.spec)
                    if type(exc).__name__ == "ExitError":  # PyAV's timeout interrupt fired
                        reason = f"no data for {getattr(self, 'read_timeout', 0):.0f}+ s, stream stalled"
                if self._stop.is_set():
                    break
                if not self.live or not self.reconnectable:
                    if reason != "end of stream":
                        self.error = SourceError(f"{self.display}: read failed ({reason})")
                        self.stats.last_error = str(self.error)
                        self.stats.state = "failed"
                        log.warning("%s", self.error)
                    else:
                        self.stats.state = "ended"
                    break
                if not self._reconnect(reason):
                    break
        finally:
            self._release()
            if self.stats.state in ("running", "reconnecting", "opening"):
                self.stats.state = "closed" if self._stop.is_set() else "ended"
            self._done.set()
            if self.on_frame is not None:
                self.on_frame()  # wake a waiting consumer so it sees the end

    reconnectable = False

    def _reconnect(self, reason: str) -> bool:
        """Reopen with exponential backoff; one log line when lost, one when back.

        The backoff is capped at 1 s by default: a refused connection to a camera costs next to nothing,
        and a short cap is what lets the stream resume within ~2 s of the camera coming back, however
        long it was away.
        """
        self._release()
        self.stats.outages += 1
        self.stats.state = "reconnecting"
        self.stats.last_error = reason
        lost_at = time.monotonic()
        log.warning("source %s: stream lost (%s); reconnecting", self.display, reason)
        delay, attempts = self.backoff[0], 0
        while not self._stop.is_set():
            if self.max_retries is not None and attempts >= self.max_retries:
                self.error = SourceError(f"{self.display}: gave up after {attempts} reconnect attempts ({reason})")
                self.stats.state = "failed"
                self.stats.last_error = str(self.error)
                log.error("%s", self.error)
                return False
            attempts += 1
            try:
                handle = self._open()
            except SourceError as exc:
                self.stats.last_error = str(exc)
                self.stats.failed_attempts += 1
                if self._stop.wait(delay):
                    return False
                delay = min(delay * 2, self.backoff[1])
                continue
            with self._lock:
                self._handle = handle
            self.stats.reconnects += 1
            self.stats.state = "running"
            log.warning(
                "source %s: stream restored after %.1f s (%d attempt%s)",
                self.display,
                time.monotonic() - lost_at,
                attempts,
                "" if attempts == 1 else "s",
            )
            return True
        return False

    # -- to implement -----------------------------------------------------------------------------------
    def _open(self):
        raise NotImplementedError

    def _frames(self, handle):
        raise NotImplementedError

    def _close_handle(self, handle) -> None:
        pass
