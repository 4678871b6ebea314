"""Publish annotated frames to an RTSP server (the `output` of a source): `RtspSink` and its `Publisher`.

The publisher runs in the process (PyAV's bundled FFmpeg: libx264 + RTSP muxer). It replaced an `ffmpeg`
child process, which had to be given the output URL on its command line, where a password in it is
readable by every local user (/proc/<pid>/cmdline, `ps`). The socket timeout makes a frozen server fail
the write within `timeout` seconds instead of hanging.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

import numpy as np

from yolovino.inference.core.redact import one_line, redact, scrub
from yolovino.inference.outputs.base import Sink, SinkError, even_size, fit, to_i420
from yolovino.inference.outputs.encode import add_video_stream, encode_i420

log = logging.getLogger(__name__)


class RtspSink(Sink):
    """Publish annotated frames to an RTSP server (H.264, TCP, no audio), in-process (`Publisher` below:
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
            if self._size is None:
                self._size = even_size(image)
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


class Publisher:
    """One RTSP publishing session (ANNOUNCE/RECORD over TCP); `write` raises OSError when it breaks."""

    def __init__(self, url: str, width: int, height: int, fps: float, bitrate: str = "2M", timeout: float = 3.0):
        import av

        self.url = url
        self.returncode: int | None = None
        self.error = ""
        gop = max(int(round(fps)), 1)
        try:
            self._container = av.open(
                url,
                "w",
                format="rtsp",
                options={"rtsp_transport": "tcp", "timeout": str(int(timeout * 1e6))},
                timeout=(timeout + 2, timeout + 2),
            )
            self._stream = add_video_stream(
                self._container,
                width,
                height,
                fps,
                options={"preset": "ultrafast", "tune": "zerolatency", "g": str(gop)},
                bit_rate=_bits(bitrate),
            )
        except Exception as exc:  # noqa: BLE001 - PyAV raises its own error types; report one scrubbed line
            raise OSError(one_line(exc, url)) from None
        self._t0: float | None = None
        self._last_pts = -1

    def alive(self) -> bool:
        return self.returncode is None

    def write(self, i420: np.ndarray, t: float) -> None:
        """Encode and send one I420 frame taken at time `t` (seconds, any origin)."""
        if self.returncode is not None:
            raise OSError(self.error or "publisher closed")
        if self._t0 is None:
            self._t0 = t
        self._last_pts = max(round((t - self._t0) * 1000), self._last_pts + 1)
        try:
            encode_i420(self._stream, self._container, i420, self._last_pts)
        except Exception as exc:  # noqa: BLE001
            self.error, self.returncode = one_line(exc, self.url), 1
            self._close_quietly()
            raise OSError(self.error) from None

    def close(self) -> str:
        """End the session; returns the last error ('' if none)."""
        if self.returncode is None:
            self.returncode = 0
            self._close_quietly()
        return self.error

    def _close_quietly(self) -> None:
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - the connection may already be gone
            pass


def _bits(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("KM")) * scale)
