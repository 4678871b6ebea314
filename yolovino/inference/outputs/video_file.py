"""Annotated video to a file (mp4, mkv, avi, mov), written atomically; the `save` output of a source."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from yolovino.inference.outputs.base import Sink, SinkError, even_size, fit, to_i420
from yolovino.inference.outputs.encode import TIME_BASE, add_video_stream, encode_i420, finish_file

log = logging.getLogger(__name__)


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

        fmt = {".mkv": "matroska", ".avi": "avi", ".mov": "mov"}.get(self.path.suffix.lower(), "mp4")
        container = av.open(str(self.tmp), "w", format=fmt)
        last = None
        for codec in [self.codec] if self.codec else ["libx264", "mpeg4"]:
            try:
                if codec == "libx264":
                    options, bit_rate = {"crf": str(self.crf), "preset": self.preset}, None
                else:
                    options, bit_rate = None, 4_000_000
                stream = add_video_stream(container, w, h, self.fps, codec=codec, options=options, bit_rate=bit_rate)
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
            if self._size is None:
                self._size = even_size(image)
            if self._container is None:
                self._open(*self._size)
            image = fit(image, self._size)
            encode_i420(self._stream, self._container, to_i420(image), self._next_pts(pts))
            self.frames += 1

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            if self._container is None:
                return
            finish_file(self._stream, self._container, self.tmp, self.path)
            log.info("wrote %s (%d frames, %s)", self.path, self.frames, self.codec)
