"""Bootstrap intervals (quantize/coco.py + quantize/bootstrap.py), the typed build report, the AC metric.

Ground truth is real (the datasets' own labels); predictions are made from it with known errors (jittered
boxes/masks/keypoints, missed objects, false positives, a known shift), so the tests are fast and the expected
effect is known. The reference every number is checked against is faster-coco-eval itself.
"""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pytest

from yolovino.quantize.bootstrap import BootstrapSettings, PairedBootstrap, resample_as_dataset, resampled_map
from yolovino.quantize.coco import IOU_TYPES, coco_eval
from yolovino.quantize.metrics import Difference, Interval, Metrics
from yolovino.quantize.validate import GroundTruth, score

KIND_OF_TASK = {"detect": "box", "segment": "mask", "pose": "pose"}


def ground_truth(yaml, task: str, n: int) -> dict:
    from yolovino.quantize.calibration import load_dataset_yaml

    ds = load_dataset_yaml(yaml, "val")
    gt = GroundTruth(ds, task)
    for i, p in enumerate(ds.images[:n]):
        img = cv2.imread(str(p))
        assert img is not None, p
        gt.add(p, i, img.shape[:2])
    return gt.coco_dict()


def predictions(gt: dict, seed: int, shift: float = 0.0, fps_per_image: int = 4) -> list[dict]:
    """GT-derived detections: ~5 % jitter, 10 % missed, a few false positives; `shift` moves every true
    detection right by that fraction of its width (box, mask and keypoints alike)."""
    from faster_coco_eval.core import mask as mask_util

    rng = np.random.default_rng(seed)
    sizes = {im["id"]: (im["height"], im["width"]) for im in gt["images"]}
    cats = sorted({a["category_id"] for a in gt["annotations"]})
    out = []
    for a in gt["annotations"]:
        if rng.random() < 0.1:
            continue
        x, y, w, h = a["bbox"]
        jx, jy, jw, jh = rng.normal(0, 0.05, 4) * [w, h, w, h]
        p = {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "bbox": [x + jx + shift * w, y + jy, max(1.0, w + jw), max(1.0, h + jh)],
            "score": float(rng.uniform(0.3, 1.0)),
        }
        if "segmentation" in a:
            m = mask_util.decode(a["segmentation"])
            m = np.roll(m, int(round(jx + shift * w)), axis=1)
            rle = mask_util.encode(np.asfortranarray(m))
            p["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
        if "keypoints" in a:
            kp = np.array(a["keypoints"], float).reshape(-1, 3)
            kp[:, 0] += rng.normal(0, 0.03 * w, len(kp)) + shift * w
            kp[:, 1] += rng.normal(0, 0.03 * h, len(kp))
            kp[:, 2] = 1.0
            p["keypoints"] = kp.reshape(-1).tolist()
        out.append(p)
    for im in gt["images"]:
        h, w = sizes[im["id"]]
        for _ in range(fps_per_image):
            bw, bh = rng.uniform(10, w / 3), rng.uniform(10, h / 3)
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            p = {"image_id": im["id"], "category_id": int(rng.choice(cats)), "bbox": [x, y, bw, bh]}
            p["score"] = float(rng.uniform(0.0, 0.6))
            if any("segmentation" in a for a in gt["annotations"]):
                m = np.zeros((h, w), np.uint8)
                m[int(y) : int(y + bh), int(x) : int(x + bw)] = 1
                rle = mask_util.encode(np.asfortranarray(m))
                p["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
            if any("keypoints" in a for a in gt["annotations"]):
                p["keypoints"] = np.column_stack([rng.uniform(x, x + bw, 17), rng.uniform(y, y + bh, 17), np.ones(17)])
                p["keypoints"] = p["keypoints"].reshape(-1).tolist()
            out.append(p)
    return out


@pytest.fixture(scope="module")
def gts(coco_val128_yaml, coco128_seg_yaml, coco_pose_yaml) -> dict[str, dict]:
    box = ground_truth(coco_val128_yaml, "detect", 48)
    for a in box["annotations"][::15]:  # a few crowd regions, so COCO's crowd rules are exercised too
        a["iscrowd"] = 1
    return {
        "detect": box,
        "segment": ground_truth(coco128_seg_yaml, "segment", 24),
        "pose": ground_truth(coco_pose_yaml, "pose", 32),
    }


def _of(preds: list[dict], kind: str) -> list[dict]:
    key = {"box": "bbox", "mask": "segmentation", "pose": "keypoints"}[kind]
    return [p for p in preds if key in p]


@pytest.mark.parametrize("task", ["detect", "segment", "pose"])
def test_point_estimate_equals_faster_coco_eval(gts, task):
    """All images weighted once, the replayed matches give faster-coco-eval's mAP50-95 and mAP50 exactly."""
    gt = gts[task]
    kinds = ["box"] + ([KIND_OF_TASK[task]] if task != "detect" else [])
    for kind in kinds:
        result = coco_eval(gt, _of(predictions(gt, seed=1), kind), IOU_TYPES[kind])
        assert 0.2 < result.map < 0.95, (kind, result.map)  # a score that is neither trivial nor perfect
        m = result.matches()
        got, got50 = resampled_map(m, np.ones((1, len(m.image_ids)), np.int64))
        assert got[0] == pytest.approx(result.map, abs=1e-9), kind
        assert got50[0] == pytest.approx(result.map50, abs=1e-9), kind


@pytest.mark.parametrize("task", ["detect", "segment", "pose"])
def test_a_resample_scores_like_the_duplicated_data_set(gts, task):
    """A resample (some images twice, some absent) scores what faster-coco-eval gives on that data set built
    for real: the weighted aggregation is COCO's, not an approximation of it."""
    gt = gts[task]
    kind = KIND_OF_TASK[task]
    preds = _of(predictions(gt, seed=2), kind)
    result = coco_eval(gt, preds, IOU_TYPES[kind])
    ids = result.image_ids
    counts = np.random.default_rng(3).multinomial(len(ids), np.full(len(ids), 1 / len(ids)))
    assert counts.max() >= 2 and (counts == 0).any()
    got, got50 = resampled_map(result.matches(), counts[None])
    new_gt, new_preds = resample_as_dataset(gt, preds, counts, ids)
    expected = coco_eval(new_gt, new_preds, IOU_TYPES[kind])
    assert got[0] == pytest.approx(expected.map, abs=1e-9)
    assert got50[0] == pytest.approx(expected.map50, abs=1e-9)


def test_identical_predictions_give_a_zero_width_interval_at_zero(gts):
    gt = gts["segment"]
    preds = predictions(gt, seed=4)
    a, b = score(gt, preds, "segment", 24), score(gt, copy.deepcopy(preds), "segment", 24)
    boot = PairedBootstrap(a.evaluation["box"].image_ids, BootstrapSettings(resamples=200))
    diffs = boot.compare(a, b)
    assert set(diffs) == {"box_map", "box_map50", "mask_map", "mask_map50"}
    for d in diffs.values():
        assert d.delta == 0.0 and d.interval == Interval(0.0, 0.0) and d.within_noise
    own = boot.intervals(a)
    assert own["mask_map"].width > 0.01  # one model alone on 24 images is far from certain
    assert own["mask_map"].holds(a.mask_map)


def test_own_interval_corrects_the_shift_of_resampled_maps(gts):
    """Resampled mAPs sit above the estimate (resamples that miss a rare, low-AP category average over fewer):
    the BCa interval reads lower percentiles than the plain 2.5-97.5 ones, and still holds the estimate."""
    gt = gts["detect"]
    m = score(gt, predictions(gt, seed=7), "detect", len(gt["images"]))
    boot = PairedBootstrap(m.evaluation["box"].image_ids, BootstrapSettings(resamples=400))
    samples = boot.samples(m)["box_map"]
    q_lo, q_hi = np.percentile(samples, [2.5, 97.5])
    iv = boot.intervals(m)["box_map"]
    assert np.mean(samples > m.box_map) > 0.6  # the shift this corrects is there on real labels
    assert iv.lo < q_lo and iv.hi < q_hi and iv.holds(m.box_map)


@pytest.mark.parametrize("task, shift", [("detect", 0.03), ("pose", 0.05)])
def test_a_known_shift_gives_an_interval_that_excludes_zero(gts, task, shift):
    """Moving every true detection by a few % of its width costs a little mAP on many images: the paired
    interval lies below 0 although each model's own interval is wide and the two overlap."""
    gt = gts[task]
    n = len(gt["images"])
    good = score(gt, predictions(gt, seed=5), task, n)
    shifted = score(gt, predictions(gt, seed=5, shift=shift), task, n)
    boot = PairedBootstrap(good.evaluation["box"].image_ids, BootstrapSettings(resamples=300))
    diff = boot.compare(good, shifted)
    for k in ("box_map", f"{KIND_OF_TASK[task]}_map"):
        d = diff[k]
        assert d.delta == pytest.approx(getattr(shifted, k) - getattr(good, k))
        assert d.delta < 0 and d.interval.hi < 0 and not d.within_noise, (k, d)
        assert d.interval.lo <= d.delta <= d.interval.hi
    reverse = boot.compare(shifted, good)["box_map"]
    assert reverse.interval.lo > 0 and reverse.delta == pytest.approx(-diff["box_map"].delta)
    own_good, own_shifted = boot.intervals(good)["box_map"], boot.intervals(shifted)["box_map"]
    assert own_good.lo < own_shifted.hi  # separate intervals overlap; only the paired one resolves the shift
    assert diff["box_map"].interval.width < own_good.width


def test_bootstrap_needs_the_same_images(gts):
    gt = gts["pose"]
    preds = predictions(gt, seed=6)
    full = score(gt, preds, "pose", 32)
    half_gt = {**gt, "images": gt["images"][:16]}
    kept = {im["id"] for im in half_gt["images"]}
    half_gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] in kept]
    half = score(half_gt, [p for p in preds if p["image_id"] in kept], "pose", 16)
    boot = PairedBootstrap(full.evaluation["box"].image_ids, BootstrapSettings(resamples=10))
    with pytest.raises(ValueError, match="same images"):
        boot.compare(full, half)


def test_worst_drop_metric_watches_box_and_mask():
    """Accuracy control's metric: the reference's headline minus the largest drop of any task metric."""
    from yolovino.quantize.accuracy_control import worst_drop_metric

    ref = Metrics("segment", 10, box_map=0.42, mask_map=0.34)
    box_loss = Metrics("segment", 10, box_map=0.40, mask_map=0.339)
    assert worst_drop_metric(ref, ref) == pytest.approx(0.34)
    assert worst_drop_metric(box_loss, ref) == pytest.approx(0.34 - 0.02)  # the box drop, not the mask's
    pose_ref = Metrics("pose", 10, box_map=0.70, pose_map=0.46)
    assert worst_drop_metric(Metrics("pose", 10, box_map=0.705, pose_map=0.45), pose_ref) == pytest.approx(0.45)
    assert worst_drop_metric(Metrics("detect", 10, box_map=0.43), Metrics("detect", 10, box_map=0.44)) == pytest.approx(
        0.43
    )


def test_build_report_round_trip_and_older_layout(tmp_path):
    """The typed report reads back what it wrote, and reads a report written before intervals existed."""
    from yolovino.quantize.report import AccuracyControl, BuildReport, ReportError, Throughput, Variant, load_report

    m = Metrics("segment", 128, box_map=0.42, box_map50=0.58, mask_map=0.34, mask_map50=0.52)
    m.intervals = {"box_map": Interval(0.40, 0.48)}
    report = BuildReport("seg", "segment", variants={"fp32": Variant("fp32/seg.xml", 13.0, metrics=m)})
    report.variants["int8-ac"] = Variant(
        "int8-ac/seg.xml",
        3.5,
        fake_quantize_nodes=120,
        metrics=m,
        throughput=Throughput(50.0, 100, 2.0, "AsyncEngine"),
        vs_fp32={"box_map": Difference("box_map", -0.0075, Interval(-0.015, 0.0))},
        accuracy_control=AccuracyControl(0.01, 64, "worst drop", ["conv1"], "NNCF log"),
    )
    back = BuildReport.from_dict(report.to_dict())
    assert back == report
    old = {  # the layout of report.json before the typed report (flat accuracy-control fields)
        "name": "seg",
        "task": "segment",
        "variants": {
            "int8-ac": {"path": "int8-ac/seg.xml", "size_mb": 3.5, "reverted_to_fp32": ["a", "b"], "max_drop": 0.01},
            "int8": {
                "path": "int8/seg.xml",
                "metrics": {"task": "segment", "images": 8, "box_map": 0.4, "primary": 0.3},
            },
        },
    }
    parsed = BuildReport.from_dict(old)
    assert parsed.variants["int8-ac"].accuracy_control.reverted_to_fp32 == ["a", "b"]
    assert parsed.variants["int8"].metrics.box_map == 0.4 and parsed.variants["int8"].vs_fp32 == {}
    (tmp_path / "report.json").write_text('{"variants": [1, 2]}')
    with pytest.raises(ReportError, match="not a build report"):
        load_report(tmp_path / "report.json")
