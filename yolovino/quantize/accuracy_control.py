"""INT8 with accuracy control: NNCF quantizes, then reverts the layers that cost most mAP until the drop
is within `max_drop` (absolute, mAP fraction: 0.01 = 1 mAP point).

NNCF hands `validation_fn` the RAW compiled model (float NCHW RGB/255 input, no in-graph letterbox), so
each validation item carries the host-letterboxed tensor (calibration.preprocess: the same math as the
runtime graph) and its Letterbox; outputs are decoded by the runtime's own decoder
(`YoloModel.decode`) and scored by the same COCO code as validate.py. The metric watches every mAP50-95 the
task is judged on (metrics.TASK_METRICS: box; box and mask; box and keypoints), as the worst drop of the two:
`FP32 headline mAP - max_k(FP32_k - model_k)`. For the FP32 model it is its headline mAP, and its drop equals
the largest drop of any task metric, so `max_drop` bounds the box drop of a segment model as well as its mask
drop (watching the mask only let a box loss through).

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

from yolovino.inference.core.config import InferenceConfig
from yolovino.inference.model.ir import ModelMeta, YoloModel
from yolovino.quantize.calibration import load_dataset_yaml, preprocess, read_image
from yolovino.quantize.errors import QuantizeError
from yolovino.quantize.export import attach_meta
from yolovino.quantize.metrics import TASK_METRICS, Metrics
from yolovino.quantize.options import QuantOptions
from yolovino.quantize.ptq import ignored_scope, quantized_ops, quiet_nncf
from yolovino.quantize.validate import VAL_CONFIG, GroundTruth, check_task, predictions_of, score

AC_METRIC = {
    "detect": "box mAP50-95",
    "segment": "worst drop of box and mask mAP50-95",
    "pose": "worst drop of box and keypoint mAP50-95",
}


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
    items: list[dict] = []
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


def worst_drop_metric(m: Metrics, reference: Metrics) -> float:
    """The reference's headline mAP minus the largest drop of any task metric (see module docstring)."""
    drops = [getattr(reference, k) - getattr(m, k) for k in TASK_METRICS[m.task]]
    return reference.primary - max(drops)


class Validator:
    """NNCF's validation_fn over prepared items: called with a compiled model, returns (metric, raw outputs).

    The metric is the task's headline mAP, or `worst_drop_metric` against `reference` when one is given;
    `metrics` gives the full Metrics of a compiled model on the items.
    """

    def __init__(
        self, model: ov.Model, meta: ModelMeta, gt: GroundTruth, max_det: int = 100, reference: Metrics | None = None
    ):
        config = InferenceConfig(**VAL_CONFIG).with_(max_det=max_det)
        self.decoder = YoloModel(model, meta, config, ov.Core(), Path(meta.source or "model"))
        self.task = meta.task
        self.gt = gt.coco_dict()
        self.reference = reference

    def metrics(self, compiled: ov.CompiledModel, items: list[dict]) -> tuple[Metrics, list[list[np.ndarray]]]:
        preds, raw, ids = [], [], set()
        for item in items:
            res = compiled(item["x"])
            outs = [np.array(res[o]) for o in compiled.outputs]
            preds += predictions_of(self.decoder.decode(outs, item["lb"]), item["image_id"], self.task)
            raw.append(outs)
            ids.add(item["image_id"])
        sub = {
            **self.gt,
            "images": [im for im in self.gt["images"] if im["id"] in ids],
            "annotations": [a for a in self.gt["annotations"] if a["image_id"] in ids],
        }
        return score(sub, preds, self.task, len(ids)), raw

    def __call__(self, compiled: ov.CompiledModel, items: list[dict]) -> tuple[float, list[list[np.ndarray]]]:
        m, raw = self.metrics(compiled, items)
        return (m.primary if self.reference is None else worst_drop_metric(m, self.reference)), raw


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
    reference, _ = Validator(model, meta, gt).metrics(ov.Core().compile_model(model, "CPU"), items)
    validation_fn = Validator(model, meta, gt, reference=reference)
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
            ignored_scope=ignored_scope(model, meta, options),
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
