"""An mp4 written from the camera's own packets (core/packets.py): no decode, no encode, the original size.

    f = PacketFile(Path("door/20260101T120000Z.mp4"), first_packet)   # writes door/...mp4.part
    f.write(packet) ...                                                # same StreamInfo only
    f.finish()                                                         # renamed to the final name

Shared by recording by copy (recording.py) and event clips (clips.py). The file is a fragmented MP4 (index
first, a fragment closed at every keyframe and flushed at once) under a `.part` name, renamed when it is
complete: a kill loses at most the fragment being written and never leaves half a file under the final
name. The first packet must be a keyframe; timestamps are shifted so the file starts at 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

from yolovino.inference.core.packets import StreamInfo, TapPacket

log = logging.getLogger(__name__)

PART = ".part"
FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}


class PacketFile:
    """One mp4 being written by packet copy (see the module docstring)."""

    def __init__(self, final: Path, first: TapPacket):
        import av

        if not first.keyframe:
            raise ValueError("a copied file must start on a keyframe")
        self.final = Path(final)
        self.part = self.final.with_name(self.final.name + PART)
        self.info: StreamInfo = first.info
        self.start_ts = first.decode_ts  # in info.time_base; the file's zero
        self.start_time = first.time  # seconds, on the packets' timeline
        self.end_time = first.time
        self.packets = self.rejected = 0
        self._last_dts: int | None = None
        self._container: Any = av.open(str(self.part), "w", format="mp4", options=dict(FRAGMENTED))
        try:
            self._stream: Any = self._container.add_stream_from_template(self.info.template)
        except BaseException:
            self._container.close()
            raise
        self.write(first)

    def write(self, p: TapPacket) -> bool:
        """Mux one packet of the same stream; a packet the muxer refuses (timestamps out of order after a
        camera glitch) is skipped and counted, never fatal. Returns whether it was written."""
        import av

        dts = p.decode_ts - self.start_ts
        if dts < 0 or (self._last_dts is not None and dts <= self._last_dts):
            self.rejected += 1  # before the file's start, or not after the last one: mp4 refuses both
            return False
        packet = av.Packet(p.data)
        packet.pts, packet.dts = p.pts - self.start_ts, dts
        packet.time_base = p.info.time_base
        packet.is_keyframe = p.keyframe
        if p.duration:
            packet.duration = p.duration
        packet.stream = self._stream
        try:
            self._container.mux(packet)
        except av.error.FFmpegError as exc:
            self.rejected += 1
            if self.rejected == 1:
                log.warning("%s: a packet refused by the muxer (%s); skipping such packets", self.part, exc)
            return False
        self._last_dts = dts
        self.packets += 1
        self.end_time = max(self.end_time, p.time)
        return True

    def finish(self) -> Path:
        """Close the file and give it its final name; returns that name."""
        try:
            self._container.close()
        finally:
            os.replace(self.part, self.final)
        return self.final

    def abort(self) -> None:
        """Close without renaming (nothing usable was written); the `.part` file is removed."""
        with contextlib.suppress(Exception):
            self._container.close()
        with contextlib.suppress(OSError):
            self.part.unlink()


__all__ = ["FRAGMENTED", "PART", "PacketFile"]
