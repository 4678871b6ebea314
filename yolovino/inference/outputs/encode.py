"""The one PyAV video encoder of every output that encodes in-process: the mp4 file (`video_file`), the
recording segments (`recording`) and the RTSP publisher (`rtsp_publish`).

`add_video_stream` opens and configures the encoder (codec, size, 4:2:0, rate, options, millisecond time
base), `encode_i420` encodes and muxes one picture, `flush` drains the encoder before the container closes,
and `finish_file` ends a file written under a temporary name and gives it its final one.
Each output only says what differs: its container, its codec options (crf and preset for files, a keyframe
a second for segments, zerolatency and a bit rate for RTSP) and how it stamps frames.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

TIME_BASE = Fraction(1, 1000)  # of every encoded stream: pts in milliseconds


def add_video_stream(
    container: Any,
    width: int,
    height: int,
    fps: float,
    *,
    codec: str = "libx264",
    options: Mapping[str, str] | None = None,
    bit_rate: int | None = None,
) -> Any:
    """A yuv420p video stream of `codec` added to an open PyAV output container, `width` x `height` (even),
    nominal rate `fps`, pts in TIME_BASE. Raises whatever PyAV raises when the codec is missing."""
    stream: Any = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    if bit_rate is not None:
        stream.bit_rate = bit_rate
    if options:
        stream.options = dict(options)
    stream.codec_context.time_base = TIME_BASE
    return stream


def encode_i420(stream: Any, container: Any, i420: np.ndarray, pts: int) -> None:
    """Encode one I420 picture at `pts` and mux what the encoder gives back: the one encoding step of every
    video output. The array is wrapped without a copy; the frame keeps it alive while the encoder needs it."""
    import av

    frame = av.VideoFrame.from_numpy_buffer(i420, format="yuv420p")
    frame.pts = pts
    for packet in stream.encode(frame):
        container.mux(packet)


def flush(stream: Any, container: Any) -> None:
    """Drain the encoder's delayed packets into the container (before closing it)."""
    for packet in stream.encode(None):
        container.mux(packet)


def finish_file(stream: Any, container: Any, tmp: Path, final: Path) -> None:
    """Drain the encoder, close the container and rename its file from `tmp` to `final`: a reader sees the
    final name only once the file is complete (the mp4 output, each recording segment)."""
    try:
        flush(stream, container)
    finally:
        container.close()
    os.replace(tmp, final)
