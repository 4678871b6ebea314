"""Demuxed packets -> decoded frames, with corrupt data counted instead of ending the stream.

What FFmpeg leaves to its caller, done here for every PyAV source (files and streams alike):

* Corrupt data. A decoder given damaged bytes (a burst of lost or flipped RTP packets, a bad sector)
  either rejects the packet (PyAV raises InvalidDataError) or conceals the damage and flags the frame
  corrupt. Neither is a reason to drop the connection: the picture is whole again at the next keyframe.
  `decode_tolerant` skips rejected packets, passes concealed frames on, and reports each to a callback,
  so the source counts them (SourceStats.decode_errors) and logs one line per burst, not per packet.
  FFmpeg's HEVC decoder reports neither: it drops a picture it cannot decode without a word (only
  err_detect=explode makes it say so, and that also throws away whole pictures over a malformed SEI,
  which some cameras send all the time), so H.265 damage shows as missing frames, not as decode errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator


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
