"""What the page shows of a frame: the `Update` a handler yields, the stats line and the detections table.

Pure functions of inference results (no gradio, no session state), so they are tested without a browser.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from yolovino.inference.core.results import FrameResult, Results, label_for
from yolovino.inference.draw.annotate import Annotator
from yolovino.ui.catalog import NO_MODELS_HINT

TABLE_HEADERS = ["label", "score", "x1", "y1", "x2", "y2", "track"]
DISPLAY_FPS = 10.0  # at most this many frames per second are sent to the browser
MAX_TABLE_ROWS = 100


@dataclass
class Update:
    """One refresh of the page's outputs; None means "leave as it is"."""

    image: np.ndarray | None = None  # RGB
    stats: str | None = None
    table: list[list] | None = None
    status: str | None = None
    files: list[str] | None = None


def annotator(overlay: bool = True) -> Annotator:
    return Annotator(show_overlay=overlay)


def update_for(fr: FrameResult, label: str, fps: float | None = None) -> Update:
    """The page refresh for one pipeline result: the drawn frame as RGB, the stats line and the table."""
    fps = fr.fps if fps is None else fps
    return Update(
        image=np.ascontiguousarray(fr.image[..., ::-1]),
        stats=stats_text(float(fps or 0.0), float(fr.latency_ms or 0.0), fr.frame.index, label, len(fr.results)),
        table=detections_table(fr.results),
    )


def throttled(
    results: Iterable[FrameResult],
    label: str,
    switch: Callable[[], bool] = lambda: False,
    every: float = 1.0 / DISPLAY_FPS,
) -> Iterator[Update]:
    """Updates for the page at most `every` seconds apart (the rest are processed, not shown); stops early
    when `switch()` says the model choice changed."""
    last = 0.0
    pending = None
    for fr in results:
        if switch():
            return
        now = time.perf_counter()
        pending = fr
        if now - last >= every:
            last = now
            yield update_for(fr, label)
            pending = None
    if pending is not None:
        yield update_for(pending, label)


def stats_text(fps: float, latency_ms: float, index: int, label: str, n: int) -> str:
    return f"FPS: {fps:.1f} | latency: {latency_ms:.0f} ms | frame: {index} | detections: {n} | model: {label}"


def detections_table(results: Results | None) -> list[list]:
    if results is None:
        return []
    rows = []
    for i in range(min(len(results), MAX_TABLE_ROWS)):
        x1, y1, x2, y2 = (round(float(v), 1) for v in results.boxes[i])
        track = int(results.track_ids[i]) if results.track_ids is not None and results.track_ids[i] >= 0 else ""
        rows.append(
            [label_for(results.names, results.class_ids[i]), round(float(results.scores[i]), 3), x1, y1, x2, y2, track]
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
