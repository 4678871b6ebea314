"""NMS and the score/class filter in front of it, on small hand-built cases and against torchvision.

Ultralytics runs torchvision.ops.nms on class-offset boxes; our NumPy `nms`/`select` must keep exactly the
same boxes, in the same order (best score first).
"""

from __future__ import annotations

import numpy as np
import pytest

from yolovino.inference.postprocess.nms import MAX_WH, nms, select, xywh2xyxy


def _boxes(*rows):
    return np.asarray(rows, np.float32).reshape(-1, 4)


def _pred(rows, nc):
    """(N, 4 + nc) predictions from (cx, cy, w, h, class, score) rows; other class scores are 0."""
    pred = np.zeros((len(rows), 4 + nc), np.float32)
    for i, (cx, cy, w, h, c, s) in enumerate(rows):
        pred[i, :4] = (cx, cy, w, h)
        pred[i, 4 + c] = s
    return pred


def test_empty_input_keeps_nothing():
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5, 300).tolist() == []
    boxes, scores, ids, extra = select(np.zeros((0, 84), np.float32), 80, 0.25, 0.7, 300)
    assert boxes.shape == (0, 4) and scores.shape == (0,) and ids.shape == (0,) and extra.shape == (0, 0)


def test_overlapping_box_suppressed_disjoint_kept_best_first():
    boxes = _boxes([0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60])  # IoU(0, 1) = 81/119 = 0.68
    scores = np.array([0.8, 0.9, 0.3], np.float32)
    assert nms(boxes, scores, 0.5, 300).tolist() == [1, 2]
    assert nms(boxes, scores, 0.7, 300).tolist() == [1, 0, 2], "IoU 0.68 <= 0.7 is kept"


def test_iou_exactly_at_threshold_is_kept_like_torchvision():
    boxes = _boxes([0, 0, 10, 10], [0, 0, 10, 5])  # IoU = 50 / 100 = 0.5 exactly in float32
    scores = np.array([0.9, 0.8], np.float32)
    assert nms(boxes, scores, 0.5, 300).tolist() == [0, 1], "suppressed only above the threshold"
    assert nms(boxes, scores, 0.49, 300).tolist() == [0]


def test_ties_keep_the_earlier_box():
    boxes = _boxes([0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10])
    scores = np.full(3, 0.5, np.float32)
    assert nms(boxes, scores, 0.5, 300).tolist() == [0]
    scores[2] = 0.6
    assert nms(boxes, scores, 0.5, 300).tolist() == [2]


def test_max_det_caps_the_kept_boxes():
    boxes = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(50)], np.float32)
    scores = np.linspace(0.1, 0.9, 50).astype(np.float32)
    keep = nms(boxes, scores, 0.5, 7)
    assert keep.tolist() == list(range(49, 42, -1))


def test_select_is_class_aware():
    """Two boxes in the same place survive when their classes differ, one survives when they are the same."""
    nc = 3
    same = _pred([(50, 50, 20, 20, 1, 0.9), (51, 50, 20, 20, 1, 0.8)], nc)
    _, scores, ids, _ = select(same, nc, 0.25, 0.7, 300)
    assert scores.tolist() == pytest.approx([0.9]) and ids.tolist() == [1]
    diff = _pred([(50, 50, 20, 20, 1, 0.9), (51, 50, 20, 20, 2, 0.8)], nc)
    boxes, scores, ids, _ = select(diff, nc, 0.25, 0.7, 300)
    assert ids.tolist() == [1, 2] and scores.tolist() == pytest.approx([0.9, 0.8])
    assert boxes[0].tolist() == pytest.approx([40, 40, 60, 60]), "xywh centre/size to xyxy"


def test_select_score_filter_class_filter_and_extra_columns():
    nc = 2
    pred = _pred([(10, 10, 4, 4, 0, 0.9), (100, 100, 4, 4, 1, 0.6), (200, 200, 4, 4, 0, 0.2)], nc)
    extra = np.arange(6, dtype=np.float32).reshape(3, 2)
    pred = np.concatenate([pred, extra], axis=1)  # e.g. mask coefficients riding with each row
    _, scores, ids, ext = select(pred, nc, 0.25, 0.7, 300)
    assert ids.tolist() == [0, 1] and ext.tolist() == [[0, 1], [2, 3]], "0.2 is under conf; extras follow rows"
    _, _, ids, ext = select(pred, nc, 0.25, 0.7, 300, classes=(1,))
    assert ids.tolist() == [1] and ext.tolist() == [[2, 3]]


def test_select_multi_label_gives_one_row_per_class_above_conf():
    nc = 3
    pred = np.zeros((1, 4 + nc), np.float32)
    pred[0, :4] = (50, 50, 10, 10)
    pred[0, 4:] = (0.7, 0.1, 0.5)
    _, scores, ids, _ = select(pred, nc, 0.25, 0.7, 300, multi_label=True)
    got = sorted(zip(ids.tolist(), scores.tolist()))
    assert [c for c, _ in got] == [0, 2] and [s for _, s in got] == pytest.approx([0.7, 0.5])
    _, scores, ids, _ = select(pred, nc, 0.25, 0.7, 300)
    assert ids.tolist() == [0] and scores.tolist() == pytest.approx([0.7])


@pytest.mark.parametrize("n, seed", [(300, 0), (3000, 1), (8000, 2)])
def test_thousands_of_candidates_match_torchvision(n, seed):
    """Random clustered boxes (many overlaps, some exact score ties) of 5 classes: the same kept boxes in
    the same order as torchvision's batched NMS, the reference Ultralytics uses."""
    torch = pytest.importorskip("torch")
    tv_ops = pytest.importorskip("torchvision.ops")
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 640, (40, 2))
    xy = centres[rng.integers(0, 40, n)] + rng.normal(0, 12, (n, 2))
    wh = rng.uniform(10, 80, (n, 2))
    boxes = xywh2xyxy(np.concatenate([xy, wh], 1).astype(np.float32))
    scores = np.round(rng.uniform(0.25, 1.0, n), 2).astype(np.float32)  # rounding makes ties
    classes = rng.integers(0, 5, n)
    offset = boxes + (classes[:, None] * MAX_WH).astype(np.float32)
    for iou in (0.45, 0.7):
        ours = nms(offset, scores, iou, max_det=10_000)
        ref = tv_ops.nms(torch.from_numpy(offset), torch.from_numpy(scores), iou).numpy()
        # torchvision breaks exact score ties in an unspecified order: compare the kept set and the score order
        assert set(ours.tolist()) == set(ref.tolist())
        assert np.all(np.diff(scores[ours]) <= 0), "best score first"
        assert len(ours) > 40, "clusters of one class keep several boxes"
