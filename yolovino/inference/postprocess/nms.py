"""Class-aware non-maximum suppression in NumPy, with Ultralytics' semantics (torchvision.ops.nms)."""

from __future__ import annotations

import numpy as np

MAX_WH = 7680  # per-class coordinate offset, as Ultralytics: boxes of different classes never overlap
MAX_NMS = 30000  # candidates kept before NMS, highest scores first


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thres: float, max_det: int) -> np.ndarray:
    """Greedy NMS over xyxy boxes; returns kept indices, best score first.

    Each step drops every remaining box that overlaps the current best by more than iou_thres, so the loop
    runs at most max_det times however many candidates come in.
    """
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    keep: list[int] = []
    while order.size and len(keep) < max_det:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest])
        h = np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest])
        inter = np.clip(w, 0, None) * np.clip(h, 0, None)
        iou = inter / (areas[i] + areas[rest] - inter + 1e-12)
        order = rest[iou <= iou_thres]
    return np.asarray(keep, dtype=np.int64)


def xywh2xyxy(xywh: np.ndarray) -> np.ndarray:
    out = np.empty_like(xywh)
    half = xywh[:, 2:4] / 2
    out[:, :2] = xywh[:, :2] - half
    out[:, 2:] = xywh[:, :2] + half
    return out


def select(
    pred: np.ndarray,
    nc: int,
    conf: float,
    iou: float,
    max_det: int,
    classes: tuple[int, ...] | None = None,
    multi_label: bool = False,
):
    """Score filter, optional class filter and class-aware NMS on one image's (N, 4 + nc + extra) predictions.

    Returns (boxes xyxy in network pixels, scores, class ids, extra columns) for the kept rows.
    """
    cls_scores = pred[:, 4 : 4 + nc]
    if multi_label and nc > 1:
        rows, cls_ids = np.nonzero(cls_scores > conf)
        scores = cls_scores[rows, cls_ids]
    else:
        # max first, argmax only for the few rows above conf: pred is a transposed view of the (4+nc, N)
        # output, and argmax across it would copy the whole matrix every frame
        best = cls_scores.max(1)
        rows = np.nonzero(best > conf)[0]
        scores = best[rows]
        cls_ids = cls_scores[rows].argmax(1) if nc > 1 else np.zeros(len(rows), np.int64)
    if classes is not None:
        keep = np.isin(cls_ids, classes)
        rows, cls_ids, scores = rows[keep], cls_ids[keep], scores[keep]
    if len(rows) > MAX_NMS:
        top = np.argsort(-scores, kind="stable")[:MAX_NMS]
        rows, cls_ids, scores = rows[top], cls_ids[top], scores[top]
    boxes = xywh2xyxy(pred[rows, :4])
    kept = nms(boxes + (cls_ids[:, None] * MAX_WH).astype(boxes.dtype), scores, iou, max_det)
    return (
        boxes[kept].astype(np.float32),
        scores[kept].astype(np.float32),
        cls_ids[kept].astype(np.int32),
        pred[rows[kept], 4 + nc :],
    )
