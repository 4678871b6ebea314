"""Decoded frames converted to BGR on first use (core Frame.decoded, sources/packets.Picture): the detector gets
the very frames an eager conversion gives, frames it skips are never converted, and the motion detector on the
decoder's Y plane sees what it saw on the BGR image (real clips, the real source, engine and pipeline)."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from yolovino.inference import AsyncEngine, InferenceConfig, YoloModel
from yolovino.inference.core.motion import MotionConfig
from yolovino.inference.core.results import Frame
from yolovino.inference.model.motion import MotionDetector, MotionGate, blur3
from yolovino.inference.model.stride import StridedEngine
from yolovino.inference.pipeline import Pipeline, frame_time
from yolovino.inference.sources import open_source

PERSON = "videos/one-by-one-person-detection.mp4"
CAR = "videos/car-detection.mp4"


def eager(path, n: int) -> list[np.ndarray]:
    """The first n frames of a clip converted to BGR at once, as sources did before."""
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            out.append(f.to_ndarray(format="bgr24"))
            if len(out) == n:
                break
    return out


class Recording(AsyncEngine):
    """The real engine, keeping a copy of every image it is given to infer on."""

    def __init__(self, model: YoloModel):
        super().__init__(model)
        self.inferred: list[np.ndarray] = []

    def submit(self, frame, userdata=None, config=None, *, source_id=""):
        self.inferred.append((frame.image if isinstance(frame, Frame) else frame).copy())
        super().submit(frame, userdata, config, source_id=source_id)


def test_a_decoded_frame_converts_on_first_use_to_the_eager_bgr_image(require_asset):
    clip = require_asset(PERSON)
    reference = eager(clip, 30)
    with av.open(str(clip)) as c:
        planes = [
            np.array(f.planes[0]).reshape(f.height, -1)[:, : f.width] for _, f in zip(range(30), c.decode(video=0))
        ]
    src = open_source(str(clip), live=False)
    try:
        for k in range(30):
            frame = src.read(timeout=5)
            assert frame is not None and frame.index == k
            assert not frame.converted and frame.shape == reference[k].shape
            assert frame.luma is not None and not frame.luma_full  # yuv420p, video range
            np.testing.assert_array_equal(frame.luma, planes[k])
            np.testing.assert_array_equal(frame.image, reference[k])
            assert frame.converted and frame.image is frame.image  # converted once
    finally:
        src.close()


def test_the_gated_detector_gets_the_eager_frames_and_skipped_frames_stay_unconverted(detect_ir, require_asset):
    """Motion gating on the person clip's first 120 frames (empty room, then a woman walks in)."""
    clip = require_asset(PERSON)
    reference = eager(clip, 120)
    model = YoloModel.load(detect_ir, InferenceConfig())
    src = open_source(str(clip), live=False)
    base = Recording(model)
    engine = StridedEngine(base, 1, frame_time)
    engine.set_gate(src.id, MotionGate(MotionConfig()))
    carried, converted, detected_idx = 0, 0, []
    with base:
        for fr in Pipeline(engine, [src]).run(max_frames=120):
            if fr.results.carried:
                carried += 1
                converted += fr.frame.converted
            else:
                detected_idx.append(fr.frame.index)
    # frames still in flight when the run stopped were inferred but not handed out: compare those handed out
    assert len(base.inferred) >= len(detected_idx) and 0 < len(detected_idx) < 120 and carried > 30, detected_idx
    for k, image in zip(detected_idx, base.inferred):
        np.testing.assert_array_equal(image, reference[k])
    assert converted == 0  # nothing drew, recorded or detected on them: never converted


@pytest.mark.parametrize("clip", [PERSON, CAR])
def test_motion_on_the_y_plane_agrees_with_motion_on_the_bgr_image(require_asset, clip):
    src = open_source(str(require_asset(clip)), live=False)
    on_luma, on_bgr = MotionDetector(MotionConfig()), MotionDetector(MotionConfig())
    frames = agree = 0
    diffs = []
    try:
        for fr in src:
            assert fr.luma is not None
            diffs.append(np.abs(on_luma.grey(fr).astype(np.int16) - on_bgr.grey(fr.image)).mean())
            agree += on_luma.update(fr) == on_bgr.update(fr.image)
            frames += 1
    finally:
        src.close()
    assert frames > 300
    assert max(diffs) < 2.5, max(diffs)  # grey levels: the Y plane stretched to full range is the BGR's grey
    assert agree >= 0.99 * frames, f"{agree}/{frames}"


def test_blur3_is_opencvs_3x3_gaussian_blur_bit_for_bit(require_asset):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w), np.uint8) for h, w in ((100, 178), (3, 3), (7, 40))]
    images += [cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) for img in eager(require_asset(CAR), 2)]
    for img in images:
        np.testing.assert_array_equal(blur3(img), cv2.GaussianBlur(img, (3, 3), 0))
