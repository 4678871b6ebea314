"""Video sources: files, images, image folders, webcams, RTSP/HTTP streams, each read on its own thread.

    src = open_source("rtsp://user:pw@cam/stream")      # raises SourceError (one line, redacted) if unusable
    for frame in src: ...                                 # Frame(image BGR uint8, index, source_id, pts, captured_at)
    src.close()

Two delivery modes:
  * files (video, image, folder): every frame is delivered; a bounded queue gives backpressure.
  * live (webcam, rtsp, http): keep-latest; a queue of one, stale frames are dropped and counted.

Network sources have an open timeout and a read timeout (a frozen stream is noticed within seconds),
reconnect with exponential backoff forever (or `max_retries`), log each outage once (lost / restored),
and count it. Credentials in URLs are redacted in every log line, error and stat (`redact`).
Decoding uses PyAV (bundled FFmpeg); webcams use OpenCV. Corrupt data is counted (stats.decode_errors,
one log line per burst) and skipped, never a reason to reconnect; pictures are turned upright as the
display matrix says (inference/decode.py). A frame size change mid-stream is logged and passed on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import numpy as np

from .decode import decode_tolerant, upright
from .errors import SourceError
from .media import IMAGE_SUFFIXES, NETWORK_SCHEMES
from .redact import one_line, redact
from .results import Frame

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
    (image, pts) from the opened handle, raising on read errors) and `_close_handle()`.
    """

    kind = "source"
    fps: float | None = None  # nominal frame rate when the container tells it
    codec: str | None = None  # decoder of the video stream (h264, hevc, mjpeg ...) when known

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
        self.display = redact(self.spec)
        self.id = name or self.display
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

    def _deliver(self, image: np.ndarray, pts: float | None) -> None:
        now = time.monotonic()
        size = (image.shape[1], image.shape[0])
        if size != self._size:
            if self._size is not None:
                log.warning("source %s: frame size changed %dx%d -> %dx%d", self.display, *self._size, *size)
            self._size = size
        frame = Frame(image, self._index, self.id, pts, now)
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


class PyAVSource(Source):
    """Video file, GIF or network stream decoded with PyAV."""

    kind = "video"

    def __init__(
        self,
        spec: str,
        *,
        live: bool,
        open_timeout: float = 10.0,
        read_timeout: float = 3.0,
        options: dict | None = None,
        **kw,
    ):
        super().__init__(spec, live=live, **kw)
        self.network = "://" in self.spec and urlsplit(self.spec).scheme.lower() in NETWORK_SCHEMES
        self.reconnectable = self.network
        self.open_timeout, self.read_timeout = open_timeout, read_timeout
        self.options = dict(options or {})
        self._first = None  # first decoded frame of a file, decoded at open to validate it
        self._rejected = 0  # packets of this file the decoder rejected (they give no frame)

    def _av_options(self) -> dict:
        opts: dict[str, str] = {}
        scheme = urlsplit(self.spec).scheme.lower() if self.network else ""
        if scheme in ("rtsp", "rtsps"):
            opts.update(rtsp_transport="tcp", timeout=str(int(self.read_timeout * 1e6)))
        elif scheme in ("http", "https"):
            opts.update(rw_timeout=str(int(self.read_timeout * 1e6)), reconnect="0")
        if self.network:
            opts.update(analyzeduration="500000", probesize="65536")
        opts.update({k: str(v) for k, v in self.options.items()})
        return opts

    def _open(self):
        import av

        try:
            if self.network:
                container = av.open(
                    self.spec, options=self._av_options(), timeout=(self.open_timeout, self.read_timeout)
                )
            else:
                container = av.open(self.spec)
        except Exception as exc:  # noqa: BLE001
            raise SourceError(f"{self.display}: cannot open ({one_line(exc, self.spec)})") from None
        try:
            if not container.streams.video:
                raise SourceError(f"{self.display}: no video stream")
            stream = container.streams.video[0]
            # frame threading holds (threads - 1) decoded frames back: fine for files, but on a live stream
            # that is 2 frame intervals of latency on a 2-core box, so live streams use slice threading
            stream.thread_type = "SLICE" if self.live else "AUTO"
            codec = stream.codec_context.name
            if self.codec is not None and codec != self.codec:
                log.warning("source %s: codec changed %s -> %s", self.display, self.codec, codec)
            self.codec = codec
            rate = stream.average_rate or stream.guessed_rate
            self.fps = float(rate) if rate else None
            if not self.network:
                # decode one frame now, so a file that is not a video / has zero frames fails at open
                self._rejected = 0
                decoder = decode_tolerant(container.demux(stream), self._file_decode_error)
                try:
                    first = next(decoder)
                except StopIteration:
                    errors = f" ({self.stats.decode_errors} decode errors)" if self.stats.decode_errors else ""
                    raise SourceError(f"{self.display}: no decodable video frames{errors}") from None
                except Exception as exc:  # noqa: BLE001
                    raise SourceError(f"{self.display}: not a readable video ({one_line(exc, self.spec)})") from None
                self._first = (first, decoder)
        except BaseException:
            container.close()
            raise
        return container

    def _frames(self, container):
        if self._first is not None:
            first, decoder = self._first
            self._first = None
            yield upright(first), _pts(first)
            frames = decoder
        elif self.network:
            frames = self._watched(container)
        else:
            self._rejected = 0
            frames = decode_tolerant(container.demux(container.streams.video[0]), self._file_decode_error)
        for f in frames:
            yield upright(f), _pts(f)
        expected = container.streams.video[0].frames  # from the file index; 0 when unknown
        if not self.network and expected and self._index + self._rejected < expected - 2:
            raise SourceError(f"file is truncated: {self._index} of {expected} frames decoded")

    def _file_decode_error(self, rejected: bool, reason: str) -> None:
        self._rejected += rejected
        self._decode_error(rejected, reason)

    def _watched(self, container):
        """Decode a network stream; watchdog: packets that never give a picture for stall_timeout seconds
        (a camera sending garbage or only non-video data) count as an outage, like silence does
        (silence itself is caught by FFmpeg's read timeout)."""
        stream = container.streams.video[0]
        last = [time.monotonic()]

        def packets():
            for packet in container.demux(stream):
                if time.monotonic() - last[0] > self.stall_timeout:
                    raise SourceError(f"no decodable frame for {self.stall_timeout:.0f} s")
                yield packet

        for f in decode_tolerant(packets(), self._decode_error):
            last[0] = time.monotonic()
            yield f

    def _close_handle(self, container) -> None:
        container.close()


def _pts(frame) -> float | None:
    try:
        return float(frame.time) if frame.time is not None else None
    except (TypeError, ValueError):
        return None


class WebcamSource(Source):
    """A local camera by index, read with OpenCV.

    A camera that stops sending makes OpenCV's V4L2 backend return a failed read after its select()
    timeout (10 s by default; the OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT environment variable, in seconds,
    changes it), which counts as an outage and starts the reconnect loop.
    """

    kind = "webcam"
    reconnectable = True

    def __init__(self, spec: str, *, index: int, **kw):
        super().__init__(spec, live=kw.pop("live", True), **kw)
        self.index_ = index

    def _open(self):
        import cv2

        cap = cv2.VideoCapture(self.index_)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"webcam {self.index_}: cannot open")
        return cap

    def _frames(self, cap):
        while True:
            ok, image = cap.read()
            if not ok or image is None:
                raise SourceError(f"webcam {self.index_}: read failed")
            yield image, None

    def _close_handle(self, cap) -> None:
        cap.release()


class ImageSource(Source):
    """One image file, or every image in a folder (sorted by name)."""

    kind = "images"

    def __init__(self, spec: str, *, paths: list[Path], **kw):
        kw.pop("live", None)
        super().__init__(spec, live=False, **kw)
        self.paths = paths

    def _open(self):
        import cv2

        if not self.paths:
            raise SourceError(f"{self.display}: no images found")
        first = cv2.imread(str(self.paths[0]), cv2.IMREAD_COLOR)
        if first is None:
            raise SourceError(f"{self.display}: {self.paths[0].name} is not a readable image")
        return first

    def _frames(self, first):
        import cv2

        yield first, None
        for path in self.paths[1:]:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                log.warning("%s: skipping unreadable image %s", self.display, path.name)
                continue
            yield image, None


def open_source(
    spec: str | int, *, live: bool | None = None, name: str | None = None, start: bool = True, wait: bool = False, **kw
) -> Source:
    """Open a source from a spec; raises SourceError with one line naming the (redacted) source.

    spec: video file (mp4/mkv/avi/gif...), image file, image folder, webcam index ("0"),
          rtsp(s)://, http(s)://, rtmp:// ...
    live: keep-latest delivery with drops (default: True for cameras and network streams, False for files).
    wait: a network source or webcam that cannot be opened now keeps retrying in the background
          (state "reconnecting") instead of raising; bad specs (scheme, missing file) still raise.
    Other keywords: queue_size, max_retries (None = forever), backoff=(first, max) seconds,
          open_timeout, read_timeout (network), options (extra FFmpeg options), stall_timeout.
    """
    text = str(spec).strip()
    shown = redact(text)
    if not text:
        raise SourceError("empty source: give a video file, image, folder, webcam index or rtsp:// URL")
    if text.isdigit():
        src: Source = WebcamSource(
            text,
            index=int(text),
            name=name or f"webcam{text}",
            live=True if live is None else live,
            **_only(kw, Source),
        )
    elif "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme == "file":
            return open_source(urlsplit(text).path, live=live, name=name, start=start, wait=wait, **kw)
        if scheme not in NETWORK_SCHEMES:
            raise SourceError(
                f"{shown}: unsupported scheme {scheme!r} (use a file path, webcam index, rtsp://, http(s)://)"
            )
        src = PyAVSource(text, live=True if live is None else live, name=name, **kw)
    else:
        path = Path(text).expanduser()
        if path.is_dir():
            paths = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not paths:
                raise SourceError(f"{shown}: folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            src = ImageSource(text, paths=paths, name=name or path.name, **_only(kw, Source))
        elif not path.exists():
            raise SourceError(f"{shown}: file not found")
        elif path.stat().st_size == 0:
            raise SourceError(f"{shown}: file is empty (0 bytes)")
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            src = ImageSource(text, paths=[path], name=name or path.name, **_only(kw, Source))
        else:
            src = PyAVSource(text, live=bool(live), name=name or path.name, **kw)
    return src.start(wait=wait) if start else src


def _only(kw: dict, cls) -> dict:
    allowed = {"queue_size", "max_retries", "backoff", "stall_timeout"}
    return {k: v for k, v in kw.items() if k in allowed}
