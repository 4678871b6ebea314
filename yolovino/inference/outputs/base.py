"""What every video output shares: the `Sink` interface, its error, and the frame helpers of encoders.

Every sink has `write(frame_result)` and an idempotent `close()`. A sink may be bound to one source with
`source_id=...` (the pipeline then only hands it that source's frames); None takes every frame.
Video sinks write `frame_result.annotated` when present, else the raw frame. The outputs themselves are one
module each (`video_file`, `jsonl`, `rtsp_publish`, `recording`, `rtsp_server`), found by kind through
`outputs.registry`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from yolovino.inference.core.errors import InferenceError
from yolovino.inference.core.results import FrameResult


class SinkError(InferenceError):
    """An output that cannot be written (bad path, no encoder)."""


def make_folder(folder: str | os.PathLike, what: str) -> Path:
    """`folder` made (with its parents) for an output; one clear SinkError naming `what` if it cannot be."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SinkError(f"{path}: cannot create the {what} folder ({exc.strerror})") from None
    return path


class Sink:
    """Where FrameResults go. Subclasses implement `write`; `close` finalises (idempotent)."""

    source_id: str | None = None

    def accepts(self, source_id: str) -> bool:
        """Whether the pipeline should hand this sink that source's frames."""
        return self.source_id is None or self.source_id == source_id

    def wants_pictures(self) -> bool:
        """Whether its next `write` looks at `fr.image` (video, pictures): a pipeline with draw_for_sinks
        draws a source's frame only when one of its sinks does. A sink that writes only data says False."""
        return True

    def write(self, fr: FrameResult) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class NullSink(Sink):
    """Counts frames and drops them (benchmarks, display-free runs)."""

    def __init__(self, source_id: str | None = None):
        self.source_id = source_id
        self.frames = 0
        self.closed = False

    def wants_pictures(self) -> bool:
        return False

    def write(self, fr) -> None:
        self.frames += 1

    def close(self) -> None:
        self.closed = True


def even_size(image: np.ndarray) -> tuple[int, int]:
    """(width, height) of the image trimmed to even numbers, the only sizes 4:2:0 encoders take. The first
    frame of a video output fixes the output's size this way; `fit` brings every later frame to it."""
    h, w = image.shape[:2]
    return w - w % 2, h - h % 2


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
