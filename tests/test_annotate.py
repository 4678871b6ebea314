"""Annotator: draws boxes/labels/masks/skeletons/overlay, never touches the input, masks stay in their box."""

from __future__ import annotations

import numpy as np
import pytest

from yolovino.inference.core.results import Results
from yolovino.inference.draw.annotate import SKELETON, Annotator, color_for

NAMES = {0: "person", 1: "bicycle", 2: "car"}


def _results(boxes, classes, scores=None, masks=None, keypoints=None, shape=(240, 320)):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(boxes)
    scores = np.full(n, 0.9, np.float32) if scores is None else np.asarray(scores, np.float32)
    return Results(boxes, scores, np.asarray(classes, np.int32), NAMES, shape, masks, keypoints)


@pytest.fixture
def frame():
    return np.full((240, 320, 3), 40, np.uint8)


def test_boxes_drawn_in_class_color_and_input_untouched(frame):
    before = frame.copy()
    out = Annotator(line_width=2, show_labels=False).annotate(frame, _results([[50, 60, 150, 200]], [2]))
    assert np.array_equal(frame, before), "input frame must not be modified"
    assert out is not frame and out.shape == frame.shape and out.dtype == np.uint8
    assert tuple(out[130, 50]) == color_for(2)  # left edge of the box
    assert tuple(out[130, 100]) == (40, 40, 40)  # inside, no mask: untouched


def test_label_text_and_in_place(frame):
    ann = Annotator(line_width=2)
    res = _results([[50, 60, 150, 200]], [0], scores=[0.87])
    out = ann.annotate(frame, res, in_place=True)
    assert out is frame
    # the filled label tag sits above the box in the class colour
    tag = out[40:60, 52:120].reshape(-1, 3)
    assert (tag == np.array(color_for(0), np.uint8)).all(axis=1).sum() > 100


def test_empty_results_and_none_are_a_plain_copy(frame):
    ann = Annotator()
    empty = Results.empty(NAMES, (240, 320))
    assert np.array_equal(ann.annotate(frame, empty), frame)
    assert np.array_equal(ann.annotate(frame, None), frame)


def test_mask_blended_only_inside_its_box(frame):
    masks = np.zeros((1, 240, 320), bool)
    masks[0, 100:140, :] = True  # a mask wider than its box (as a bad decode could give)
    res = _results([[100, 80, 200, 160]], [0], masks=masks)
    out = Annotator(show_boxes=False, mask_alpha=0.5).annotate(frame, res)
    inside = out[120, 150].astype(int)
    assert not np.array_equal(inside, [40, 40, 40])
    expected = (np.array([40, 40, 40]) * 0.5 + np.array(color_for(0)) * 0.5).astype(int)
    assert np.abs(inside - expected).max() <= 1
    assert tuple(out[120, 20]) == (40, 40, 40), "mask pixels outside the box must not be drawn"
    assert tuple(out[90, 150]) == (40, 40, 40), "outside the mask must not be drawn"
    assert tuple(Annotator(show_masks=False, show_boxes=False).annotate(frame, res)[120, 150]) == (40, 40, 40)


def test_pose_skeleton_draws_coco_limbs_and_skips_low_confidence_points(frame):
    """Limbs join the COCO pairs (shoulder-elbow drawn in the arm colour at its midpoint); a limb with an
    end below kpt_conf is not drawn, nor is the point itself."""
    kpts = np.zeros((1, 17, 3), np.float32)
    kpts[0, :, 2] = 0.9
    kpts[0, :, :2] = (300, 230)  # every other point parked in one corner
    kpts[0, 5, :2] = (100, 60)  # left shoulder
    kpts[0, 7, :2] = (100, 180)  # left elbow, straight below it
    kpts[0, 0, :] = (20, 20, 0.1)  # nose: low confidence, far from the others
    kpts[0, 1, :2] = (20, 120)  # left eye, joined to the nose in the skeleton
    res = _results([[10, 10, 310, 235]], [0], keypoints=kpts)
    out = Annotator(show_boxes=False, kpt_conf=0.5).annotate(frame, res)
    arm = (51, 153, 255)  # BGR of Ultralytics' arm limbs (face limbs are green, legs blue)
    assert tuple(out[120, 100]) == arm, "the shoulder-elbow limb is drawn between them, in the arm colour"
    assert tuple(out[20, 20]) == (40, 40, 40), "a low-confidence keypoint must not be drawn"
    assert (0, 1) in SKELETON and tuple(out[70, 20]) == (40, 40, 40), "no limb to a low-confidence point"
    assert tuple(out[120, 20]) != (40, 40, 40), "the confident eye itself is drawn"


def test_overlay_text_drawn_top_left(frame):
    out = Annotator().annotate(frame, None, {"fps": 12.5, "latency_ms": 80.0})
    assert (out[:40, :120] != 40).any()
    assert tuple(out[200, 300]) == (40, 40, 40)
    assert np.array_equal(Annotator(show_overlay=False).annotate(frame, None, {"fps": 1.0}), frame)


def test_boxes_outside_frame_are_clipped_to_its_edges(frame):
    """A box larger than the frame is drawn along the frame's border; one hanging off a corner keeps its
    visible edges."""
    res = _results([[-50, -50, 400, 300], [300, 220, 330, 250]], [0, 1])
    out = Annotator(line_width=2, show_labels=False).annotate(frame, res)
    assert out.shape == frame.shape
    assert tuple(out[120, 0]) == color_for(0) and tuple(out[120, 319]) == color_for(0)
    assert tuple(out[0, 160]) == color_for(0) and tuple(out[239, 160]) == color_for(0)
    assert tuple(out[230, 300]) == color_for(1), "left edge of the corner box"
    assert tuple(out[120, 160]) == (40, 40, 40), "inside the big box: untouched"


def test_palette_is_stable():
    assert color_for(0) == color_for(20) and color_for(0) != color_for(1)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["segment", "pose"])
def test_real_models_draw_masks_and_skeletons(task, request):
    """On a real frame with a person: seg masks are blended inside the box only; pose draws a skeleton."""
    from yolovino.inference import AsyncEngine, YoloModel
    from yolovino.inference.pipeline import Pipeline
    from yolovino.inference.sources import open_source

    ir = request.getfixturevalue("seg_ir" if task == "segment" else "pose_ir")
    clip = request.getfixturevalue("person_clip")
    engine = AsyncEngine(YoloModel.load(ir))
    frs = list(Pipeline(engine, [open_source(str(clip))], annotator=Annotator(show_overlay=False)).run(max_frames=5))
    fr = max(frs, key=lambda f: len(f.results))
    res = fr.results
    assert len(res) and res.class_ids[0] == 0
    diff = (fr.annotated.astype(int) - fr.frame.image.astype(int)).any(axis=2)
    x1, y1, x2, y2 = np.round(res.boxes[0]).astype(int)
    if task == "segment":
        assert res.masks is not None
        inside = diff[y1 + 3 : y2 - 3, x1 + 3 : x2 - 3].mean()
        assert inside > 0.2, "mask blended inside the box"
        outside = diff.copy()
        for bx1, by1, bx2, by2 in np.round(res.boxes).astype(int):
            outside[max(by1 - 30, 0) : by2 + 4, max(bx1 - 4, 0) : bx2 + 200] = False  # boxes and their label tags
        assert outside.mean() < 0.01, "nothing drawn away from the detections"
    else:
        assert res.keypoints is not None and res.keypoints.shape[1:] == (17, 3)
        body = diff[y1 + 3 : y2 - 3, x1 + 3 : x2 - 3].mean()
        assert 0.01 < body < 0.6, "skeleton lines and points, not a filled area"
