"""INT8 with accuracy control: NNCF quantizes, then reverts the layers that cost most mAP until the drop
is within `max_drop` (absolute, mAP fraction: 0.01 = 1 mAP point).

NNCF hands `validation_fn` the RAW compiled model (float NCHW RGB/255 input, no in-graph letterbox), so
each validation item carries the host-letterboxed tensor (calibration.preprocess: the same math as the
runtime graph) and its Letterbox; outputs are decoded by the runtime's own decoder
(`YoloModel.decode`) and scored by the same COCO code as validate.py. The metric is the task's headline
one: box mAP50-95 (detect), mask mAP50-95 (segment), keypoint mAP50-95 (pose).

Speed (2 CPU cores): the validation subset is small (default 64 images), validation decodes at most 100
detections per image (the COCO metric reads at most 100 per image and category, so this changes
little), `validation_fn` also returns each item's raw outputs so NNCF ranks layers by output NMSE on a
ranking subset (cheap) instead of re-running the mAP per candidate, and `max_num_iterations` caps the
revert loop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import openvino as ov

from inference.config import InferenceConfig
from inference.model import ModelMeta, YoloModel

from .calibration import load_dataset_yaml, preprocess, read_image
from .errors import QuantizeError
from .export import attach_meta
from .options import QuantOptions
from .ptq import quantized_ops, quiet_nncf
from .scopes import find_decode_scope
from .validate import VAL_CONFIG, GroundTruth, check_task, predictions_of, score


@dataclass
class ACResult:
    model: ov.Model
    reverted: list[str] = field(default_factory=list)
    reverted_source: str = ""
    log: list[str] = field(default_factory=list)


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def validation_items(meta: ModelMeta, data: str | Path, limit: int = 64) -> tuple[list[dict], GroundTruth]:
    ds = load_dataset_yaml(data, "val")
    check_task(ds, meta.task, len(meta.names))
    gt = GroundTruth(ds, meta.task)
    items = []
    for i, p in enumerate(ds.images):
        if len(items) >= limit:
            break
        img = read_image(p)
        if img is None:
            continue
        x, lb = preprocess(img, meta.imgsz, meta.stride)
        items.append({"x": x, "lb": lb, "image_id": gt.add(p, i, img.shape[:2])})
    if not items:
        raise QuantizeError(f"{data}: no readable validation images")
    return items, gt


def make_validation_fn(model: ov.Model, meta: ModelMeta, gt: GroundTruth, max_det: int = 100):
    decoder = YoloModel(
        model, meta, InferenceConfig(**{**VAL_CONFIG, "max_det": max_det}), ov.Core(), Path(meta.source or "model")
    )
    full = gt.coco_dict()

    def validation_fn(compiled, items):
        preds, raw, ids = [], [], set()
        for item in items:
            res = compiled(item["x"])
            outs = [np.array(res[o]) for o in compiled.outputs]
            preds += predictions_of(decoder.decode(outs, item["lb"]), item["image_id"], meta.task)
            raw.append(outs)
            ids.add(item["image_id"])
        sub = {
            **full,
            "images": [im for im in full["images"] if im["id"] in ids],
            "annotations": [a for a in full["annotations"] if a["image_id"] in ids],
        }
        return float(score(sub, preds, meta.task, len(ids)).primary), raw

    return validation_fn


def quantize_ac(
    model: ov.Model,
    meta: ModelMeta,
    calib: list[np.ndarray],
    val_data: str | Path,
    *,
    max_drop: float = 0.01,
    options: QuantOptions = QuantOptions(),
    val_images: int = 64,
    max_iterations: int = 5,
    ptq_model: ov.Model | None = None,
) -> ACResult:
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    if not 0.0 < max_drop < 1.0:
        raise QuantizeError(f"max-drop must be in (0, 1) as an mAP fraction (0.01 = 1 point), got {max_drop}")
    quiet_nncf()
    items, gt = validation_items(meta, val_data, val_images)
    validation_fn = make_validation_fn(model, meta, gt)
    capture = _Capture()
    log = logging.getLogger("nncf")
    old_level = log.level
    quieted = [(h, h.level) for h in log.handlers]
    for h, _ in quieted:  # NNCF's own console handler: keep it quiet, we only want to read the records
        h.setLevel(logging.WARNING)
    log.setLevel(logging.INFO)
    log.addHandler(capture)
    try:
        q = nncf.quantize_with_accuracy_control(
            model,
            nncf.Dataset(calib),
            nncf.Dataset(items, lambda d: d["x"]),
            validation_fn,
            max_drop=max_drop,
            drop_type=nncf.DropType.ABSOLUTE,
            ignored_scope=find_decode_scope(model).ignored_scope(),
            advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
                max_num_iterations=max_iterations, ranking_subset_size=min(32, len(items)), num_ranking_workers=1
            ),
            **options.nncf_kwargs(len(calib), accuracy_control=True),
        )
    except (RuntimeError, ValueError, nncf.ValidationError) as exc:
        raise QuantizeError(f"NNCF accuracy control failed: {str(exc).splitlines()[0][:200]}") from None
    finally:
        log.removeHandler(capture)
        log.setLevel(old_level)
        for h, level in quieted:
            h.setLevel(level)
    attach_meta(q, replace(meta, precision="int8-ac"))
    result = ACResult(
        q,
        log=[
            line
            for line in capture.lines
            if any(k in line.lower() for k in ("revert", "metric", "accuracy drop", "iteration", "reached"))
        ],
    )
    # NNCF's final summary is authoritative ("N out of M were reverted back to the floating-point precision:"
    # then one op per line); when it is absent (nothing to revert, or a future NNCF words it differently),
    # compare the INT8 ops (FakeQuantize-fed or int8 weights) of the PTQ and AC graphs.
    for line in capture.lines:
        if "were reverted back to the floating-point precision" in line:
            result.reverted = [s.strip() for s in line.splitlines()[1:] if s.strip()]
            result.reverted_source = "NNCF accuracy-control log"
    if not result.reverted_source and ptq_model is not None:
        result.reverted = sorted(quantized_ops(ptq_model) - quantized_ops(q))
        result.reverted_source = "INT8-op comparison of the PTQ and AC graphs"
    return result
