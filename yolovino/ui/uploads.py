"""Uploaded files: checked before anything runs, then processed whole into an annotated mp4/png + JSON lines.

`check_upload` refuses what the pipeline could not read with one readable line; `process_upload` runs the
file through `inference.pipeline.Pipeline` for a session and yields page updates with progress.

`process_upload` needs only a few things of a browser tab, named by the `UploadSession` protocol below, so
this module does not import `ui.session` (which imports this one): the dependency points one way.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import cv2

from yolovino.inference.core.errors import InferenceError
from yolovino.inference.core.fileio import safe_name
from yolovino.inference.core.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from yolovino.inference.core.redact import one_line
from yolovino.inference.model.engine import AsyncEngine
from yolovino.inference.outputs.jsonl import JsonlSink
from yolovino.inference.outputs.video_file import VideoFileSink
from yolovino.inference.pipeline import Pipeline
from yolovino.inference.sources import open_source, output_fps
from yolovino.ui.analytics_state import AnalyticsState
from yolovino.ui.context import UIContext, UserFacingError
from yolovino.ui.view import DISPLAY_FPS, Update, annotator, update_for


class UploadSession(Protocol):
    """What `process_upload` needs of a browser tab (`ui.session.Session` implements it)."""

    ctx: UIContext
    model_name: str | None
    precision: str | None
    analytics: AnalyticsState

    def begin_run(self) -> threading.Event:
        """Stop the tab's previous run and hand out a fresh stop flag."""
        ...

    def load(self) -> tuple[Any, Any]:
        """The model for the tab's current choice and its catalog variant."""
        ...

    def out_dir(self) -> Path:
        """The tab's folder for files to download."""
        ...

    def label(self, variant: Any) -> str:
        """A short description of the model variant for the page."""
        ...

    def tracked(self, engine: AsyncEngine) -> contextlib.AbstractContextManager[AsyncEngine]:
        """Register the engine for live threshold changes while the run lasts; close it afterwards."""
        ...


def check_upload(path: str | Path | None, max_bytes: int) -> Path:
    """The uploaded file if it looks like a video or image we can read; else a readable UserFacingError."""
    if not path:
        raise UserFacingError("Upload a video or image file first.")
    path = Path(path)
    if not path.is_file():
        raise UserFacingError(f"{path.name}: the upload is gone; upload it again.")
    size = path.stat().st_size
    if size > max_bytes:
        raise UserFacingError(f"{path.name} is {_human(size)}; the limit is {_human(max_bytes)}.")
    ext = path.suffix.lower()
    if ext not in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
        raise UserFacingError(
            f"{path.name}: unsupported file type {ext or '(none)'}; upload a video "
            f"({', '.join(sorted(VIDEO_SUFFIXES))}) or an image ({', '.join(sorted(IMAGE_SUFFIXES))})."
        )
    if size == 0:
        raise UserFacingError(f"{path.name} is empty.")
    if ext in IMAGE_SUFFIXES:
        if cv2.imread(str(path), cv2.IMREAD_COLOR) is None:
            raise UserFacingError(f"{path.name} is not a readable image.")
    elif not _decodes_a_frame(path):
        raise UserFacingError(f"{path.name} is not a readable video (no frame could be decoded).")
    return path


def process_upload(session: UploadSession, path: str | None, progress: Callable | None = None) -> Iterator[Update]:
    """Run the whole uploaded video (or image) through the pipeline, writing files to download."""
    src = check_upload(path, session.ctx.max_file_bytes)
    stop = session.begin_run()
    model, variant = session.load()
    out = session.out_dir()
    stem = _safe_stem(src)
    label = session.label(variant)
    yield Update(status=f"Processing {src.name} with {session.model_name} {session.precision} ...", files=[])
    if src.suffix.lower() in IMAGE_SUFFIXES:
        yield _process_image(src, out / f"{stem}.jsonl", out / f"{stem}-annotated.png", model, label, stop)
        return
    total = count_frames(src)
    try:
        source = open_source(str(src), live=False)
    except InferenceError as exc:
        raise UserFacingError(f"{src.name} is not a readable video: {one_line(exc)}") from None
    mp4, jsonl = out / f"{stem}-annotated.mp4", out / f"{stem}.jsonl"
    for old in (mp4, jsonl):  # a second run of the same file replaces the first one's outputs
        old.unlink(missing_ok=True)
    n = 0
    analytics = session.analytics.open(model.names)  # track IDs in the video and the JSON lines, counts, events
    try:
        with session.tracked(AsyncEngine(model)) as engine:
            sinks = [VideoFileSink(mp4, output_fps(source)), JsonlSink(jsonl)]
            last = 0.0
            for fr in Pipeline(engine, [source], sinks=sinks, annotator=annotator(), analytics=analytics).run(stop):
                n += 1
                now = time.perf_counter()
                if progress is not None and total:
                    progress(min(n / total, 1.0), desc=f"frame {n}/{total}")
                if now - last >= 1.0 / DISPLAY_FPS:
                    last = now
                    upd = update_for(fr, label)
                    upd.status = f"Processing {src.name}: frame {n}" + (f" of {total}" if total else "")
                    yield upd
    finally:
        source.close()  # the pipeline closes it too; this covers a failure before the pipeline ran
        session.analytics.finish(analytics)
    if n == 0:
        raise UserFacingError(f"{src.name}: no frames could be decoded; is it a video?")
    word = "Stopped after" if stop.is_set() else "Done:"
    yield Update(
        status=f"{word} {n} frames of {src.name}. Download the annotated video and JSON lines below.",
        files=[str(p) for p in (mp4, jsonl) if p.is_file()],
    )


def _process_image(src: Path, jsonl: Path, png: Path, model, label: str, stop) -> Update:
    if cv2.imread(str(src), cv2.IMREAD_COLOR) is None:
        raise UserFacingError(f"{src.name} is not a readable image.")
    jsonl.unlink(missing_ok=True)
    fr = None
    with AsyncEngine(model) as engine:
        source = open_source(str(src), name=src.name)
        pipeline = Pipeline(engine, [source], sinks=[JsonlSink(jsonl)], annotator=annotator(overlay=False))
        for fr in pipeline.run(stop, max_frames=1):
            pass
    if fr is None:
        raise UserFacingError(f"{src.name}: no result (stopped).")
    cv2.imwrite(str(png), fr.image)
    upd = update_for(fr, label)
    upd.status, upd.files = f"Done: {len(fr.results)} detections in {src.name}.", [str(png), str(jsonl)]
    return upd


def count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    try:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()
    return max(n, 0)


def _safe_stem(path: Path) -> str:
    stem = safe_name(path.stem)[:60]
    return stem or "upload"


def _human(n: int) -> str:
    for unit, div in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} B"


def _decodes_a_frame(path: Path) -> bool:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return False
            for _ in container.decode(video=0):
                return True
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        return False
    return False
