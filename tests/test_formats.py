"""Video formats cameras and phones produce, each made here with ffmpeg from the sample clip (6 frames) and
run through the pipeline into an mp4: decoded upright at its own size, the person found where the H.264
original shows it, an annotated output that decodes at that size, and a frame rate reported.

Every format in tests/media_formats.py works; what the runtime refuses (no video stream, zero frames,
truncated files) is in tests/test_pipeline.py. bench/formats_bench.py measures their throughput.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import cv2
import media_formats
import numpy as np
import pytest
from media_formats import FORMATS, transcode

from yolovino.inference import AsyncEngine, InferenceConfig, YoloModel
from yolovino.inference.draw.annotate import Annotator, color_for
from yolovino.inference.outputs.video_file import VideoFileSink
from yolovino.inference.pipeline import Pipeline
from yolovino.inference.sources import open_source

N = 6  # frames per test video


def make_format(name: str, clip: Path, folder: Path) -> Path:
    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg is not installed")
    return media_formats.make_format(name, clip, folder, N)


@pytest.fixture(scope="module")
def engine(detect_ir):
    return AsyncEngine(YoloModel.load(detect_ir, InferenceConfig()))


@pytest.fixture(scope="module")
def reference(engine, person_clip) -> list[np.ndarray]:
    """Per frame of the H.264 original, its person boxes as fractions of the frame size."""
    with av.open(str(person_clip)) as c:
        frames = [f.to_ndarray(format="bgr24") for _, f in zip(range(N), c.decode(video=0))]
    out = []
    for _, results, _ in engine.stream(frames):
        out.append(results.boxes[results.class_ids == 0] / [768, 432, 768, 432])
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None).prod()
    return float(inter / ((a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod() - inter))


def edge_drawn(image: np.ndarray, box: np.ndarray, color, tol: int = 60) -> float:
    """Share of the rows along a box's left edge with a pixel of `color` within 3 px of it."""
    x1, y1, _, y2 = (int(round(v)) for v in box)
    band = image[max(y1, 0) : y2, max(x1 - 3, 0) : x1 + 4].astype(int)
    near = (np.abs(band - np.array(color)).max(axis=2) < tol).any(axis=1)
    return float(near.mean()) if near.size else 0.0


@pytest.mark.parametrize("name", list(FORMATS))
def test_format_runs_through_the_pipeline(name, engine, reference, person_clip, tmp_path):
    path = make_format(name, person_clip, tmp_path)
    h, w = FORMATS[name].hw
    n = 1 if name == "one-frame" else N
    src = open_source(str(path))
    out = tmp_path / "annotated.mp4"
    sink = VideoFileSink(out, src.fps or 25.0)
    results = list(Pipeline(engine, [src], [sink], Annotator()).run())

    assert len(results) == n and [fr.frame.index for fr in results] == list(range(n))
    assert src.stats.decode_errors == 0 and src.error is None
    assert src.fps and src.fps > 0, "nominal frame rate reported"
    if n > 1:
        assert results[-1].fps > 0, "measured frame rate reported"
    for i, fr in enumerate(results):
        assert fr.frame.image.shape == (h, w, 3) and fr.annotated.shape == (h, w, 3)
        people = fr.results.boxes[fr.results.class_ids == 0] / [w, h, w, h]
        assert len(people) and len(reference[i]), f"frame {i}: person not found"
        best = max(iou(reference[i][0], p) for p in people)
        assert best > 0.8, f"frame {i}: person box {people} vs the original's {reference[i][0]} (IoU {best:.2f})"

    with av.open(str(out)) as c:
        written = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    assert len(written) == n and all(f.shape == (h - h % 2, w - w % 2, 3) for f in written)
    person = results[0].results.boxes[results[0].results.class_ids == 0][0]
    assert edge_drawn(written[0], person, color_for(0)) > 0.8, "the box is drawn where the person is"
    assert edge_drawn(results[0].frame.image, person, color_for(0)) < 0.5, "(and is not in the raw picture)"


def test_rotated_phone_video_matches_ffmpeg_upright_picture(person_clip, tmp_path):
    """The display matrix is applied the way the ffmpeg CLI applies it (its autorotate is the reference),
    which gives back the original upright picture."""
    path = make_format("rotated-phone", person_clip, tmp_path)
    ref = tmp_path / "ffmpeg-upright.png"
    transcode(path, ref, "-frames:v", "1")
    ours = next(iter(open_source(str(path)))).image
    theirs = cv2.imread(str(ref))
    with av.open(str(person_clip)) as c:
        original = next(c.decode(video=0)).to_ndarray(format="bgr24")
    assert ours.shape == theirs.shape == original.shape
    assert np.abs(ours.astype(int) - theirs).mean() < 1.0
    assert np.abs(ours.astype(int) - original).mean() < 4.0


def test_variable_frame_rate_keeps_its_timing(engine, person_clip, tmp_path):
    """Frames 0.1 s apart, then 0.04 s apart: delivered with their own timestamps, and the annotated mp4
    shows each frame at the same time as the source does."""
    path = make_format("vfr", person_clip, tmp_path)
    src = open_source(str(path))
    out = tmp_path / "annotated.mp4"
    results = list(Pipeline(engine, [src], [VideoFileSink(out, src.fps or 25.0)], Annotator()).run())
    pts = np.array([fr.frame.pts for fr in results])
    assert np.allclose(np.diff(pts), [0.1, 0.1, 0.1, 0.04, 0.04], atol=0.002)
    with av.open(str(out)) as c:
        written = np.array([f.time for f in c.decode(video=0)])
    assert np.allclose(written - written[0], pts - pts[0], atol=0.002)
