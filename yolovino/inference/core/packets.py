"""The camera's own compressed video, as the demuxer hands it over: `TapPacket`, `StreamInfo` and `PacketTap`.

Recording by packet copy (outputs/recording.py) and event clips (outputs/clips.py) write what the camera
sent, never a decoded and re-encoded picture: no decode or encode cost, the original resolution and quality.
A PyAV source demuxes packets before it decodes them; its `PacketTap` hands each one to the listeners that
subscribed, on the reader thread, before the packet is decoded.

Why copies, not PyAV's packets: a packet muxed into an output is rewritten in place (stream, time base,
timestamps), so two consumers could not share one; `TapPacket` holds the bytes and timestamps, immutable,
and each consumer makes its own `av.Packet` from them. Why `StreamInfo.template`: an output stream copied
from a camera needs the input stream's codec parameters (SPS/PPS in extradata), but an input stream dies
with its container (a reconnect closes it); the template is a stream of a never-started output container
that holds a copy of those parameters for as long as any packet refers to it
(`OutputContainer.add_stream_from_template(info.template)`).

Listeners run on the reader thread and must return at once (append to a ring, `put_nowait` on a bounded
queue): decoding never waits for them. A listener that raises is removed and logged once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

log = logging.getLogger(__name__)

COPYABLE = ("h264", "hevc")  # codecs recorded by copy by default: what cameras send, what mp4 players read


@dataclass(frozen=True, eq=False)
class StreamInfo:
    """One connection's video stream: codec, size, rate, time base, and a template to copy it from.
    A new connection (a reconnect) is a new StreamInfo: its timestamps start over."""

    codec: str
    width: int
    height: int
    fps: float | None
    time_base: Fraction
    template: Any = field(repr=False)  # a VideoStream of a private, never-started output container
    _holder: Any = field(default=None, repr=False)  # that container, kept alive with the template

    @classmethod
    def from_stream(cls, stream: Any, fps: float | None) -> StreamInfo:
        """Copy the codec parameters of an open PyAV input stream."""
        import io

        import av

        holder = av.open(io.BytesIO(), "w", format="nut")
        template = holder.add_stream_from_template(stream)
        cc = stream.codec_context
        return cls(cc.name, int(cc.width), int(cc.height), fps, Fraction(stream.time_base), template, holder)


@dataclass(frozen=True, eq=False)
class TapPacket:
    """One compressed video packet: bytes, timestamps in `info.time_base`, keyframe flag, and when it arrived
    (time.monotonic()). `time` is its presentation time in seconds, the timeline of the decoded frames'
    `pts` (so of `Event.stream_time`)."""

    data: bytes
    pts: int
    dts: int | None
    keyframe: bool
    duration: int
    info: StreamInfo
    arrival: float

    @property
    def time(self) -> float:
        return float(self.pts * self.info.time_base)

    @property
    def decode_ts(self) -> int:
        return self.dts if self.dts is not None else self.pts


PacketListener = Callable[[TapPacket], None]


class PacketTap:
    """The packets of one source, handed to every subscribed listener (see the module docstring).

    The tap keeps the packets since the last keyframe (PyAV's own, no copy; at most MAX_GOP) and replays
    them to a listener that subscribes: a recorder opened after its source has started (a file's reader
    runs ahead as soon as it opens) still starts on a keyframe instead of losing the first group."""

    MAX_GOP = 600

    def __init__(self, name: str = "source") -> None:
        self.name = name
        self.packets = 0  # packets handed over (counted only while someone listens)
        self._listeners: tuple[PacketListener, ...] = ()
        self._gop: list[tuple[Any, StreamInfo, float]] = []
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return bool(self._listeners)

    def subscribe(self, listener: PacketListener) -> None:
        """Add a listener; it first gets the current group of pictures, then every new packet."""
        with self._lock:
            for packet, info, arrival in self._gop:
                tap = _copy(packet, info, arrival)
                if tap is not None:
                    listener(tap)
            self._listeners = (*self._listeners, listener)

    def unsubscribe(self, listener: PacketListener) -> None:
        with self._lock:
            self._listeners = tuple(f for f in self._listeners if f != listener)

    def reset(self) -> None:
        """The connection is gone: its group of pictures must not start the next one's recording."""
        with self._lock:
            self._gop.clear()

    def emit(self, packet: Any, info: StreamInfo) -> None:
        """Hand a demuxed PyAV packet to the listeners (reader thread). Empty packets (the demuxer's end of
        stream) and packets with no timestamp at all are not media and are skipped."""
        if not packet.size:
            return
        now = time.monotonic()
        with self._lock:
            if packet.is_keyframe or len(self._gop) >= self.MAX_GOP:
                self._gop.clear()
            if packet.is_keyframe or self._gop:
                self._gop.append((packet, info, now))
            listeners = self._listeners
        if not listeners:
            return
        tap = _copy(packet, info, now)
        if tap is None:
            return
        self.packets += 1
        for listener in listeners:
            try:
                listener(tap)
            except Exception as exc:  # noqa: BLE001 - a broken consumer must never stop decoding
                self.unsubscribe(listener)
                log.error("packets of %s: a consumer failed (%s) and no longer gets packets", self.name, exc)


def _copy(packet: Any, info: StreamInfo, arrival: float) -> TapPacket | None:
    pts, dts = packet.pts, packet.dts
    if pts is None:
        pts = dts
    if pts is None:
        return None
    return TapPacket(bytes(packet), pts, dts, bool(packet.is_keyframe), packet.duration or 0, info, arrival)


__all__ = ["COPYABLE", "PacketListener", "PacketTap", "StreamInfo", "TapPacket"]
