"""A cheaper path per frame: nothing is drawn for a source whose outputs show no pictures.

Through the real pipeline, detector and outputs on the sample clip: with draw_for_sinks (what the service's
lanes use) a source with only a JSON-lines log is never annotated, while a source recorded to video next to
it is, every frame; the default (the UI, which shows fr.annotated itself) still annotates everything.
"""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from yolovino.inference import AsyncEngine, InferenceConfig, YoloModel
from yolovino.inference.draw.annotate import Annotator
from yolovino.inference.outputs.jsonl import JsonlSink
from yolovino.inference.outputs.video_file import VideoFileSink
from yolovino.inference.pipeline import Pipeline
from yolovino.inference.sources import open_source

FRAMES = 12  # per source


class CountingAnnotator(Annotator):
    """The real annotator, counting the frames it draws."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def annotate(self, *args, **kw):
        self.calls += 1
        return super().annotate(*args, **kw)


@pytest.fixture(scope="module")
def engine(detect_ir):
    with AsyncEngine(YoloModel.load(detect_ir, InferenceConfig())) as e:
        yield e


def first_frames(clip, name: str):
    """The clip as a source named `name` (run() stops after FRAMES frames per source)."""
    return open_source(str(clip), name=name, live=False)


def run(engine, sources, sinks, annotator, draw_for_sinks: bool):
    n = FRAMES * len(sources)
    out = list(Pipeline(engine, sources, sinks, annotator, draw_for_sinks=draw_for_sinks).run(max_frames=n))
    assert len(out) == n
    return out


def test_only_the_source_with_a_video_output_is_drawn(engine, person_clip, tmp_path):
    video, log = tmp_path / "shown.mp4", tmp_path / "all.jsonl"
    annotator = CountingAnnotator()
    sources = [first_frames(person_clip, "shown"), first_frames(person_clip, "data")]
    sinks = [VideoFileSink(video, 10, source_id="shown"), JsonlSink(log)]
    out = run(engine, sources, sinks, annotator, draw_for_sinks=True)
    shown = [fr for fr in out if fr.source_id == "shown"]
    data = [fr for fr in out if fr.source_id == "data"]
    assert shown and data
    assert all(fr.annotated is not None for fr in shown)
    assert all(fr.annotated is None for fr in data), "a data-only source was drawn"
    assert annotator.calls == len(shown)
    drawn = [fr for fr in shown if len(fr.results)]
    assert drawn and not np.array_equal(drawn[0].annotated, drawn[0].frame.image), "boxes drawn on the video"
    with av.open(str(video)) as c:
        assert sum(1 for _ in c.decode(video=0)) == len(shown)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted({line["source_id"] for line in lines}) == ["data", "shown"] and len(lines) == len(out)


def test_data_only_pipeline_draws_nothing_and_the_default_still_draws_everything(engine, person_clip, tmp_path):
    annotator = CountingAnnotator()
    out = run(engine, [first_frames(person_clip, "a")], [JsonlSink(tmp_path / "a.jsonl")], annotator, True)
    assert annotator.calls == 0 and all(fr.annotated is None for fr in out)
    default = CountingAnnotator()
    out = run(engine, [first_frames(person_clip, "b")], [JsonlSink(tmp_path / "b.jsonl")], default, False)
    assert default.calls == len(out) and all(fr.annotated is not None for fr in out)
