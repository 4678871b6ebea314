"""Event clips: an mp4 from `pre_s` before an event to `post_s` after it, around every event of chosen kinds.

    clips = ClipRecorder("door", ClipOutput(dir="clips", pre_s=5, post_s=5), tap=source.packets)
    hub.attach_clips("door", clips)            # the hub marks events, clips tell it when a file is complete
    Pipeline(..., sinks=[clips, ...])          # a Sink: frames for frame clips, close() at the end

What a reviewer wants of an event is the moment itself and what led to it, so each source keeps a bounded
ring of its recent media: the camera's own packets (H.264/H.265 files and streams, from the source's tap,
core/packets.py: a clip is a packet copy, no decode, no encode) or, for sources that only give pictures
(webcams, image folders) and for `annotated: true`, the frames the pipeline hands this sink (encoded once,
when a clip is written). The ring holds `pre_s` plus a margin (the pipeline runs a little behind the
reader) back to a keyframe, at most MAX_ITEMS items (and MAX_FRAME_BYTES of frames).

The pipeline thread calls `mark(events)` (through `EventHub.publish`) before the events are delivered: an
event of a chosen kind and class either joins the clip still open (it happened before that clip's end:
close events merge into one clip, which then ends `post_s` after the last of them) or opens a new one, and
gets `Event.clip`, the clip's final path, at once. `mark` only queues work and returns. A writer thread
does the rest: it starts the file on the last keyframe at or before `event - pre_s` (the ring's first when
the ring is shorter), writes what follows until the media passes the clip's end, closes the file under a
`.part` name and renames it, then calls `on_ready(source, path, events)` (the hub tells the consumers that
define `clip_ready`). A reconnect, dropped packets (a writer too slow) or the end of the source end a clip
early, on what decodes, and a clip is cut at MAX_CLIP_S. Media timeline: packets' presentation time in
seconds, which is the decoded frames' `pts`, so `Event.stream_time` (frames without pts use their capture
time on both sides; an event far off the ring's timeline, e.g. from a frame FFmpeg stamped no pts on, is
taken as happening at the ring's newest media time).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from yolovino.inference.core.events import Event
from yolovino.inference.core.fileio import safe_name
from yolovino.inference.core.packets import PacketTap, TapPacket
from yolovino.inference.core.results import FrameResult
from yolovino.inference.notify.config import ClipOutput
from yolovino.inference.outputs.base import Sink, even_size, fit, make_folder, to_i420
from yolovino.inference.outputs.copy import FRAGMENTED, PART, PacketFile
from yolovino.inference.outputs.encode import add_video_stream, encode_i420, finish_file

log = logging.getLogger(__name__)

LAG_S = 2.0  # the ring keeps this much more than pre_s: the pipeline's events trail the reader's packets
MAX_SKEW_S = 30.0  # an event this far from the ring's newest media time is on another clock: taken as "now"
MAX_CLIP_S = 600.0  # a clip of events that never stop is cut here (the next event starts a new one)
MAX_ITEMS = {"copy": 5000, "frames": 300}  # ring bound: packets are small, frames are ~1 MB each
MAX_FRAME_BYTES = 256_000_000  # and frames at most this much per source (fewer seconds of pre-roll at 4K)
QUEUE_SIZE = {"copy": 4000, "frames": 120}


@dataclass(frozen=True, eq=False)
class FrameItem:
    """A picture in the ring of a frame-clip source: every one starts a clip as well as a keyframe does."""

    time: float
    image: np.ndarray
    keyframe: bool = True


Item = TapPacket | FrameItem


@dataclass(eq=False)
class _Clip:
    path: Path
    start: float  # media time: the first event - pre_s
    end: float  # media time: the last event + post_s
    events: list[Event]
    done: bool = False  # no more events join it (set under the recorder's lock)
    file: Any = None  # PacketFile | _FrameFile, writer thread only
    first: float | None = field(default=None)  # media time of its first item


class _FrameFile:
    """A clip encoded from frames (H.264, fragmented mp4, `.part` then renamed), the frame size of the first."""

    def __init__(self, final: Path, first: FrameItem, fps: float):
        import av

        self.final = final
        self.part = final.with_name(final.name + PART)
        self.start_time, self.end_time, self._last = first.time, first.time, -1
        self._size = even_size(first.image)
        self._container: Any = av.open(str(self.part), "w", format="mp4", options=dict(FRAGMENTED))
        options = {"crf": "23", "preset": "ultrafast", "g": str(max(1, round(fps)))}
        self._stream = add_video_stream(self._container, *self._size, fps, options=options)
        self.write(first)

    def write(self, item: FrameItem) -> bool:
        pts = max(round((item.time - self.start_time) * 1000), self._last + 1)
        encode_i420(self._stream, self._container, to_i420(fit(item.image, self._size)), pts)
        self._last, self.end_time = pts, max(self.end_time, item.time)
        return True

    def finish(self) -> Path:
        finish_file(self._stream, self._container, self.part, self.final)
        return self.final

    def abort(self) -> None:
        try:
            self._container.close()
        finally:
            self.part.unlink(missing_ok=True)


class ClipRecorder(Sink):
    """One source's event clips (see the module docstring); a `notify.base.ClipMarker` for the hub."""

    def __init__(self, source_id: str, cfg: ClipOutput, *, tap: PacketTap | None = None, fps: float = 25.0):
        self.source_id, self.cfg, self.fps = source_id, cfg, fps
        self.mode = "copy" if tap is not None and not cfg.annotated else "frames"
        self.folder = make_folder(Path(cfg.dir) / safe_name(source_id), "clips")
        self.on_ready: Any = None  # (source, path, events) -> None, set by EventHub.attach_clips
        self.clips: list[Path] = []  # complete clips, in the order they were finished
        self.dropped = 0  # media items lost because the writer was behind
        self.closed = False
        self._kinds, self._classes = frozenset(cfg.kinds), None if cfg.classes is None else frozenset(cfg.classes)
        self._lock = threading.Lock()
        self._ring: deque[Item] = deque()
        self._latest: _Clip | None = None  # the clip new events may join
        self._pending = 0  # clips queued or being written: media goes to the writer only then
        self._names: set[str] = set()
        self._need_key = False
        self._queued = 0  # media items waiting for the writer
        self._queue: queue.Queue[tuple | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"clips:{source_id}", daemon=True)
        self._thread.start()
        self._tap = tap if self.mode == "copy" else None
        if self._tap is not None:
            self._tap.subscribe(self._add)

    @property
    def backlog(self) -> int:
        """Media items queued for the writer (packets or frames of the clips being written)."""
        return self._queued

    # -- pipeline thread ----------------------------------------------------------------------------
    def mark(self, events: list[Event]) -> None:
        """Give each event of a chosen kind and class its clip (a new one, or the open one it falls in)."""
        chosen = [e for e in events if e.kind in self._kinds and (self._classes is None or e.label in self._classes)]
        if not chosen or self.closed:
            return
        with self._lock:
            newest = self._ring[-1].time if self._ring else None
            for e in chosen:
                t, clip = e.stream_time, self._latest
                if newest is not None and abs(t - newest) > MAX_SKEW_S:
                    t = newest  # a frame without pts (stamped with its capture time): the media's now
                if clip is not None and not clip.done and t <= clip.end:
                    clip.end = max(clip.end, t + self.cfg.post_s)
                    clip.events.append(e)
                else:
                    clip = self._latest = _Clip(self._name(e), t - self.cfg.pre_s, t + self.cfg.post_s, [e])
                    self._pending += 1
                    self._put(("start", clip, list(self._ring)))
                e.clip = str(clip.path)

    def write(self, fr: FrameResult) -> None:
        """Frame clips: the frame (annotated when asked and drawn) into the ring; packet clips ignore frames."""
        if self.mode == "frames":
            f = fr.frame
            self._add(
                FrameItem(f.pts if f.pts is not None else f.captured_at, fr.image if self.cfg.annotated else f.image)
            )

    def _name(self, e: Event) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(e.timestamp))
        name, n = f"{stamp}-{e.frame_index}-{e.kind.value}.mp4", 1
        while name in self._names or (self.folder / name).exists():
            n += 1
            name = f"{stamp}-{e.frame_index}-{e.kind.value}-{n}.mp4"
        self._names.add(name)
        return self.folder / name

    # -- reader thread (packets) or pipeline thread (frames) -----------------------------------------
    def _add(self, item: Item) -> None:
        """Into the ring; to the writer too while a clip is being written. Never waits."""
        with self._lock:
            ring = self._ring
            if (
                ring
                and isinstance(item, TapPacket)
                and isinstance(ring[-1], TapPacket)
                and item.info is not ring[-1].info
            ):
                ring.clear()  # a new connection: its timeline starts over
            ring.append(item)
            horizon = item.time - self.cfg.pre_s - LAG_S
            most = MAX_ITEMS[self.mode]
            if isinstance(item, FrameItem):
                most = max(2, min(most, MAX_FRAME_BYTES // max(item.image.nbytes, 1)))
            while len(ring) > most or (len(ring) > 1 and _next_key_before(ring, horizon)):
                ring.popleft()
                while ring and not ring[0].keyframe:
                    ring.popleft()
            if self._pending:
                self._put(("item", item))

    def _put(self, work: tuple) -> None:
        """Queue work for the writer (lock held; never waits). Clip starts always go; media beyond
        QUEUE_SIZE items waiting is dropped up to the next keyframe, and the writer ends the clips being
        written at that gap (what they hold decodes)."""
        if work[0] == "item":
            if self._need_key and not work[1].keyframe:
                self.dropped += 1
                return
            if self._queued >= QUEUE_SIZE[self.mode]:
                self.dropped += 1
                if not self._need_key:
                    log.warning("clips of %s: writer behind, media dropped up to the next keyframe", self.source_id)
                self._need_key = True
                return
            work, self._need_key = (*work, self._need_key), False
            self._queued += 1
        self._queue.put_nowait(work)  # unbounded: media is bounded above, starts by the events

    # -- writer thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        active: list[_Clip] = []
        while True:
            work = self._queue.get()
            if work is None:
                break
            try:
                if work[0] == "start":
                    clip, ring = work[1], work[2]
                    active.append(clip)
                    for item in ring[_start_index(ring, clip.start) :]:
                        self._feed(clip, item, active)
                else:
                    item, gap = work[1], work[2]
                    with self._lock:
                        self._queued -= 1
                    for clip in list(active):
                        if gap and clip.file is not None:
                            self._finish(clip, active)  # complete up to the gap
                        else:
                            self._feed(clip, item, active)
            except Exception as exc:  # noqa: BLE001 - a full disk must not end the writer
                log.error("clips of %s: %s", self.source_id, exc)
                for clip in list(active):
                    self._finish(clip, active, abort=True)
        for clip in list(active):
            self._finish(clip, active)  # the source ended: the clips end with it

    def _feed(self, clip: _Clip, item: Item, active: list[_Clip]) -> None:
        if clip not in active:
            return
        f = clip.file
        if f is None:
            if not item.keyframe:
                return
            clip.file = (
                PacketFile(clip.path, item) if isinstance(item, TapPacket) else _FrameFile(clip.path, item, self.fps)
            )
            clip.first = item.time
        elif isinstance(item, TapPacket) and item.info is not f.info:
            self._finish(clip, active)  # a reconnect: the old stream's clip ends
            return
        else:
            f.write(item)
        with self._lock:
            over = item.time >= clip.end or item.time - (clip.first or item.time) >= MAX_CLIP_S
        if over:
            self._finish(clip, active)

    def _finish(self, clip: _Clip, active: list[_Clip], abort: bool = False) -> None:
        with self._lock:
            clip.done = True
            self._pending -= 1
            self._names.discard(clip.path.name)  # from now on the file (or nothing) is there
            if self._latest is clip:
                self._latest = None
        active.remove(clip)
        f, clip.file = clip.file, None
        if f is None or abort:
            if f is not None:
                f.abort()
            log.warning("clips of %s: no clip written for %s (no media after the event)", self.source_id, clip.path)
            return
        path = f.finish()
        self.clips.append(path)
        if self.on_ready is not None:
            self.on_ready(self.source_id, str(path), list(clip.events))

    def close(self) -> None:
        """Stop taking media, write the clips still open with what they have (renamed, reported). Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self._tap is not None:
            self._tap.unsubscribe(self._add)
        self._queue.put(None)
        self._thread.join(timeout=60)
        if self._thread.is_alive():
            log.warning("clips of %s: writer did not finish within 60 s", self.source_id)


def _next_key_before(ring: deque[Item], horizon: float) -> bool:
    """Whether a keyframe after the ring's first item is still at or before `horizon` (the ring may start there)."""
    for i, item in enumerate(ring):
        if i and item.keyframe:
            return item.time <= horizon
    return False


def _start_index(ring: list[Item], start: float) -> int:
    """Where a clip starting at media time `start` begins in the ring: its last keyframe at or before
    `start`, else its first keyframe (the ring is shorter than pre_s: the clip starts as early as it can)."""
    best = None
    for i, item in enumerate(ring):
        if item.keyframe:
            if item.time <= start or best is None:
                best = i
            if item.time > start:
                break
    return best if best is not None else len(ring)


__all__ = ["ClipRecorder", "FrameItem"]
