"""Recording by packet copy: the camera's own H.264/H.265 packets into crash-safe, keyframe-aligned segments.

    rec = PacketRecorder(root / "door", "door", source.packets, segment_seconds=60, retention=...)

The same segments as `SegmentRecorder` (recording.py: fragmented MP4, `<UTC start>.mp4.part` renamed when
complete, `.part` files of a crash recovered, retention over the whole root), but nothing is decoded or
encoded: the packets come from the source's tap (core/packets.py) and are muxed as they are, so a segment
has the camera's resolution and quality at a small fraction of the CPU of encoding frames
(bench/record_bench.py). Each segment starts on a keyframe: a new one begins at the first keyframe after
`segment_seconds`, so segments last `segment_seconds` up to one keyframe interval more.

The tap's listener only puts the packet on a bounded queue (never blocking the decoder); a writer thread
muxes. When that queue is full (a disk that stalls), packets are dropped up to the next keyframe, counted,
and the segment ends there: what is written always decodes. A reconnect (a new stream) ends the segment too.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from pathlib import Path
from typing import Any

from yolovino.inference.core.packets import PacketTap, TapPacket
from yolovino.inference.core.results import FrameResult
from yolovino.inference.outputs.base import Sink, make_folder
from yolovino.inference.outputs.copy import PacketFile
from yolovino.inference.outputs.recording import Retention, new_segment_name, recover_parts

log = logging.getLogger(__name__)

JITTER_S = 0.05  # keyframes on a 90 kHz RTP clock land a few ms either side of the camera's grid


class PacketRecorder(Sink):
    """A Sink (for its place in a source's outputs and its close) that records the source's packets; the
    frames the pipeline hands it are ignored."""

    def __init__(
        self,
        folder: str | os.PathLike,
        source_id: str | None,
        tap: PacketTap,
        *,
        segment_seconds: float = 60.0,
        retention: Retention | None = None,
        queue_size: int = 2000,
        owned: Any = None,
    ):
        """owned: a source only this recorder uses (a camera's main stream, sources.PacketSource), closed
        with it."""
        self.folder = make_folder(folder, "recording")
        self.source_id = source_id
        self.segment_seconds = float(segment_seconds)
        self.retention = retention
        self.segments: list[Path] = []  # complete segments written by this recorder
        self.packets = self.dropped = 0
        self.closed = False
        self._file: PacketFile | None = None
        self._queue: queue.Queue[tuple[TapPacket, bool] | None] = queue.Queue(maxsize=max(1, queue_size))
        self._need_key = False  # reader side: packets were dropped, skip to the next keyframe
        self._said_full = False
        recover_parts(self.folder)
        if retention is not None:
            retention.register(self.folder)
            retention.enforce()
        self._tap, self._owned = tap, owned
        self._thread = threading.Thread(target=self._run, name=f"record-copy:{source_id}", daemon=True)
        self._thread.start()
        tap.subscribe(self._offer)

    @property
    def current(self) -> Path | None:
        """The segment being written now (its `.part` name), if any."""
        f = self._file
        return f.part if f is not None else None

    # -- reader thread ------------------------------------------------------------------------------
    def _offer(self, p: TapPacket) -> None:
        """The tap's listener: queue the packet, never wait (see the module docstring)."""
        gap = self._need_key
        if gap and not p.keyframe:
            self.dropped += 1
            return
        try:
            self._queue.put_nowait((p, gap))
            self._need_key = False
        except queue.Full:
            self.dropped += 1
            self._need_key = True
            if not self._said_full:
                self._said_full = True
                log.warning("recording %s: writer behind, dropping packets up to the next keyframe", self.folder)

    # -- writer thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            try:
                self._write(*item)
            except Exception as exc:  # noqa: BLE001 - a full disk must not end the recorder for good
                log.error("recording %s: %s; starting a new segment at the next keyframe", self.folder, exc)
                self._end_segment(abort=True)
        self._end_segment()

    def _write(self, p: TapPacket, gap: bool) -> None:
        f = self._file
        if f is not None and (gap or p.info is not f.info):
            self._end_segment()  # lost packets or a new connection: the segment ends on what decodes
            f = None
        if f is not None and p.keyframe and p.time - f.start_time >= self.segment_seconds - JITTER_S:
            self._end_segment()
            f = None
        if f is None:
            if not p.keyframe:
                return  # a segment starts on a keyframe
            self._file = PacketFile(self.folder / new_segment_name(self.folder), p)
        else:
            f.write(p)
        self.packets += 1

    def _end_segment(self, abort: bool = False) -> None:
        f, self._file = self._file, None
        if f is None:
            return
        if abort:
            f.abort()
            return
        self.segments.append(f.finish())
        if self.retention is not None:
            self.retention.enforce()

    # -- Sink ---------------------------------------------------------------------------------------
    def write(self, fr: FrameResult) -> None:
        """Frames are not recorded here: the packets are."""

    def close(self) -> None:
        """Stop listening, write what is queued, finish the segment (renamed to its final name)."""
        if self.closed:
            return
        self.closed = True
        self._tap.unsubscribe(self._offer)
        if self._owned is not None:
            self._owned.close()
        self._queue.put(None)  # the writer drains the queue: it always makes room
        self._thread.join(timeout=30)
        if self._thread.is_alive():
            log.warning("recording %s: writer did not finish within 30 s", self.folder)


__all__ = ["PacketRecorder"]
