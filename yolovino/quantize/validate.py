"""COCO metrics of an OpenVINO IR on a labelled Ultralytics dataset, run through OUR runtime.

The IR is loaded with `inference.YoloModel` and run with `AsyncEngine`, so what is measured is what the
app runs: in-graph letterbox, our NMS and decoders. Settings are Ultralytics' validation ones:
conf=0.001, iou=0.7, multi_label=True, max_det=300, rect=False (square imgsz letterbox).

Ground truth is built from the YOLO label files at each image's original size:
- boxes: `cls cx cy w h` (normalised) -> COCO xywh pixels, area = box area;
- polygons (segment datasets): `cls x1 y1 x2 y2 ...` -> mask with cv2.fillPoly at image size -> RLE,
  bbox = polygon bounds, area = polygon area (shoelace);
- keypoints (pose datasets, yaml kpt_shape): `cls box K*(x y v)` -> COCO keypoints, num_keypoints = v>0,
  area = 0.53 x box area: we have no person segmentation, whose area COCO uses as the OKS scale;
  0.53 is Ultralytics' own stand-in (its pose validator), a typical person mask/box area ratio.
Category id = class index + 1 and image id = numeric file stem (else running index), the same
convention as Ultralytics' `save_json`, so its predictions.json can be scored with this exact code.

Metrics: faster-coco-eval (`COCOeval_faster`, quantize/coco.py), standard COCO protocol: 10 IoU thresholds
.50:.95, 101-point interpolated precision, area range "all", maxDets=100 for bbox/segm and 20 for keypoints,
OKS with the COCO 17 sigmas (1/K each for a custom set of K keypoints, as Ultralytics). Ultralytics' own
printed metric differs slightly (no maxDets cap, its own interpolation), which is why the parity test compares
like with like (see tests/test_validate_parity.py).
Each run keeps its per-image matches (`Metrics.evaluation`) for the bootstrap intervals (quantize/bootstrap.py).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any, TypedDict

import cv2
import numpy as np

from yolovino.quantize.calibration import Dataset, load_dataset_yaml, read_image
from yolovino.quantize.coco import IOU_TYPES, coco_eval
from yolovino.quantize.errors import QuantizeError
from yolovino.quantize.metrics import Metrics

__all__ = ["VAL_CONFIG", "GroundTruth", "Metrics", "score", "validate_ir", "validate_model"]

POSE_AREA_FACTOR = 0.53


class ValConfig(TypedDict):
    """The InferenceConfig fields validation sets (Ultralytics' validation settings)."""

    conf: float
    iou: float
    multi_label: bool
    max_det: int
    rect: bool


VAL_CONFIG: ValConfig = {"conf": 0.001, "iou": 0.7, "multi_label": True, "max_det": 300, "rect": False}


# --- ground truth -------------------------------------------------------------------------------------


def _image_id(path: Path, index: int) -> int:
    return int(path.stem) if path.stem.isnumeric() else index + 1


def polygon_area(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def rle_encode(mask: np.ndarray) -> dict:
    from faster_coco_eval.core import mask as mask_util

    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode() if isinstance(rle["counts"], bytes) else rle["counts"]
    return rle


class GroundTruth:
    """COCO-format GT assembled image by image while the images are read for inference."""

    def __init__(self, ds: Dataset, task: str):
        self.ds, self.task = ds, task
        self.kpt_shape = ds.kpt_shape
        self.images: list[dict] = []
        self.annotations: list[dict] = []
        self.polygons_seen = 0

    def add(self, path: Path, index: int, hw: tuple[int, int]) -> int:
        h, w = hw
        image_id = _image_id(path, index)
        self.images.append({"id": image_id, "width": w, "height": h, "file_name": path.name})
        lp = self.ds.label_path(path)
        lines = lp.read_text().splitlines() if lp.is_file() else []
        for line in lines:
            v = line.split()
            if not v:
                continue
            try:
                cls, vals = int(float(v[0])), np.array(v[1:], np.float64)
            except ValueError:
                raise QuantizeError(f"{lp}: malformed label line {line[:60]!r}") from None
            ann: dict[str, Any] = {
                "id": len(self.annotations) + 1,
                "image_id": image_id,
                "category_id": cls + 1,
                "iscrowd": 0,
            }
            if self.kpt_shape:
                k, d = self.kpt_shape
                if len(vals) != 4 + k * d:
                    raise QuantizeError(f"{lp}: pose label has {len(vals)} values, expected {4 + k * d}")
                box = vals[:4]
                kp = vals[4:].reshape(k, d)
                kp_px = np.zeros((k, 3))
                kp_px[:, 0], kp_px[:, 1] = kp[:, 0] * w, kp[:, 1] * h
                kp_px[:, 2] = kp[:, 2] if d == 3 else 2
                kp_px[kp_px[:, 2] == 0, :2] = 0
                ann["keypoints"] = [round(float(x), 2) for x in kp_px.reshape(-1)]
                ann["num_keypoints"] = int((kp_px[:, 2] > 0).sum())
                ann["area"] = float(box[2] * w * box[3] * h * POSE_AREA_FACTOR)
            elif len(vals) > 4:  # polygon
                xy = vals[: len(vals) // 2 * 2].reshape(-1, 2) * (w, h)
                self.polygons_seen += 1
                x0, y0 = xy.min(0)
                x1, y1 = xy.max(0)
                box = np.array([(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h])
                if self.task == "segment":
                    mask = np.zeros((h, w), np.uint8)
                    cv2.fillPoly(mask, [np.round(xy).astype(np.int32)], 1)
                    ann["segmentation"] = rle_encode(mask)
                    ann["area"] = polygon_area(xy)
            else:
                box = vals[:4]
            cx, cy, bw, bh = box[0] * w, box[1] * h, box[2] * w, box[3] * h
            ann["bbox"] = [cx - bw / 2, cy - bh / 2, bw, bh]
            ann.setdefault("area", float(bw * bh))
            self.annotations.append(ann)
        return image_id

    def coco_dict(self) -> dict:
        cats = [{"id": i + 1, "name": n} for i, n in sorted(self.ds.names.items())]
        if self.kpt_shape:
            for c in cats:
                c["keypoints"] = [str(i) for i in range(self.kpt_shape[0])]
                c["skeleton"] = []
        return {"images": self.images, "annotations": self.annotations, "categories": cats}


def check_task(ds: Dataset, task: str, nc: int) -> None:
    """Refuse dataset/model combinations whose metrics would be meaningless."""
    if task == "pose" and not ds.kpt_shape:
        raise QuantizeError(f"{ds.yaml}: a pose model needs a pose dataset (kpt_shape in the yaml)")
    if task != "pose" and ds.kpt_shape:
        raise QuantizeError(f"{ds.yaml}: a pose dataset cannot validate a {task} model")
    if len(ds.names) != nc:
        raise QuantizeError(f"{ds.yaml}: dataset has {len(ds.names)} classes, the {task} model has {nc}")


def predictions_of(results, image_id: int, task: str) -> list[dict]:
    out = []
    boxes = results.boxes.astype(np.float64)
    need_masks = task == "segment" and results.masks is not None
    rles = []
    if need_masks and len(results):
        from faster_coco_eval.core import mask as mask_util

        rles = mask_util.encode(np.asfortranarray(results.masks.transpose(1, 2, 0).astype(np.uint8)))
    for i in range(len(results)):
        x1, y1, x2, y2 = boxes[i]
        det = {
            "image_id": image_id,
            "category_id": int(results.class_ids[i]) + 1,
            "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
            "score": round(float(results.scores[i]), 5),
        }
        if need_masks:
            rle = rles[i]
            det["segmentation"] = {
                "size": rle["size"],
                "counts": rle["counts"].decode() if isinstance(rle["counts"], bytes) else rle["counts"],
            }
        if task == "pose" and results.keypoints is not None:
            det["keypoints"] = [round(float(v), 3) for v in results.keypoints[i].reshape(-1)]
        out.append(det)
    return out


def score(
    gt_dict: dict, preds: list[dict], task: str, images: int, seconds: float = 0.0, box_only: bool = False
) -> Metrics:
    """COCO metrics of predictions against ground truth; the per-image matches stay on `Metrics.evaluation`.

    box_only: score boxes alone (a segment model on a data set with box labels only)."""
    m = Metrics(task=task, images=images, seconds=seconds, evaluation={})
    kinds = ["box"] + (["mask"] if task == "segment" else []) + (["pose"] if task == "pose" else [])
    for kind in kinds[:1] if box_only else kinds:
        key = {"box": "bbox", "mask": "segmentation", "pose": "keypoints"}[kind]
        result = coco_eval(gt_dict, [p for p in preds if kind == "box" or key in p], IOU_TYPES[kind])
        setattr(m, f"{kind}_map", result.map)
        setattr(m, f"{kind}_map50", result.map50)
        m.evaluation[kind] = result
    return m


def load_ultralytics_json(path: Path, gt_dict: dict) -> list[dict]:
    """Ultralytics `save_json` predictions, with image ids remapped through file names to our GT ids."""
    by_name = {im["file_name"]: im["id"] for im in gt_dict["images"]}
    preds = json.loads(Path(path).read_text())
    for p in preds:
        p["image_id"] = by_name.get(p.pop("file_name", ""), p["image_id"])
    return preds


def validate_model(
    model,
    data: str | Path,
    limit: int | None = None,
    progress: bool = False,
    split: str = "val",
    keep_predictions: bool = False,
    box_only: bool = False,
) -> Metrics:
    """Run a loaded YoloModel (any config; validation settings are applied here) over a dataset split.

    box_only: score the boxes alone, e.g. a segment model's boxes on held-out images that have box labels only."""
    from yolovino.inference.model.engine import AsyncEngine

    ds = load_dataset_yaml(data, split)
    task = model.meta.task
    check_task(ds, task, len(model.meta.names))
    vconfig = model.config.with_(**VAL_CONFIG)
    vmodel = model.reconfigured(vconfig)
    gt = GroundTruth(ds, task)
    paths = list(ds.images[:limit] if limit else ds.images)

    def frames():
        for i, p in enumerate(paths):
            img = read_image(p)
            if img is None:
                continue
            yield img, gt.add(p, i, img.shape[:2])

    preds: list[dict] = []
    t0 = time.perf_counter()
    it = AsyncEngine(vmodel).stream(frames(), with_userdata=True)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, total=len(paths), desc=f"validate {Path(str(data)).stem}", unit="img", leave=False)
    n = 0
    for _frame, results, image_id in it:
        preds += predictions_of(results, image_id, task)
        n += 1
    seconds = time.perf_counter() - t0
    if n == 0:
        raise QuantizeError(f"{data}: none of the {len(paths)} images could be read")
    if task == "segment" and not box_only and gt.polygons_seen == 0 and gt.annotations:
        raise QuantizeError(f"{data}: a segment model needs polygon labels; this dataset has boxes only")
    gt_dict = gt.coco_dict()
    m = score(gt_dict, preds, task, n, seconds, box_only)
    if keep_predictions:
        m.extra["gt"], m.extra["predictions"] = gt_dict, preds
    return m


def make_core(precision: str | None = None):
    """An OpenVINO Core; `precision="f32"` disables the CPU plugin's reduced-precision default.

    Note: on CPUs with bf16 support (e.g. this AMD EPYC, avx512_bf16) OpenVINO's default CPU
    INFERENCE_PRECISION_HINT is bf16, so an "FP32" IR actually runs its float layers in bf16 unless told
    otherwise. Metrics default to what the app runs (the plugin default) and record it.
    """
    import openvino as ov

    core = ov.Core()
    if precision:
        core.set_property("CPU", {"INFERENCE_PRECISION_HINT": precision})
    return core


def cpu_precision(core=None) -> str:
    core = core or make_core()
    return str(core.get_property("CPU", "INFERENCE_PRECISION_HINT"))


def validate_ir(
    path: str | Path,
    data: str | Path,
    limit: int | None = None,
    progress: bool = False,
    precision: str | None = "f32",
    box_only: bool = False,
) -> Metrics:
    """COCO metrics of an IR through our engine. Accuracy is measured in f32 by default, so that "FP32" really
    is FP32 (the CPU plugin would otherwise run float layers in bf16 where the CPU has it); None = plugin default.
    """
    from yolovino.inference.core.config import InferenceConfig
    from yolovino.inference.core.errors import InferenceError
    from yolovino.inference.model.ir import YoloModel

    try:
        model = YoloModel.load(path, InferenceConfig(**VAL_CONFIG), core=make_core(precision))
    except InferenceError as exc:
        raise QuantizeError(str(exc)) from None
    m = validate_model(model, data, limit, progress, box_only=box_only)
    m.extra["cpu_inference_precision"] = cpu_precision(model.core)
    return m


# --- throughput ---------------------------------------------------------------------------------------


def throughput_frames(paths: list[Path], limit: int = 32) -> list[np.ndarray]:
    """Up to `limit` readable images of the most frequent size: one compiled graph, a number that means one thing."""
    frames = [f for f in (read_image(p) for p in paths[:limit]) if f is not None]
    if not frames:
        return frames
    shape = Counter(f.shape for f in frames).most_common(1)[0][0]
    return [f for f in frames if f.shape == shape]


def throughput(path: str | Path, frames: list[np.ndarray], seconds: float = 5.0, rect: bool = False) -> dict:
    """Frames/s of OUR AsyncEngine (THROUGHPUT hint, conf 0.25), end to end: in-graph preprocessing +
    inference + NMS/decode, cycling over `frames` for `seconds` after a warm-up.

    rect=False (default) letterboxes to the square model size, so every variant does the same work and
    static-shape exports (Ultralytics') can be measured too; the app's default rect=True is faster on
    non-square frames."""
    from yolovino.inference.core.config import InferenceConfig
    from yolovino.inference.model.engine import AsyncEngine
    from yolovino.inference.model.ir import YoloModel

    model = YoloModel.load(path, InferenceConfig(rect=rect))
    engine = AsyncEngine(model)
    warm = list(engine.stream(frames[: max(2, min(len(frames), 4))]))  # compiles the graphs for these sizes
    del warm
    count, t0 = 0, time.perf_counter()

    def cycle():
        i = 0
        while time.perf_counter() - t0 < seconds:
            yield frames[i % len(frames)]
            i += 1

    for _ in engine.stream(cycle()):
        count += 1
    dt = time.perf_counter() - t0
    return {
        "fps": count / dt,
        "frames": count,
        "seconds": dt,
        "method": f"AsyncEngine end-to-end (in-graph letterbox + infer + decode), THROUGHPUT hint, "
        f"{'rect' if rect else 'square'} letterbox, conf 0.25, cycling over {len(frames)} validation "
        f"images of size {frames[0].shape[1]}x{frames[0].shape[0]}",
        "cpu_inference_precision": cpu_precision(model.core),
    }
