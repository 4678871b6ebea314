"""Crash-safe segmented recording: fixed-duration fragmented MP4 files with retention by age and size.

Two recorders write the same segments: `SegmentRecorder` encodes the frames it is given (the annotated
picture, or the frames of a source that has no packets: a webcam, an image folder), and
`PacketRecorder` (record_copy.py) copies the camera's own H.264/H.265 packets (no decode, no encode, the
original resolution; the default for such sources).

    rec = SegmentRecorder(root / "door", "door", fps=10, segment_seconds=60, retention=Retention(root, ...))
    Pipeline(..., sinks=[rec, ...])

Why fragmented MP4: a plain MP4 is unreadable until its index (moov) is written at the end, so a kill or a
power cut loses the whole file. Here the index comes first (empty_moov) and every keyframe (one a
second) closes a self-contained fragment that is flushed to the file at once, so a segment cut by SIGKILL
plays up to its last fragment in any player (ffprobe, VLC, browsers).

Naming is atomic: a segment is written as `<UTC start>.mp4.part` and renamed to `<UTC start>.mp4` when it
is complete; `.part` files left by a crash are renamed when a recorder next starts in that folder.
Retention runs at each rollover over the whole recording root: complete segments older than `max_age`
go, then the oldest until the total is under `max_bytes`; only files with the recorder's naming in the
root's camera folders (see `Retention`), never anything else, and links are not followed.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from yolovino.inference.core.packets import COPYABLE
from yolovino.inference.core.results import FrameResult
from yolovino.inference.outputs.base import Sink, SinkError, even_size, fit, make_folder, to_i420
from yolovino.inference.outputs.encode import add_video_stream, encode_i420, finish_file

log = logging.getLogger(__name__)

PART = ".part"


SEGMENT_NAME = re.compile(r"^\d{8}T\d{6}Z(?:-\d+)?\.mp4$")  # what SegmentRecorder._open names a segment


@dataclass(frozen=True)
class Retention:
    """Keep at most `max_age` seconds and `max_bytes` bytes of complete segments under `root` (None = no limit).

    Only what a recorder wrote may go: regular files named like a segment (`20260101T120000Z.mp4`,
    `...Z-2.mp4`) in `root` itself or in one of its camera folders. Anything else there (a family video, a
    folder named `clip.mp4`, files deeper down) is neither counted nor deleted. Symbolic links are never
    followed while looking, so a link cannot lead retention out of `root`; a recorder's own folder is
    counted even when it is a link (`register`), because the recorder writes there: its segments count
    towards the quota and are what the quota deletes. Deleting never raises: a file that cannot go is
    logged once and skipped, so retention can never stop a recording. The newest segment of each folder
    is kept even when it alone is over `max_bytes` (a quota smaller than one segment keeps the latest
    recording rather than none; logged once).
    """

    root: Path
    max_age: float | None = None
    max_bytes: int | None = None
    _folders: set = field(default_factory=set, init=False, compare=False, repr=False)
    _said: set = field(default_factory=set, init=False, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, compare=False, repr=False)

    def register(self, folder: Path) -> None:
        """A recorder writes into `folder`: count and prune its segments wherever the folder really is."""
        with self._lock:
            self._folders.add(os.path.realpath(folder))

    def segments(self) -> list[tuple[float, int, Path]]:
        """(mtime, size, path) of every complete segment retention owns, oldest first."""
        folders = {os.path.realpath(self.root)}
        for entry in _scan(self.root):
            if entry.is_dir(follow_symlinks=False):
                folders.add(os.path.realpath(entry.path))
        with self._lock:
            folders |= self._folders
        out = []
        for folder in sorted(folders):
            for entry in _scan(Path(folder)):
                if not SEGMENT_NAME.match(entry.name) or not entry.is_file(follow_symlinks=False):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:  # another recorder's retention got it first
                    continue
                out.append((st.st_mtime, st.st_size, Path(entry.path)))
        out.sort()
        return out

    def enforce(self, now: float | None = None) -> list[Path]:
        """Delete what is beyond the limits, oldest first; returns the deleted paths. Never raises."""
        now = time.time() if now is None else now
        segments = self.segments()
        newest = {p.parent: p for _, _, p in segments}  # oldest first: the last one per folder wins
        total = sum(size for _, size, _ in segments)
        deleted = []
        for mtime, size, p in segments:
            too_old = self.max_age is not None and now - mtime > self.max_age
            too_big = self.max_bytes is not None and total > self.max_bytes
            if not (too_old or too_big):
                break
            if not too_old and newest[p.parent] == p:
                self._once(
                    "small",
                    "retention: the size limit (%.1f MB) is smaller than a segment; keeping the newest "
                    "segment of each camera",
                    (self.max_bytes or 0) / 1e6,
                )
                continue
            try:
                p.unlink()
                deleted.append(p)
            except FileNotFoundError:
                pass
            except OSError as exc:
                self._once(("unlink", p.parent), "retention: cannot delete %s (%s); skipping it", p, exc.strerror)
                continue
            total -= size
        if deleted:
            log.info("retention: removed %d old segment(s) under %s", len(deleted), self.root)
        return deleted

    def _once(self, key: object, msg: str, *args: object) -> None:
        with self._lock:
            if key in self._said:
                return
            self._said.add(key)
        log.warning(msg, *args)


def _scan(folder: Path) -> list[os.DirEntry]:
    """The entries of `folder` (none when it is missing or unreadable: retention must never raise)."""
    try:
        with os.scandir(folder) as it:
            return list(it)
    except OSError:
        return []


def recover_parts(folder: Path) -> list[Path]:
    """Segments cut short by a crash (`*.mp4.part`) renamed to `*.mp4`: fragmented, so they play as they are."""
    out = []
    for p in sorted(folder.glob(f"*.mp4{PART}")):
        final = p.with_name(p.name[: -len(PART)])
        os.replace(p, final)
        out.append(final)
    if out:
        log.warning("recording: %d segment(s) cut short by a crash kept in %s", len(out), folder)
    return out


def record_by_copy(mode: str, source: Any, key: str = "source") -> bool:
    """Whether `record:` copies this source's packets (`mode` copy | annotated | auto, see
    service.settings.RecordSettings): auto copies an H.264/H.265 source that has a packet tap (and a stream
    whose codec is not known yet: cameras send H.264/H.265); copy on a
    source without one (a webcam, an image folder) is a SinkError naming it."""
    tap = getattr(source, "packets", None)
    if mode == "annotated":
        return False
    if mode == "copy":
        if tap is None:
            raise SinkError(f"{key}: record mode copy needs a video file or stream (this source has no packets)")
        return True
    codec = getattr(source, "codec", None)  # None: a stream not reachable yet (wait_for_sources): a camera's
    return tap is not None and (codec in COPYABLE or codec is None)


def new_segment_name(folder: Path) -> str:
    """`<UTC now>.mp4` (`-2`, `-3`, ... when taken, complete or not): the name of a new segment in `folder`."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    name, n = f"{stamp}.mp4", 1
    while (folder / name).exists() or (folder / (name + PART)).exists():
        n += 1
        name = f"{stamp}-{n}.mp4"
    return name


class SegmentRecorder(Sink):
    """A Sink that records one source into `folder` as fixed-duration fragmented-MP4 segments (H.264)."""

    def __init__(
        self,
        folder: str | os.PathLike,
        source_id: str | None = None,
        *,
        fps: float = 25.0,
        segment_seconds: float = 60.0,
        retention: Retention | None = None,
        crf: int = 23,
        preset: str = "ultrafast",
    ):
        self.folder = make_folder(folder, "recording")
        self.source_id = source_id
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.segment_seconds = float(segment_seconds)
        self.retention = retention
        self.crf, self.preset = crf, preset
        self.segments: list[Path] = []  # complete segments written by this recorder
        self.frames = 0
        self.closed = False
        self._container: Any = None
        self._stream: Any = None
        self._part: Path | None = None
        self._seg_start = 0.0
        self._last_pts = -1
        self._size: tuple[int, int] | None = None
        self._lock = threading.Lock()
        recover_parts(self.folder)
        if retention is not None:
            retention.register(self.folder)
            retention.enforce()

    @property
    def current(self) -> Path | None:
        """The segment being written now (its `.part` name), if any."""
        return self._part

    def _open(self, w: int, h: int, t: float) -> None:
        import av

        self._part = self.folder / (new_segment_name(self.folder) + PART)
        container = av.open(
            str(self._part),
            "w",
            format="mp4",
            options={"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"},
        )
        # a keyframe a second: each closes a fragment, the most a crash can lose
        options = {"crf": str(self.crf), "preset": self.preset, "g": str(max(1, round(self.fps)))}
        self._container, self._stream = container, add_video_stream(container, w, h, self.fps, options=options)
        self._seg_start, self._last_pts = t, -1

    def _finish(self) -> None:
        """Flush the encoder, close the file and give it its final name; then apply retention."""
        container, part = self._container, self._part
        self._container = self._stream = self._part = None
        if container is None or part is None:
            return
        final = part.with_name(part.name[: -len(PART)])
        finish_file(container.streams.video[0], container, part, final)
        self.segments.append(final)
        if self.retention is not None:
            self.retention.enforce()

    def write(self, fr: FrameResult) -> None:
        self.write_image(fr.image, fr.frame.captured_at)

    def write_image(self, image: np.ndarray, t: float | None = None) -> None:
        """Encode one BGR frame captured at monotonic time `t` (default: now)."""

        t = time.monotonic() if t is None else t
        with self._lock:
            if self.closed:
                return
            if self._size is None:
                self._size = even_size(image)
            image = fit(image, self._size)
            if self._container is not None and t - self._seg_start >= self.segment_seconds:
                self._finish()
            if self._container is None:
                self._open(*self._size, t)
            assert self._stream is not None and self._container is not None
            self._last_pts = max(round((t - self._seg_start) * 1000), self._last_pts + 1)
            encode_i420(self._stream, self._container, to_i420(image), self._last_pts)
            self.frames += 1

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self._finish()
