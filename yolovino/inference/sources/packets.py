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
