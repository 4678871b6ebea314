"""Publish raw frames to an RTSP server from inside the process (PyAV's bundled FFmpeg: libx264 + RTSP muxer).

Used by sinks.RtspSink. It replaced an `ffmpeg` child process, which had to be given the output URL on its
command line, where a password in it is readable by every local user (/proc/<pid>/cmdline, `ps`). The
socket timeout makes a frozen server fail the write within `timeout` seconds instead of hanging.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from yolovino.inference.core.redact import one_line


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
            stream = self._container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.bit_rate = _bits(bitrate)
            stream.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(gop)}
            stream.codec_context.time_base = Fraction(1, 1000)
            self._stream = stream
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


def encode_i420(stream: Any, container: Any, i420: np.ndarray, pts: int) -> None:
    """Encode one I420 picture at `pts` and mux what the encoder gives back: the one encoding step of every
    video output (this publisher, the mp4 file, the recording segments). The array is wrapped without a
    copy; the frame keeps it alive while the encoder needs it."""
    import av

    frame = av.VideoFrame.from_numpy_buffer(i420, format="yuv420p")
    frame.pts = pts
    for packet in stream.encode(frame):
        container.mux(packet)


def flush(stream: Any, container: Any) -> None:
    """Drain the encoder's delayed packets into the container (before closing it)."""
    for packet in stream.encode(None):
        container.mux(packet)


def _bits(text: str) -> int:
    text = text.strip().upper()
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("KM")) * scale)
