"""COCO metrics with faster-coco-eval, plus each image's matches, kept for the bootstrap (bootstrap.py).

faster-coco-eval scores the COCO protocol (10 IoU thresholds .50:.95, 101 recall points, area "all",
maxDets 100 for bbox/segm and 20 for keypoints, OKS with the given sigmas) and gives the official numbers.
A bootstrap needs more: which detection matched which ground truth, image by image, so that resampled image
sets can be re-aggregated without scoring them again. faster-coco-eval keeps those per-image results inside its
C++ core, so `matches()` replays COCO's per-image step (pycocotools `evaluateImg`: detections by score,
each takes the best still-free ground truth at IoU >= t, regular ground truth before ignored/crowd ones)
on the IoUs faster-coco-eval itself computed (`COCOeval.ious`). The replay is checked at run time: its
aggregate over all images must equal faster-coco-eval's mAP (bootstrap.check_point_estimate).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

COCO_KPT_SIGMAS = [
    v / 10.0
    for v in [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89]
]  # COCO keypoint sigmas (as pycocotools: /10)
IOU_TYPES = {"box": "bbox", "mask": "segm", "pose": "keypoints"}


def kpt_sigmas(k: int) -> list[float]:
    """OKS sigmas for K keypoints: COCO's for the 17 COCO person keypoints; for a custom keypoint set, which
    has no measured sigmas, 1/K each, as Ultralytics' pose validator does, so the numbers match its own."""
    return COCO_KPT_SIGMAS if k == len(COCO_KPT_SIGMAS) else [1.0 / k] * k


@dataclass(frozen=True)
class CategoryMatches:
    """One category over all images, detections in COCO's global order (score, descending, stable)."""

    image: np.ndarray  # (D,) index into ImageMatches.image_ids of each detection
    tp: np.ndarray  # (T, D) bool: matched to a regular ground truth at IoU threshold t
    fp: np.ndarray  # (T, D) bool: unmatched and not ignored
    gt: np.ndarray  # (N,) regular (not ignored) ground truths per image


@dataclass(frozen=True)
class ImageMatches:
    """One model's per-image COCO results for one IoU type: everything a resample needs."""

    image_ids: tuple[int, ...]
    categories: tuple[CategoryMatches, ...]
    iou_thresholds: np.ndarray  # (T,)
    recall_thresholds: np.ndarray  # (R,)


@dataclass
class CocoResult:
    """faster-coco-eval's mAP50-95 / mAP50 of one IoU type, and the per-image matches behind them (lazy)."""

    iou_type: str
    map: float
    map50: float
    image_ids: tuple[int, ...]
    _ev: Any = field(default=None, repr=False)
    _gt: dict | None = field(default=None, repr=False)
    _matches: ImageMatches | None = field(default=None, repr=False)

    def matches(self) -> ImageMatches:
        if self._matches is None:
            self._matches = _replay(self._ev) if self._ev is not None else _no_detections(self)
            self._ev = self._gt = None  # the evaluator holds every mask; the matches are all we keep
        return self._matches


def coco_eval(gt_dict: dict, preds: list[dict], iou_type: str) -> CocoResult:
    """(mAP50-95, mAP50) with faster-coco-eval; an empty prediction list scores 0."""
    from faster_coco_eval import COCO, COCOeval_faster

    image_ids = tuple(sorted(int(im["id"]) for im in gt_dict["images"]))
    if not preds or not gt_dict["annotations"]:
        return CocoResult(iou_type, 0.0, 0.0, image_ids, _gt=gt_dict)
    gt = COCO(gt_dict)
    dt = gt.loadRes([dict(p) for p in preds])
    kw = {}
    if iou_type == "keypoints":
        kw["kpt_oks_sigmas"] = kpt_sigmas(len(gt_dict["categories"][0]["keypoints"]))
    ev = COCOeval_faster(gt, dt, iouType=iou_type, print_function=lambda *a, **k: None, **kw)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return CocoResult(iou_type, float(max(ev.stats[0], 0.0)), float(max(ev.stats[1], 0.0)), image_ids, _ev=ev)


# --- per-image replay --------------------------------------------------------------------------------------


def _match_image(ious: np.ndarray, thresholds: np.ndarray, gt_ignore: np.ndarray, crowd: np.ndarray):
    """pycocotools evaluateImg for one image and category, vectorised over IoU thresholds.

    ious: (D, G), detections by score, ground truths with the regular ones first. Returns (matched, ignored),
    both (T, D): a detection takes, among the ground truths still free (crowd ones never fill), the one with the
    highest IoU >= t, the last of equals; an ignored ground truth only when no regular one qualifies.
    """
    n_t, (n_d, n_g) = len(thresholds), ious.shape
    taken = np.zeros((n_t, n_g), bool)
    matched = np.zeros((n_t, n_d), bool)
    ignored = np.zeros((n_t, n_d), bool)
    rows = np.arange(n_t)
    for d in range(n_d):
        free = ~taken | crowd
        ok = free & (ious[d][None, :] >= thresholds[:, None])  # (T, G)
        regular = ok & ~gt_ignore
        pick = np.where(regular.any(1)[:, None], regular, ok)
        has = pick.any(1)
        if not has.any():
            continue
        score = np.where(pick, ious[d][None, :], -1.0)
        best = n_g - 1 - np.argmax(score[:, ::-1], axis=1)  # last index of the maximum, as pycocotools
        t = rows[has]
        g = best[has]
        matched[t, d] = True
        ignored[t, d] = gt_ignore[g]
        taken[t, g] = True
    return matched, ignored


def _replay(ev) -> ImageMatches:
    p = ev.params
    img_ids = [int(i) for i in p.imgIds]
    index = {i: n for n, i in enumerate(img_ids)}
    thresholds = np.minimum(np.asarray(p.iouThrs, float), 1 - 1e-10)
    n_t, max_det = len(thresholds), int(p.maxDets[-1])
    a_lo, a_hi = p.areaRng[0]  # "all"
    pairs: dict[int, set[int]] = defaultdict(set)
    for anns in (ev.cocoGt.anns.values(), ev.cocoDt.anns.values()):
        for a in anns:
            if int(a["image_id"]) in index:
                pairs[int(a["category_id"])].add(int(a["image_id"]))
    categories = []
    for cat in (int(c) for c in p.catIds):
        gt_count = np.zeros(len(img_ids), np.int64)
        scores, images, tps, fps = [], [], [], []
        for img in sorted(pairs.get(cat, ())):
            gts = list(ev.gt_dataset.get(img, cat))
            dts = list(ev.dt_dataset.get(img, cat))
            g_ign = np.array([bool(g["ignore"]) or not a_lo <= g["area"] <= a_hi for g in gts], bool)
            gt_count[index[img]] = int((~g_ign).sum())
            if not dts:
                continue
            order = np.argsort([-d["score"] for d in dts], kind="mergesort")[:max_det]
            dts = [dts[i] for i in order]
            ious = np.asarray(ev.ious.get((img, cat), []), float)
            if len(gts) and ious.size:
                g_order = np.argsort(g_ign, kind="mergesort")
                crowd = np.array([bool(gts[i].get("iscrowd", 0)) for i in g_order], bool)
                matched, ignored = _match_image(ious[:, g_order], thresholds, g_ign[g_order], crowd)
            else:
                matched = ignored = np.zeros((n_t, len(dts)), bool)
            area = np.array([d.get("area", 0.0) for d in dts], float)
            out_of_range = (area < a_lo) | (area > a_hi)
            ignored = ignored | (~matched & out_of_range[None, :])
            scores.append(np.array([d["score"] for d in dts], float))
            images.append(np.full(len(dts), index[img]))
            tps.append(matched & ~ignored)
            fps.append(~matched & ~ignored)
        if gt_count.sum() == 0:
            continue  # COCO leaves categories without ground truth out of the mean
        if scores:
            order = np.argsort(-np.concatenate(scores), kind="mergesort")
            image = np.concatenate(images)[order]
            tp, fp = np.concatenate(tps, axis=1)[:, order], np.concatenate(fps, axis=1)[:, order]
            # detections after the last true positive only lower a precision that the envelope never reads:
            # dropping them is exact for any resample and halves the bootstrap's work at conf 0.001
            keep = int(np.nonzero(tp.any(axis=0))[0].max()) + 1 if tp.any() else 0
            image, tp, fp = image[:keep], tp[:, :keep], fp[:, :keep]
        else:
            image, tp, fp = np.zeros(0, np.int64), np.zeros((n_t, 0), bool), np.zeros((n_t, 0), bool)
        categories.append(CategoryMatches(image, tp, fp, gt_count))
    return ImageMatches(tuple(img_ids), tuple(categories), np.asarray(p.iouThrs, float), np.asarray(p.recThrs, float))


def _no_detections(result: CocoResult) -> ImageMatches:
    """Matches of a run without predictions (or without ground truth): every category with ground truth scores 0."""
    index = {i: n for n, i in enumerate(result.image_ids)}
    counts: dict[int, np.ndarray] = {}
    keypoints = result.iou_type == "keypoints"
    for a in (result._gt or {}).get("annotations", []):
        if a.get("iscrowd", 0) or (keypoints and a.get("num_keypoints", 0) == 0):
            continue
        counts.setdefault(int(a["category_id"]), np.zeros(len(index), np.int64))[index[int(a["image_id"])]] += 1
    thresholds = np.linspace(0.5, 0.95, 10)
    none = np.zeros((len(thresholds), 0), bool)
    empty = tuple(CategoryMatches(np.zeros(0, np.int64), none, none, c) for c in counts.values())
    return ImageMatches(result.image_ids, empty, thresholds, np.linspace(0.0, 1.0, 101))
