"""Paired bootstrap over images: how sure an mAP, or a difference between two models' mAP, is.

Resample the validation images with replacement (an image drawn k times counts k times) and score every model
on each resampled set: the spread of a model's mAP gives its interval, and the spread of the per-resample
difference between two models scored on the SAME resampled sets gives the paired interval of the difference
(pairing cancels what the images share, so it is much narrower than two separate intervals).

Intervals are BCa (bias-corrected and accelerated; Efron's, with a jackknife over images for the
acceleration), not the plain 2.5th-97.5th percentiles: COCO's mAP is the mean over the categories that have
ground truth, and a resample that misses a rare category (one or two instances, usually a low AP) averages
over fewer categories with the hard ones left out, so resampled mAPs sit well above the estimate on 32-128
images, and a percentile interval would carry that shift (the same shift exists between a small validation
set and the population, whose rarer categories it lacks). BCa measures the shift (the share of resamples
below the estimate) and the skew, and moves the percentiles it reads accordingly; with no shift and no skew it
is the percentile interval. The jackknife costs one aggregation per image, on top of the resamples.

Why hand-written: no library bootstraps COCO mAP, and a full COCOeval per resample (IoUs, matching, accumulation)
would cost a thousand evaluations per model. Only the aggregation depends on the resample, so the matches are
computed once (coco.py) and each resample re-aggregates them with weights: COCO's `accumulate` (cumulative
TP/FP over the score-sorted detections, interpolated precision at 101 recall points, mean over IoU thresholds
and categories with ground truth), vectorised over resamples in chunks. With weight 1 on every image it is
COCO's accumulate itself, which `check_point_estimate` verifies against faster-coco-eval on every run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from yolovino.quantize.metrics import METRIC_KEYS, Difference, Interval, Metrics

if TYPE_CHECKING:
    from yolovino.quantize.coco import CategoryMatches, CocoResult, ImageMatches

_log = logging.getLogger(__name__)
_CHUNK = 1 << 16  # elements per (resamples x thresholds x detections) block: cache-sized, measured fastest


@dataclass(frozen=True)
class BootstrapSettings:
    """Resamples, seed (fixed: the same command gives the same interval) and confidence level."""

    resamples: int = 1000
    seed: int = 0
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if self.resamples < 0:
            raise ValueError(f"bootstrap resamples must be >= 0, got {self.resamples}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")

    def as_dict(self) -> dict:
        return {"resamples": self.resamples, "seed": self.seed, "confidence": self.confidence}


def _category_ap(cat: CategoryMatches, weights: np.ndarray, recall: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(AP per resample and IoU threshold (B, T), whether the category has ground truth in the resample (B,))."""
    n_b = weights.shape[0]
    n_t, n_d = cat.tp.shape
    npig = weights @ cat.gt
    valid = npig > 0
    ap = np.zeros((n_b, n_t))
    if n_d == 0:
        return ap, valid
    # TP count a recall threshold needs: the smallest m with m / npig >= r, compared in floats as COCO does
    n = np.maximum(npig, 1).astype(float)[:, None]
    need = np.ceil(recall[None, :] * n).astype(np.int64)
    need = np.where((need - 1) / n >= recall, need - 1, need)
    need = np.where(need / n < recall, need + 1, need)
    stride = int(npig.max()) + 2
    step = max(1, _CHUNK // (n_t * n_d))
    ignored = ~cat.tp & ~cat.fp  # matched to an ignored ground truth: counts neither way
    any_ignored = bool(ignored.any())
    for s in range(0, n_b, step):
        w = weights[s : s + step, cat.image].astype(np.int32)  # (b, D)
        b = w.shape[0]
        tp = np.cumsum(w[:, None, :] * cat.tp[None], axis=2, dtype=np.int32)
        seen = np.cumsum(w, axis=1, dtype=np.int32)[:, None, :]  # detections so far, TP + FP (+ ignored)
        if any_ignored:
            seen = seen - np.cumsum(w[:, None, :] * ignored[None], axis=2, dtype=np.int32)
        precision = tp / (seen + np.spacing(1))
        # interpolated precision: the best precision at this recall or beyond (kept in reversed order)
        envelope_rev = np.maximum.accumulate(precision[..., ::-1], axis=2).reshape(-1)
        # first detection reaching each recall threshold, per (resample, threshold) row: rows laid end to end
        # with an offset larger than any count keep the whole array sorted, so one searchsorted serves all
        rows = np.arange(b * n_t, dtype=np.int64).reshape(b, n_t, 1)
        flat = (tp + rows * stride).reshape(-1)
        pos = np.searchsorted(flat, need[s : s + b, None, :] + rows * stride) - rows * n_d  # (b, T, R)
        q = np.where(pos < n_d, envelope_rev[rows * n_d + n_d - 1 - np.minimum(pos, n_d - 1)], 0.0)
        ap[s : s + b] = q.mean(axis=2)
    return ap, valid


def resampled_map(matches: ImageMatches, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mAP50-95, mAP50) for each row of image weights (B, N): COCO's aggregation with repeated images."""
    n_b = weights.shape[0]
    total, total50, count = np.zeros(n_b), np.zeros(n_b), np.zeros(n_b)
    for cat in matches.categories:
        ap, valid = _category_ap(cat, weights, matches.recall_thresholds)
        total += np.where(valid, ap.mean(axis=1), 0.0)
        total50 += np.where(valid, ap[:, 0], 0.0)
        count += valid
    safe = np.maximum(count, 1)
    return np.where(count > 0, total / safe, 0.0), np.where(count > 0, total50 / safe, 0.0)


def check_point_estimate(result: CocoResult, tolerance: float = 1e-6) -> bool:
    """The replayed matches, all images weighted 1, must give faster-coco-eval's own mAP; logs when not."""
    m = result.matches()
    got, got50 = resampled_map(m, np.ones((1, len(m.image_ids)), np.int64))
    ok = abs(got[0] - result.map) <= tolerance and abs(got50[0] - result.map50) <= tolerance
    if not ok:
        _log.warning(
            "bootstrap replay of %s gives mAP %.6f/%.6f, faster-coco-eval %.6f/%.6f: intervals may be off",
            result.iou_type,
            got[0],
            got50[0],
            result.map,
            result.map50,
        )
    return ok


class PairedBootstrap:
    """One set of image resamples, shared by every model scored on these images (so differences are paired)."""

    def __init__(self, image_ids: tuple[int, ...], settings: BootstrapSettings = BootstrapSettings()):
        self.image_ids = tuple(image_ids)
        self.settings = settings
        n = len(self.image_ids)
        rng = np.random.default_rng(settings.seed)
        self.weights = rng.multinomial(n, np.full(n, 1.0 / n), size=settings.resamples).astype(np.int64)
        self.jackknife = np.ones((n, n), np.int64) - np.eye(n, dtype=np.int64)  # each image left out once
        self._draws: dict[int, tuple[Metrics, dict[str, tuple[np.ndarray, np.ndarray]]]] = {}

    def draws(self, metrics: Metrics) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each metric of a run on every resample and on every leave-one-out set (cached per run)."""
        cached = self._draws.get(id(metrics))
        if cached is not None:
            return cached[1]
        runs: dict[str, CocoResult] = metrics.evaluation or {}
        if not runs:
            raise ValueError("these metrics carry no per-image evaluation (validate with the matches kept)")
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        b = len(self.weights)
        for kind, result in runs.items():
            if result.image_ids != self.image_ids:
                raise ValueError("a paired bootstrap needs both runs on the same images")
            check_point_estimate(result)
            m, m50 = resampled_map(result.matches(), np.concatenate([self.weights, self.jackknife]))
            out[f"{kind}_map"], out[f"{kind}_map50"] = (m[:b], m[b:]), (m50[:b], m50[b:])
        self._draws[id(metrics)] = (metrics, out)  # keeps the run alive while its id is a key
        return out

    def samples(self, metrics: Metrics) -> dict[str, np.ndarray]:
        """Each metric of a run on every resample."""
        return {k: boot for k, (boot, _) in self.draws(metrics).items()}

    def _interval(self, boot: np.ndarray, jack: np.ndarray, estimate: float) -> Interval:
        """BCa interval around `estimate` from the resampled and the leave-one-out values (module docstring)."""
        from statistics import NormalDist

        if len(boot) == 0:
            return Interval(float("nan"), float("nan"))
        normal = NormalDist()
        n = len(boot)
        below = (np.count_nonzero(boot < estimate) + 0.5 * np.count_nonzero(boot == estimate)) / n
        z0 = normal.inv_cdf(min(max(below, 0.5 / n), 1 - 0.5 / n))  # bias: the share of resamples below
        d = jack.mean() - jack
        spread = float(np.sum(d**2))
        accel = float(np.sum(d**3)) / (6.0 * spread**1.5) if spread > 0 else 0.0  # skew, from the jackknife
        tail = (1.0 - self.settings.confidence) / 2
        levels = []
        for z in (normal.inv_cdf(tail), normal.inv_cdf(1 - tail)):
            shrink = 1.0 - accel * (z0 + z)
            levels.append(normal.cdf(z0 + (z0 + z) / shrink) if shrink > 0 else float(z > 0))
        lo, hi = np.quantile(boot, levels)
        return Interval(float(lo), float(hi))

    def intervals(self, metrics: Metrics) -> dict[str, Interval]:
        """A run's own interval per metric; also stored on `metrics.intervals`."""
        values = metrics.values()
        draws = self.draws(metrics)
        out = {k: self._interval(boot, jack, values[k]) for k, (boot, jack) in draws.items() if k in values}
        metrics.intervals = {k: out[k] for k in METRIC_KEYS if k in out}
        return metrics.intervals

    def compare(self, reference: Metrics, other: Metrics) -> dict[str, Difference]:
        """`other - reference` per metric both have, with the paired interval."""
        a, b = self.draws(reference), self.draws(other)
        ref, oth = reference.values(), other.values()
        out = {}
        for k in METRIC_KEYS:
            if k in a and k in b and k in ref and k in oth:
                delta = oth[k] - ref[k]
                boot, jack = b[k][0] - a[k][0], b[k][1] - a[k][1]
                out[k] = Difference(k, delta, self._interval(boot, jack, delta))
        return out


def resample_as_dataset(gt: dict, preds: list[dict], counts: np.ndarray, image_ids: tuple[int, ...]):
    """The naive bootstrap's data set for one resample, for checks: image i copied counts[i] times, each copy
    under a new id with its ground truth and predictions. faster-coco-eval on it must equal `resampled_map`."""
    images = {im["id"]: im for im in gt["images"]}
    anns: dict[int, list[dict]] = {}
    for a in gt["annotations"]:
        anns.setdefault(a["image_id"], []).append(a)
    dets: dict[int, list[dict]] = {}
    for p in preds:
        dets.setdefault(p["image_id"], []).append(p)
    new_gt: dict = {**gt, "images": [], "annotations": []}
    new_preds: list[dict] = []
    for i, image_id in enumerate(image_ids):
        for c in range(int(counts[i])):
            nid = int(image_id) * 1000 + c
            new_gt["images"].append({**images[image_id], "id": nid})
            for a in anns.get(image_id, []):
                new_gt["annotations"].append({**a, "image_id": nid, "id": len(new_gt["annotations"]) + 1})
            new_preds += [{**p, "image_id": nid} for p in dets.get(image_id, [])]
    return new_gt, new_preds
