"""Demuxed packets -> upright BGR pictures, with corrupt data counted instead of ending the stream.

Two things FFmpeg leaves to its caller, done here for every PyAV source (files and streams alike):

* Corrupt data. A decoder given damaged bytes (a burst of lost or flipped RTP packets, a bad sector)
  either rejects the packet (PyAV raises InvalidDataError) or conceals the damage and flags the frame
  corrupt. Neither is a reason to drop the connection: the picture is whole again at the next keyframe.
  `decode_tolerant` skips rejected packets, passes concealed frames on, and reports each to a callback,
  so the source counts them (SourceStats.decode_errors) and logs one line per burst, not per packet.
  FFmpeg's HEVC decoder reports neither: it drops a picture it cannot decode without a word (only
  err_detect=explode makes it say so, and that also throws away whole pictures over a malformed SEI,
  which some cameras send all the time), so H.265 damage shows as missing frames, not as decode errors.
* Rotation. Phones store portrait video as landscape pictures plus a display matrix; players (and the
  ffmpeg CLI) turn the picture upright, and a user expects to see it, and boxes drawn on it, that way.
  `upright` applies the matrix's quarter turns (the only angles cameras write).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

# cv2.rotate codes by counter-clockwise quarter turns (filled on first use: cv2 is imported lazily)
_ROTATE: dict[int, int] = {}


def quarter_turns(rotation: float | None) -> int:
    """Counter-clockwise quarter turns that make a frame upright, from PyAV's `frame.rotation` (the display
    matrix angle in degrees, counter-clockwise, as ffprobe shows it). Angles that are not a multiple of 90
    (never written by cameras) are left alone."""
    if not rotation:
        return 0
    turns, rest = divmod(float(rotation), 90.0)
    return int(turns) % 4 if rest == 0 else 0


def upright(frame) -> np.ndarray:
    """A decoded av.VideoFrame as a BGR uint8 array, turned as its display matrix says."""
    image = frame.to_ndarray(format="bgr24")
    turns = quarter_turns(frame.rotation)
    if not turns:
        return image
    import cv2

    if not _ROTATE:
        _ROTATE.update({1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE})
    return cv2.rotate(image, _ROTATE[turns])


# pixel formats whose first plane is 8-bit luma (Y), what the motion detector can read without converting
_LUMA_FORMATS = frozenset(
    "yuv420p yuvj420p yuv422p yuvj422p yuv444p yuvj444p yuv440p yuvj440p yuv411p yuvj411p yuv410p "
    "nv12 nv21 nv16 gray".split()
)
_RANGE_JPEG = 2  # AVCOL_RANGE_JPEG: full-range luma (0..255)


class Picture:
    """A decoded av.VideoFrame before its BGR conversion (sources hand it to Frame.decoded).

    `bgr()` is `upright(frame)`, the very array an eager conversion gives; `luma` is a view of the Y plane
    (None for rotated pictures and pixel formats without an 8-bit Y plane: the motion detector then reads
    the BGR image). Why: converting 768x432 to BGR costs ~0.2-0.4 ms of CPU per frame, as much as the
    motion detector itself, and on an idle camera most frames are only looked at by the motion detector."""

    __slots__ = ("frame", "size", "luma", "luma_full")

    def __init__(self, frame):
        self.frame = frame
        turns = quarter_turns(frame.rotation)
        h, w = int(frame.height), int(frame.width)
        self.size = (w, h) if turns % 2 else (h, w)  # (height, width) of the upright picture
        self.luma: np.ndarray | None = None
        name = frame.format.name
        self.luma_full = name.startswith("yuvj") or name == "gray" or frame.color_range == _RANGE_JPEG
        if not turns and name in _LUMA_FORMATS:
            plane = frame.planes[0]
            rows = np.frombuffer(plane, np.uint8)
            if plane.line_size >= w and rows.size >= plane.line_size * h:
                self.luma = rows[: plane.line_size * h].reshape(h, plane.line_size)[:, :w]

    def bgr(self) -> np.ndarray:
        return upright(self.frame)


def decode_tolerant(packets: Iterable, on_error: Callable[[bool, str], None]) -> Iterator:
    """Decode each packet; a packet the decoder rejects is skipped and a concealed (corrupt) frame is passed
    on, each reported as `on_error(rejected, reason)`. PyAV's interrupt (a read timeout) and errors from
    the demuxer (raised by iterating `packets`) are not decode errors: they propagate."""
    import av

    for packet in packets:
        try:
            frames = packet.decode()
        except av.error.ExitError:
            raise
        except av.error.FFmpegError as exc:
            on_error(True, f"packet rejected by the decoder: {type(exc).__name__}")
            continue
        for frame in frames:
            if frame.is_corrupt:
                on_error(False, "frame decoded with concealed errors")
            yield frame
