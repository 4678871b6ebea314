"""The worked examples of CONTRIBUTING.md, run for real: a task, a source and a video output plugged in.

Each example is the code CONTRIBUTING.md shows (kept in step by hand: change both together), exercised
through the same path the product uses: the task through `YoloModel`'s lookup by the task name in the
IR's metadata, the source through `Pipeline`, the output through the registry that `Supervisor` opens a
source's outputs from.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import openvino as ov
import pytest
from waiting import wait_until

from yolovino.inference.core.config import InferenceConfig
from yolovino.inference.core.errors import ModelError
from yolovino.inference.core.geometry import Letterbox
from yolovino.inference.core.results import Frame, FrameResult, Results
from yolovino.inference.model.engine import AsyncEngine
from yolovino.inference.model.ir import RT_INFO_KEY, YoloModel
from yolovino.inference.outputs.base import Sink
from yolovino.inference.outputs.jsonl import JsonlSink
from yolovino.inference.outputs.registry import OUTPUTS, OutputRequest, register_output
from yolovino.inference.pipeline import Pipeline
from yolovino.inference.postprocess import TASKS
from yolovino.inference.postprocess.detect import Detect
from yolovino.inference.service.metrics import Metrics
from yolovino.inference.service.supervisor import Outputs, SourcePlan, Supervisor
from yolovino.inference.sources import SourceStats, open_source
from yolovino.inference.sources.packets import upright


def decoded(path: Path) -> list[tuple[np.ndarray, float | None]]:
    """Every frame of a clip as (BGR image, pts in seconds), decoded the way the file source decodes."""
    with av.open(str(path)) as container:
        return [(upright(f), None if f.time is None else float(f.time)) for f in container.decode(video=0)]


# --- (a) a task: a decoder registered in postprocess.TASKS ----------------------------------------------


class Biggest(Detect):
    """The detect head, keeping only the largest box of the frame (the main subject, for a crop or a PTZ)."""

    name = "biggest"

    def decode(
        self, outputs: list[np.ndarray], letterbox: Letterbox, names: dict[int, str], cfg: InferenceConfig
    ) -> Results:
        results = super().decode(outputs, letterbox, names, cfg)
        if len(results) < 2:
            return results
        b = results.boxes
        return results[[int(((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).argmax())]]


def retag(xml: Path, task: str, out: Path) -> Path:
    """A copy of an IR whose metadata names another task (what `yolovino-quantize` writes for a new head)."""
    model = ov.Core().read_model(xml)
    meta = json.loads(model.get_rt_info(RT_INFO_KEY).astype(str))
    model.set_rt_info(json.dumps({**meta, "task": task}), RT_INFO_KEY)
    out.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, out / xml.name, compress_to_fp16=False)
    return out / xml.name


def test_a_registered_task_decodes_what_its_model_names(detect_ir, bus_image, tmp_path, monkeypatch):
    xml = retag(detect_ir, "biggest", tmp_path / "biggest")
    with pytest.raises(ModelError, match="task 'biggest' is not supported"):
        YoloModel.load(xml)  # the lookup YoloModel does: an unknown task is refused by name

    monkeypatch.setitem(TASKS, "biggest", Biggest)
    model = YoloModel.load(xml)
    assert isinstance(model.task, Biggest)
    every = YoloModel.load(detect_ir).predict(bus_image)
    biggest = model.predict(bus_image)
    assert len(every) >= 4 and len(biggest) == 1  # the bus and the people on bus.jpg; one kept
    areas = (every.boxes[:, 2] - every.boxes[:, 0]) * (every.boxes[:, 3] - every.boxes[:, 1])
    np.testing.assert_allclose(biggest.boxes[0], every.boxes[areas.argmax()])
    assert biggest.labels == ["bus"]


# --- (b) a source: the FrameSource protocol --------------------------------------------------------------


class PushSource:
    """Frames that other code hands over (a robot SDK, a capture card's callback): `push` each, then `finish`.

    A bounded queue gives backpressure: `push` waits while the pipeline is `maxsize` frames behind.
    """

    fps: float | None = None
    live = False

    def __init__(self, source_id: str, maxsize: int = 4):
        self.id = source_id
        self.stats = SourceStats(state="running")
        self.error = None
        self.on_frame = None  # set by the pipeline: call it when a frame arrives (wakes the pipeline up)
        self._queue: queue.Queue[Frame] = queue.Queue(maxsize)
        self._done = False

    def push(self, image: np.ndarray, pts: float | None = None) -> None:
        frame = Frame(image, self.stats.frames_read, self.id, pts, time.monotonic())
        self._queue.put(frame)
        self.stats.frames_read += 1
        if self.on_frame is not None:
            self.on_frame()

    def finish(self) -> None:
        self._done = True
        if self.on_frame is not None:
            self.on_frame()

    def read(self, timeout: float | None = None) -> Frame | None:
        try:
            frame = self._queue.get(timeout=timeout) if timeout else self._queue.get_nowait()
        except queue.Empty:
            return None
        self.stats.frames_delivered += 1
        self.stats.last_frame_at = frame.captured_at
        return frame

    @property
    def ended(self) -> bool:
        return self._done and self._queue.empty()

    def close(self) -> None:
        self._done = True
        self.stats.state = "closed"


def test_a_pushed_source_runs_through_the_pipeline_like_a_file(detect_ir, person_clip, tmp_path):
    frames = decoded(person_clip)
    src = PushSource("robot")
    producer = threading.Thread(target=lambda: ([src.push(img, pts) for img, pts in frames], src.finish()))
    with AsyncEngine(YoloModel.load(detect_ir)) as engine:
        producer.start()
        pushed = list(Pipeline(engine, [src], sinks=[JsonlSink(tmp_path / "robot.jsonl")]).run())
        producer.join()
        from_file = list(Pipeline(engine, [open_source(str(person_clip), live=False)]).run())
    assert [fr.frame.index for fr in pushed] == list(range(len(frames)))
    assert [fr.frame.pts for fr in pushed] == [pts for _, pts in frames]
    assert len(pushed) == len(from_file) > 50
    for a, b in zip(pushed, from_file, strict=True):  # same pictures in, same detections out
        assert a.results.labels == b.results.labels
        np.testing.assert_allclose(a.results.boxes, b.results.boxes, atol=1e-3)
    assert sum("person" in fr.results.labels for fr in pushed) > 0.8 * len(pushed)
    lines = (tmp_path / "robot.jsonl").read_text().splitlines()
    assert len(lines) == len(frames) and json.loads(lines[0])["source_id"] == "robot"


# --- (c) a video output: a Sink and its registration -------------------------------------------------


class ThumbnailSink(Sink):
    """The newest picture of one source as a JPEG (a dashboard tile), rewritten every `every` frames and
    at close; written beside and renamed, so a reader never sees half a file."""

    def __init__(self, path: Path, source_id: str, every: int = 25):
        self.path, self.source_id, self.every = path, source_id, every
        self.frames = 0
        self._last: np.ndarray | None = None

    def write(self, fr: FrameResult) -> None:
        self.frames += 1
        self._last = fr.image
        if self.frames % self.every == 0:
            self._save()

    def _save(self) -> None:
        if self._last is not None:
            tmp = self.path.with_suffix(".tmp.jpg")
            cv2.imwrite(str(tmp), self._last)
            tmp.replace(self.path)

    def close(self) -> None:
        self._save()
        self._last = None


@pytest.fixture
def thumbnails(tmp_path):
    """The `thumbnail` kind registered for the test (and removed after it); yields the sinks it opened."""
    opened: list[ThumbnailSink] = []

    def thumbnail(req: OutputRequest) -> Sink | None:
        sink = ThumbnailSink(tmp_path / f"{req.source_id}.jpg", req.source_id)
        opened.append(sink)
        return sink

    register_output("thumbnail", thumbnail)
    try:
        yield opened
    finally:
        OUTPUTS.pop("thumbnail")


def test_a_registered_output_is_opened_for_every_source(detect_ir, person_clip, tmp_path, thumbnails):
    with pytest.raises(ValueError, match="already registered"):
        register_output("thumbnail", lambda req: None)
    delivered: list[FrameResult] = []
    sup = Supervisor(Metrics(), Outputs(), delivered.append)
    plan = SourcePlan(
        "door", str(person_clip), "door", False, detect_ir, InferenceConfig(), jsonl=str(tmp_path / "door.jsonl")
    )
    try:
        sup.apply([plan], strict=True)
        assert wait_until(sup.all_ended, 120), "the clip did not run to its end"
    finally:
        sup.close()
    n = len(decoded(person_clip))
    assert len(delivered) == n > 50
    (sink,) = thumbnails
    assert sink.source_id == "door" and sink.frames == n
    thumb = cv2.imread(str(tmp_path / "door.jpg"))
    last = delivered[-1].image  # the annotated last frame
    assert thumb is not None and thumb.shape == last.shape
    assert np.abs(thumb.astype(np.int16) - last).mean() < 4  # the same picture, up to JPEG loss
    assert len((tmp_path / "door.jsonl").read_text().splitlines()) == n  # the built-in kinds still open
