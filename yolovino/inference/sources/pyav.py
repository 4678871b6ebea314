"""Video files, GIFs and network streams (RTSP, HTTP, ...) decoded with PyAV (FFmpeg)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from yolovino.inference.core.errors import SourceError
from yolovino.inference.core.media import NETWORK_SCHEMES
from yolovino.inference.core.packets import PacketTap, StreamInfo
from yolovino.inference.core.redact import one_line
from yolovino.inference.sources.base import Source
from yolovino.inference.sources.packets import Picture, decode_tolerant
from yolovino.inference.sources.pinned import pinned_options, refuse_rtsp_redirect

log = logging.getLogger(__name__)


class PyAVSource(Source):
    """Video file, GIF or network stream decoded with PyAV.

    `packets` is the tap of the compressed video (core/packets.py): every demuxed packet goes to its
    listeners before it is decoded (recording by copy, event clips)."""

    kind = "video"

    def __init__(
        self,
        spec: str,
        *,
        live: bool,
        open_timeout: float = 10.0,
        read_timeout: float = 3.0,
        options: dict | None = None,
        pinned: bool = False,
        **kw,
    ):
        """pinned: open this URL and nothing else (no redirects, no playlists; see pinned.py): for URLs a
        user typed into the web page, which an allow-list checked."""
        super().__init__(spec, live=live, **kw)
        self.network = "://" in self.spec and urlsplit(self.spec).scheme.lower() in NETWORK_SCHEMES
        self.reconnectable = self.network
        self.open_timeout, self.read_timeout = open_timeout, read_timeout
        self.options = dict(options or {})
        self.pinned = pinned and self.network
        self._first: tuple[Any, Iterator[Any]] | None = None  # a file's first frame, decoded at open to check it
        self._rejected = 0  # packets of this file the decoder rejected (they give no frame)
        self.packets: PacketTap = PacketTap(self.display)
        self.stream_info: StreamInfo | None = None  # of the current connection, once opened

    def _av_options(self) -> dict:
        opts: dict[str, str] = {}
        scheme = urlsplit(self.spec).scheme.lower() if self.network else ""
        if scheme in ("rtsp", "rtsps"):
            opts.update(rtsp_transport="tcp", timeout=str(int(self.read_timeout * 1e6)))
        elif scheme in ("http", "https"):
            opts.update(rw_timeout=str(int(self.read_timeout * 1e6)), reconnect="0")
        if self.network:
            opts.update(analyzeduration="500000", probesize="65536")
        opts.update({k: str(v) for k, v in self.options.items()})
        if self.pinned:
            opts.update(pinned_options(self.spec))  # last: no extra option can loosen them
        return opts

    def _open(self):
        import av

        try:
            if self.network:
                asked = refuse_rtsp_redirect(self.spec, self.display, self.open_timeout) if self.pinned else None
                try:
                    container = av.open(
                        self.spec, options=self._av_options(), timeout=(self.open_timeout, self.read_timeout)
                    )
                finally:
                    if asked is not None:
                        asked.close()
            else:
                container = av.open(self.spec)
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise SourceError(f"{self.display}: cannot open ({one_line(exc, self.spec)})") from None
        try:
            if not container.streams.video:
                raise SourceError(f"{self.display}: no video stream")
            stream = container.streams.video[0]
            # frame threading holds (threads - 1) decoded frames back: fine for files, but on a live stream
            # that is 2 frame intervals of latency on a 2-core box, so live streams use slice threading
            stream.thread_type = "SLICE" if self.live else "AUTO"
            codec = stream.codec_context.name
            if self.codec is not None and codec != self.codec:
                log.warning("source %s: codec changed %s -> %s", self.display, self.codec, codec)
            self.codec = codec
            rate = stream.average_rate or stream.guessed_rate
            self.fps = float(rate) if rate else None
            self.packets.reset()
            try:
                self.stream_info = StreamInfo.from_stream(stream, self.fps)
            except Exception as exc:  # noqa: BLE001 - a codec PyAV cannot copy: decoding still works
                self.stream_info = None  # no packets for this connection (nothing to record by copy)
                log.info("source %s: its %s packets cannot be copied (%s)", self.display, codec, one_line(exc))
            if not self.network:
                # decode one frame now, so a file that is not a video / has zero frames fails at open
                self._rejected = 0
                decoder = decode_tolerant(self._tapped(container.demux(stream)), self._file_decode_error)
                try:
                    first = next(decoder)
                except StopIteration:
                    errors = f" ({self.stats.decode_errors} decode errors)" if self.stats.decode_errors else ""
                    raise SourceError(f"{self.display}: no decodable video frames{errors}") from None
                except Exception as exc:  # noqa: BLE001
                    raise SourceError(f"{self.display}: not a readable video ({one_line(exc, self.spec)})") from None
                self._first = (first, decoder)
        except BaseException:
            container.close()
            raise
        return container

    def _frames(self, container):
        if self._first is not None:
            first, decoder = self._first
            self._first = None
            yield Picture(first), _pts(first)
            frames = decoder
        elif self.network:
            frames = self._watched(container)
        else:
            self._rejected = 0
            frames = decode_tolerant(self._tapped(container.demux(container.streams.video[0])), self._file_decode_error)
        for f in frames:
            yield Picture(f), _pts(f)
        expected = container.streams.video[0].frames  # from the file index; 0 when unknown
        if not self.network and expected and self._index + self._rejected < expected - 2:
            raise SourceError(f"file is truncated: {self._index} of {expected} frames decoded")

    def _file_decode_error(self, rejected: bool, reason: str) -> None:
        self._rejected += rejected
        self._decode_error(rejected, reason)

    def _watched(self, container):
        """Decode a network stream; watchdog: packets that never give a picture for stall_timeout seconds
        (a camera sending garbage or only non-video data) count as an outage, like silence does
        (silence itself is caught by FFmpeg's read timeout)."""
        stream = container.streams.video[0]
        last = [time.monotonic()]

        def packets():
            for packet in self._tapped(container.demux(stream)):
                if time.monotonic() - last[0] > self.stall_timeout:
                    raise SourceError(f"no decodable frame for {self.stall_timeout:.0f} s")
                yield packet

        for f in decode_tolerant(packets(), self._decode_error):
            last[0] = time.monotonic()
            yield f

    def _tapped(self, packets: Iterator[Any]) -> Iterator[Any]:
        """The demuxed packets, each handed to the packet tap first (cheap: a copy of its bytes, only while
        someone listens)."""
        tap, info = self.packets, self.stream_info
        for packet in packets:
            if info is not None:
                tap.emit(packet, info)
            yield packet

    def _close_handle(self, container) -> None:
        container.close()


def _pts(frame) -> float | None:
    try:
        return float(frame.time) if frame.time is not None else None
    except (TypeError, ValueError):
        return None


class PacketSource(PyAVSource):
    """A stream that is demuxed and never decoded: its packets feed the tap, nothing else (no frames).

    For cameras with a sub-stream: the pipeline detects on the low-resolution `url` while the recorder
    copies the main stream (`record_url`) from this source, so the box never decodes the main stream. It
    reconnects like any stream (FFmpeg's read timeout, the base class's backoff)."""

    kind = "packets"

    def _frames(self, container):
        self._first = None  # a file's first frame, decoded at open to check it: not needed here
        for _ in self._tapped(container.demux(container.streams.video[0])):
            if self._stop.is_set():
                return
        if False:  # a generator that yields no frame: the base class's reader loop still runs it
            yield
