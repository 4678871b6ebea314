"""Per-browser-session state and the UI's backend: every frame goes through `inference.pipeline.Pipeline`.

Nothing here imports gradio, so the backend can be tested without a browser. App-wide things (models
folder, shared model cache, temp folder) live in one `UIContext`; each browser tab gets its own `Session`
(model choice, thresholds, stop flag, output folder), looked up by Gradio's session hash in a
`SessionStore` owned by the Blocks app -- no module-level mutable state.

Handlers report problems as `UserFacingError` (one readable line); anything unexpected is logged with
its traceback on the server and shown as one line in the page.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from inference.config import InferenceConfig
from inference.engine import AsyncEngine
from inference.errors import InferenceError
from inference.media import IMAGE_SUFFIXES, NETWORK_SCHEMES, VIDEO_SUFFIXES
from inference.results import Results, label_for

from .catalog import NO_MODELS_HINT, Catalog, ModelCache, ModelEntry, discover

log = logging.getLogger("ui")

VIDEO_EXTS = VIDEO_SUFFIXES
IMAGE_EXTS = IMAGE_SUFFIXES
URL_SCHEMES = tuple(f"{s}://" for s in sorted(NETWORK_SCHEMES))
TABLE_HEADERS = ["label", "score", "x1", "y1", "x2", "y2"]
DISPLAY_FPS = 10.0  # at most this many frames per second are sent to the browser
MAX_TABLE_ROWS = 100


class UserFacingError(Exception):
    """A problem the user can fix; the message is shown in the page as it is."""


@dataclass
class Update:
    """One refresh of the page's outputs; None means "leave as it is"."""

    image: np.ndarray | None = None  # RGB
    stats: str | None = None
    table: list[list] | None = None
    status: str | None = None
    files: list[str] | None = None


@dataclass
class UIContext:
    """App-wide settings shared by every session (read-only after start, except the thread-safe cache)."""

    models_dir: Path
    samples_dir: Path | None
    default_source: Path | None
    config: InferenceConfig
    tmp_root: Path
    max_file_bytes: int = 200 * 1024 * 1024
    cache: ModelCache = field(default_factory=ModelCache)
    _catalog: tuple[tuple, Catalog] | None = field(default=None, init=False, repr=False)
    _catalog_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def catalog(self) -> Catalog:
        """The models found now; re-read only when a file under models_dir changed (cheap per webcam frame)."""
        key = _tree_signature(self.models_dir)
        with self._catalog_lock:
            if self._catalog is None or self._catalog[0] != key:
                self._catalog = (key, discover(self.models_dir))
            return self._catalog[1]

    def samples(self) -> list[str]:
        """File names of the bundled sample clips (videos and gifs), default clip first."""
        names: list[str] = []
        if self.samples_dir and self.samples_dir.is_dir():
            names = sorted(p.name for p in self.samples_dir.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTS)
        if self.default_source and self.default_source.name in names:
            names.remove(self.default_source.name)
            names.insert(0, self.default_source.name)
        elif self.default_source and self.default_source.is_file():
            names.insert(0, self.default_source.name)
        return names

    def resolve_source(self, text: str | None) -> str:
        """A source spec the pipeline opens: a URL as typed, or a bundled sample clip by its file name.

        Local paths other than the samples are refused: the page must not read arbitrary server files.
        """
        text = (text or "").strip()
        if not text:
            raise UserFacingError("Enter an RTSP/HTTP URL or pick a sample clip first.")
        if text.lower().startswith(URL_SCHEMES):
            return text
        name = Path(text).name
        for folder in (self.samples_dir, self.default_source.parent if self.default_source else None):
            if folder and (folder / name).is_file():
                return str(folder / name)
        raise UserFacingError(
            f"Unknown source {text!r}: enter an rtsp://, http:// or https:// URL, "
            f"or pick one of the sample clips ({', '.join(self.samples()) or 'none found'})."
        )


class Session:
    """One browser tab: its model choice, thresholds, the run in progress and its output folder."""

    def __init__(self, ctx: UIContext, sid: str = "local"):
        self.ctx, self.sid = ctx, sid
        self.config = ctx.config
        self.model_name: str | None = None
        self.precision: str | None = None
        self.version = 0  # bumped when the network or graph must change (model, precision, rect)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._engines: list[AsyncEngine] = []  # engines of runs in progress, for live threshold changes
        self._webcam: tuple[int, AsyncEngine] | None = None
        self._cam_last: float | None = None
        self._cam_fps = 0.0
        self._cam_busy = threading.Lock()
        self._cam_n = -1
        self._out_dir: Path | None = None

    # --- choices -------------------------------------------------------------------------------------
    def select(self, name: str | None, precision: str | None, catalog: Catalog | None = None) -> ModelEntry:
        catalog = catalog or self.ctx.catalog()
        entry = catalog.get(name)
        if precision not in entry.variants:
            precision = entry.default_precision()
        with self._lock:
            if (name, precision) != (self.model_name, self.precision):
                self.model_name, self.precision = name, precision
                self.version += 1
        return entry

    def set_thresholds(self, conf: float, iou: float, class_ids: tuple[int, ...] | None, rect: bool) -> None:
        """conf/iou/classes apply to running streams from the next frame; rect rebuilds the graph."""
        new = self.config.with_(conf=float(conf), iou=float(iou), classes=class_ids, rect=bool(rect))
        with self._lock:
            rect_changed = new.rect != self.config.rect
            self.config = new
            if rect_changed:
                self.version += 1
            engines = list(self._engines)
        if not rect_changed:
            for engine in engines:
                engine.set_config(new)

    def load(self):
        """The YoloModel for the current choice with this session's thresholds (shared cache)."""
        if self.model_name is None:
            catalog = self.ctx.catalog()
            self.select(catalog.default_model(), None, catalog)
        variant = self.ctx.catalog().variant(self.model_name, self.precision)
        return self.ctx.cache.get(variant.xml, self.config), variant

    # --- runs ----------------------------------------------------------------------------------------
    def begin_run(self) -> threading.Event:
        """Stop whatever this tab was running and hand out a fresh stop flag."""
        with self._lock:
            self._stop.set()
            self._stop = threading.Event()
            return self._stop

    def stop(self) -> None:
        with self._lock:
            self._stop.set()
        self._cam_last = None

    def _track(self, engine: AsyncEngine, add: bool) -> None:
        with self._lock:
            if add:
                self._engines.append(engine)
            elif engine in self._engines:
                self._engines.remove(engine)

    def out_dir(self) -> Path:
        if self._out_dir is None:
            self.ctx.tmp_root.mkdir(parents=True, exist_ok=True)
            self._out_dir = Path(tempfile.mkdtemp(prefix="session-", dir=self.ctx.tmp_root))
        return self._out_dir

    def close(self) -> None:
        self.stop()
        with self._lock:
            cam, self._webcam = self._webcam, None
        if cam is not None:
            cam[1].close()
        if self._out_dir is not None:
            shutil.rmtree(self._out_dir, ignore_errors=True)
            self._out_dir = None

    # --- live stream (sample clip or URL) ------------------------------------------------------------
    def stream(self, source_text: str) -> Iterator[Update]:
        """Annotated frames of a sample clip or URL until it ends or Stop is pressed (model changes apply live)."""
        from inference.pipeline import Pipeline
        from inference.redact import redact
        from inference.sources import open_source

        stop = self.begin_run()
        spec = self.ctx.resolve_source(source_text)
        shown = Path(spec).name if not spec.lower().startswith(URL_SCHEMES) else redact(spec)  # no passwords
        self.load()  # "no models yet" is reported before anything is opened
        yield Update(status=f"Opening {shown} ...")
        try:
            # files: every frame, at inference speed; URLs: keep-latest (stale frames dropped)
            source = open_source(spec, live=None if spec.lower().startswith(URL_SCHEMES) else False)
        except InferenceError as exc:
            raise UserFacingError(f"Cannot open {shown}: {_one_line(exc)}") from None
        try:
            # One Pipeline per model choice on the same open source (own_sources=False): a model,
            # precision or rect change ends the current Pipeline and the next one goes on from there.
            while not stop.is_set():
                model, variant = self.load()
                version = self.version
                engine = AsyncEngine(model)
                self._track(engine, True)
                try:
                    pipeline = Pipeline(engine, [source], annotator=_annotator(), own_sources=False)
                    yield Update(status=f"Running {self._label(variant)} on {shown}")
                    run = pipeline.run(stop)
                    try:
                        yield from self._frames(run, self._label(variant), lambda v=version: self.version != v)
                    finally:
                        run.close()
                finally:
                    self._track(engine, False)
                    engine.close()
                if self.version == version:  # not a model switch: the source ended or Stop was pressed
                    break
            if stop.is_set():
                yield Update(status="Stopped.")
            elif getattr(source, "error", None) is not None:
                yield Update(status=f"Stream stopped: {_one_line(source.error)}")
            else:
                yield Update(status=f"End of {shown}.")
        finally:
            _close(source)

    def _label(self, variant) -> str:
        return f"{self.model_name} {self.precision} ({variant.meta.task})"

    def _frames(self, results, label: str, switch=lambda: False, every: float = 1.0 / DISPLAY_FPS) -> Iterator[Update]:
        """Updates for the page at most `every` seconds apart (the rest are processed, not shown)."""
        last = 0.0
        pending = None
        for fr in results:
            if switch():
                return
            now = time.perf_counter()
            pending = fr
            if now - last >= every:
                last = now
                yield self._update(fr, label)
                pending = None
        if pending is not None:
            yield self._update(pending, label)

    def _update(self, fr, label: str, fps: float | None = None) -> Update:
        image = fr.image
        fps = fr.fps if fps is None else fps
        return Update(
            image=np.ascontiguousarray(image[..., ::-1]),
            stats=stats_text(float(fps or 0.0), float(fr.latency_ms or 0.0), fr.frame.index, label, len(fr.results)),
            table=detections_table(fr.results),
        )

    # --- webcam (one frame per call from the browser) ------------------------------------------------
    def webcam_frame(self, rgb: np.ndarray | None) -> Update:
        from inference.pipeline import Pipeline

        if rgb is None:
            return Update()
        if not self._cam_busy.acquire(blocking=False):  # previous frame still running: drop this one
            return Update()
        try:
            return self._webcam_frame(rgb, Pipeline)
        finally:
            self._cam_busy.release()

    def _webcam_frame(self, rgb: np.ndarray, Pipeline) -> Update:
        model, variant = self.load()
        with self._lock:
            cam = self._webcam
            if cam is None or cam[0] != self.version:
                if cam is not None:
                    cam[1].close()
                cam = self._webcam = (self.version, AsyncEngine(model))
        engine = cam[1]
        if engine.config != self.config:  # thresholds changed since the last webcam frame
            engine.set_config(self.config)
        frame = _OneFrame(_frame(np.ascontiguousarray(rgb[..., ::-1]), self._cam_index(), "webcam"))
        now = time.perf_counter()
        if self._cam_last is not None:
            dt = max(now - self._cam_last, 1e-3)
            self._cam_fps = 1.0 / dt if self._cam_fps == 0 else 0.8 * self._cam_fps + 0.2 / dt
        self._cam_last = now
        fr = None
        # no in-image FPS overlay: a one-frame pipeline run cannot know the camera's rate (stats has it)
        for fr in Pipeline(engine, [frame], annotator=_annotator(overlay=False)).run(None, max_frames=1):
            pass
        if fr is None:
            return Update(status="Webcam frame was dropped.")
        return self._update(fr, self._label(variant), fps=self._cam_fps)

    def _cam_index(self) -> int:
        self._cam_n += 1
        return self._cam_n

    # --- uploads: whole file -> annotated mp4 + JSON lines ------------------------------------------
    def process_upload(self, path: str | None, progress=None) -> Iterator[Update]:
        """Run the whole uploaded video (or image) through the pipeline, writing files to download."""
        from inference.pipeline import Pipeline
        from inference.sinks import JsonlSink, VideoFileSink
        from inference.sources import open_source

        src = check_upload(path, self.ctx.max_file_bytes)
        stop = self.begin_run()
        model, variant = self.load()
        out = self.out_dir()
        stem = _safe_stem(src)
        yield Update(status=f"Processing {src.name} with {self.model_name} {self.precision} ...", files=[])
        if src.suffix.lower() in IMAGE_EXTS:
            image = cv2.imread(str(src), cv2.IMREAD_COLOR)
            if image is None:
                raise UserFacingError(f"{src.name} is not a readable image.")
            jsonl = out / f"{stem}.jsonl"
            png = out / f"{stem}-annotated.png"
            jsonl.unlink(missing_ok=True)
            fr = None
            with AsyncEngine(model) as engine:
                source = open_source(str(src), name=src.name)
                for fr in Pipeline(engine, [source], sinks=[JsonlSink(jsonl)], annotator=_annotator(overlay=False)).run(
                    stop, max_frames=1
                ):
                    pass
            if fr is None:
                raise UserFacingError(f"{src.name}: no result (stopped).")
            cv2.imwrite(str(png), fr.image)
            upd = self._update(fr, self._label(variant))
            upd.status, upd.files = f"Done: {len(fr.results)} detections in {src.name}.", [str(png), str(jsonl)]
            yield upd
            return
        total = count_frames(src)
        try:
            source = open_source(str(src), live=False)
        except InferenceError as exc:
            raise UserFacingError(f"{src.name} is not a readable video: {_one_line(exc)}") from None
        mp4, jsonl = out / f"{stem}-annotated.mp4", out / f"{stem}.jsonl"
        for old in (mp4, jsonl):  # a second run of the same file replaces the first one's outputs
            old.unlink(missing_ok=True)
        fps = _source_fps(source, src)
        engine = AsyncEngine(model)
        self._track(engine, True)
        n = 0
        try:
            sinks = [VideoFileSink(mp4, fps), JsonlSink(jsonl)]
            pipeline = Pipeline(engine, [source], sinks=sinks, annotator=_annotator())
            last = 0.0
            for fr in pipeline.run(stop):
                n += 1
                now = time.perf_counter()
                if progress is not None and total:
                    progress(min(n / total, 1.0), desc=f"frame {n}/{total}")
                if now - last >= 1.0 / DISPLAY_FPS:
                    last = now
                    upd = self._update(fr, self._label(variant))
                    upd.status = f"Processing {src.name}: frame {n}" + (f" of {total}" if total else "")
                    yield upd
        finally:
            self._track(engine, False)
            engine.close()
            _close(source)
        if n == 0:
            raise UserFacingError(f"{src.name}: no frames could be decoded; is it a video?")
        word = "Stopped after" if stop.is_set() else "Done:"
        yield Update(
            status=f"{word} {n} frames of {src.name}. Download the annotated video and JSON lines below.",
            files=[str(p) for p in (mp4, jsonl) if p.is_file()],
        )


class SessionStore:
    """Sessions by Gradio session hash; owned by one Blocks app (not a module global)."""

    def __init__(self, ctx: UIContext, capacity: int = 64):
        self.ctx, self.capacity = ctx, capacity
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def get(self, sid: str | None) -> Session:
        sid = sid or "local"
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                if len(self._sessions) >= self.capacity:  # drop the oldest tab's state
                    oldest = next(iter(self._sessions))
                    self._sessions.pop(oldest).close()
                session = self._sessions[sid] = Session(self.ctx, sid)
            return session

    def drop(self, sid: str | None) -> None:
        with self._lock:
            session = self._sessions.pop(sid or "local", None)
        if session is not None:
            session.close()

    def close_all(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for s in sessions:
            s.close()

    def __len__(self) -> int:
        return len(self._sessions)


# --- helpers --------------------------------------------------------------------------------------------


class _OneFrame:
    """A source of exactly one frame (a webcam frame pushed by the browser), in the Source interface
    that Pipeline reads: read(timeout), ended, error, id, on_frame, close()."""

    def __init__(self, frame):
        self._frame = frame
        self.id = frame.source_id
        self.error = None
        self.on_frame = None

    def read(self, timeout: float | None = None):
        frame, self._frame = self._frame, None
        return frame

    @property
    def ended(self) -> bool:
        return self._frame is None

    def close(self) -> None:
        self._frame = None


def _tree_signature(models_dir: Path) -> tuple:
    """(path, mtime, size) of every file discovery looks at: models/<name>/<precision>/* and the reports."""
    try:
        files = [
            p
            for pattern in ("*/*/*.xml", "*/*/*.bin", "*/report.json", "*/report.png")
            for p in models_dir.glob(pattern)
        ]
        out = []
        for p in sorted(files):
            st = p.stat()
            out.append((str(p), st.st_mtime_ns, st.st_size))
        return tuple(out)
    except OSError:  # a folder changing while we look: treat as changed
        return (time.monotonic(),)


def _annotator(overlay: bool = True):
    from inference.annotate import Annotator

    return Annotator(show_overlay=overlay)


def _frame(image: np.ndarray, index: int, source_id: str):
    from inference.results import Frame

    return Frame(image=image, index=index, source_id=source_id, pts=None, captured_at=time.monotonic())


def _close(source) -> None:
    close = getattr(source, "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # closing must never hide the real outcome
            log.debug("closing source failed", exc_info=True)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _safe_stem(path: Path) -> str:
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in path.stem)[:60]
    return stem or "upload"


def _source_fps(source, path: Path) -> float:
    fps = getattr(source, "fps", None)
    if isinstance(fps, (int, float)) and fps > 0 and math.isfinite(fps):
        return float(fps)
    cap = cv2.VideoCapture(str(path))
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    return float(fps) if fps and fps > 0 and math.isfinite(fps) else 25.0


def count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    try:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()
    return max(n, 0)


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
    if ext not in VIDEO_EXTS | IMAGE_EXTS:
        raise UserFacingError(
            f"{path.name}: unsupported file type {ext or '(none)'}; upload a video "
            f"({', '.join(sorted(VIDEO_EXTS))}) or an image ({', '.join(sorted(IMAGE_EXTS))})."
        )
    if size == 0:
        raise UserFacingError(f"{path.name} is empty.")
    if ext in IMAGE_EXTS:
        if cv2.imread(str(path), cv2.IMREAD_COLOR) is None:
            raise UserFacingError(f"{path.name} is not a readable image.")
    elif not _decodes_a_frame(path):
        raise UserFacingError(f"{path.name} is not a readable video (no frame could be decoded).")
    return path


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


def stats_text(fps: float, latency_ms: float, index: int, label: str, n: int) -> str:
    return f"FPS: {fps:.1f} | latency: {latency_ms:.0f} ms | frame: {index} | detections: {n} | model: {label}"


def detections_table(results: Results | None) -> list[list]:
    if results is None:
        return []
    rows = []
    for i in range(min(len(results), MAX_TABLE_ROWS)):
        x1, y1, x2, y2 = (round(float(v), 1) for v in results.boxes[i])
        rows.append(
            [label_for(results.names, results.class_ids[i]), round(float(results.scores[i]), 3), x1, y1, x2, y2]
        )
    return rows


def class_ids_for(labels: list[str] | None, names: dict[int, str]) -> tuple[int, ...] | None:
    """Selected class labels -> ids for InferenceConfig.classes (None = all classes)."""
    if not labels:
        return None
    wanted = set(labels)
    ids = tuple(sorted(i for i, n in names.items() if n in wanted))
    return ids or None


def missing_models_message(models_dir: Path) -> str:
    return NO_MODELS_HINT.format(dir=models_dir)
