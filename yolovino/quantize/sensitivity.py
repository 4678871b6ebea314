"""Per-layer INT8 sensitivity: which convolutions cost the most accuracy when quantized.

Method ("all but one", without re-quantizing per layer): quantize once with NNCF (same settings as
`build`), then for each quantized Convolution restore just that layer to float in the INT8 graph (its
original FP32 weights instead of the int8 ones, and its input read before the activation FakeQuantize),
compile, and measure the task's mAP50-95 on a small validation subset through the raw model + runtime
decoders (the same path as accuracy control). The layer's sensitivity is the gain over full INT8.
One NNCF run plus one compile + subset validation per layer: ~5 s per layer for yolov8n on 2 cores.

`--keep-fp32 K` then builds an INT8 IR with the top-K layers added to the ignored scope.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import openvino as ov
import openvino.opset13 as ops

from yolovino.quantize.checks import check_imgsz, check_out, check_positive, check_val_data, checkpoint_task
from yolovino.quantize.console import log
from yolovino.quantize.errors import QuantizeError
from yolovino.quantize.scopes import is_int8, producer


@dataclass
class LayerScore:
    name: str
    metric: float  # task mAP50-95 with this layer in float, the rest INT8
    gain: float  # metric - full INT8 metric (higher = more sensitive)
    seconds: float


def quantized_convs(int8: ov.Model) -> list[ov.Node]:
    """Convolutions running in INT8 (scopes.is_int8: activation FakeQuantize or int8 weights)."""
    return [op for op in int8.get_ordered_ops() if op.get_type_name() == "Convolution" and is_int8(op)]


class LayerReverter:
    """Temporarily put one conv of the INT8 graph back in float (FP32 weights, un-quantized input)."""

    def __init__(self, fp32: ov.Model):
        self.fp32_weights = {
            op.get_friendly_name(): producer(op.inputs()[1])
            for op in fp32.get_ordered_ops()
            if op.get_type_name() == "Convolution"
        }

    def revert(self, conv: ov.Node) -> list:
        changes = []
        act = conv.inputs()[0]
        src = producer(act)
        if src.get_type_name() == "FakeQuantize":
            changes.append((act, act.get_source_output()))
            act.replace_source_output(src.input_value(0))
        w = self.fp32_weights.get(conv.get_friendly_name())
        if w is not None and w.get_type_name() == "Constant":
            win = conv.inputs()[1]
            changes.append((win, win.get_source_output()))
            win.replace_source_output(ops.constant(w.get_data().copy()).output(0))
        return changes

    @staticmethod
    def restore(changes: list) -> None:
        for inp, old in reversed(changes):
            inp.replace_source_output(old)


def rank_layers(
    fp32: ov.Model, int8: ov.Model, validation_fn, items, max_layers: int | None = None, progress: bool = False
) -> tuple[float, float, list[LayerScore]]:
    core = ov.Core()
    base = float(validation_fn(core.compile_model(int8, "CPU"), items)[0])
    ref = float(validation_fn(core.compile_model(fp32, "CPU"), items)[0])
    convs = quantized_convs(int8)[:max_layers] if max_layers else quantized_convs(int8)
    reverter = LayerReverter(fp32)
    scores = []
    it = convs
    if progress:
        from tqdm import tqdm

        it = tqdm(convs, desc="sensitivity", unit="layer", file=sys.stderr)
    for conv in it:
        t = time.perf_counter()
        changes = reverter.revert(conv)
        try:
            metric = float(validation_fn(core.compile_model(int8, "CPU"), items)[0])
        finally:
            reverter.restore(changes)
        scores.append(LayerScore(conv.get_friendly_name(), metric, metric - base, time.perf_counter() - t))
    scores.sort(key=lambda s: -s.gain)
    return ref, base, scores


def plot(path: Path, scores: list[LayerScore], top: int, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from yolovino.quantize.report import save_png

    rows = scores[:top][::-1]
    fig, ax = plt.subplots(figsize=(9, 0.3 * len(rows) + 1.2))
    ax.barh([short_name(s.name) for s in rows], [s.gain * 100 for s in rows], color="tab:orange")
    ax.set_xlabel("mAP50-95 gain when this layer stays FP32 (points)")
    ax.set_title(title)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    save_png(fig, path)


def short_name(name: str) -> str:
    return name.replace("__module.", "").split("/")[0]


def run_sensitivity(a) -> dict:
    from yolovino.inference.core.fileio import write_json
    from yolovino.quantize.accuracy_control import Validator, validation_items
    from yolovino.quantize.calibration import ImageSource
    from yolovino.quantize.export import export_fp32, save_ir
    from yolovino.quantize.options import options_for
    from yolovino.quantize.ptq import quantize_ptq

    if a.imgsz is not None:
        check_imgsz(a.imgsz)
    check_out(a.out)
    check_positive(subset_size=a.subset_size, max_layers=a.max_layers)
    if a.keep_fp32 < 0 or a.top_k < 1 or a.val_images < 1:
        raise QuantizeError("--keep-fp32 must be >= 0, --top-k and --val-images >= 1")
    source = ImageSource.from_args(a.data if a.calib_images is None else None, a.calib_images, "train").check()
    task, nc, trained_imgsz = checkpoint_task(a.weights, a.task)
    val_data = a.val_data or a.data
    if val_data is None:
        raise QuantizeError("sensitivity needs labelled validation data: --val-data <dataset.yaml>")
    check_val_data(val_data, task, nc)
    from yolovino.quantize.calibration import load_dataset_yaml
    from yolovino.quantize.overlap import ImageSet, compare

    val_set = ImageSet.of(f"{val_data} (val)", load_dataset_yaml(val_data, "val").images)
    overlap = compare(ImageSet.of(source.origin, source.paths), val_set, allow=a.allow_overlap)
    if overlap.warning():
        log(overlap.warning() or "")
    name = a.name or a.weights.stem
    folder = Path(a.out) / name
    t0 = time.perf_counter()
    log(f"{name}: export + PTQ")
    fp32, meta = export_fp32(a.weights, a.imgsz or trained_imgsz)
    calib = source.tensors(meta.imgsz, meta.stride, limit=a.subset_size)
    options = options_for(task, a)
    int8 = quantize_ptq(fp32, meta, calib, options)
    items, gt = validation_items(meta, val_data, a.val_images)
    vfn = Validator(fp32, meta, gt)
    log(f"{name}: ranking quantized layers on {len(items)} validation images")
    ref, base, scores = rank_layers(fp32, int8, vfn, items, a.max_layers, progress=sys.stderr.isatty())
    result = {
        "name": name,
        "task": task,
        "weights": str(Path(a.weights).resolve()),
        "imgsz": list(meta.imgsz),
        "calibration": source.origin,
        "val_data": str(val_data),
        "val_images": len(items),
        "overlap": overlap.to_dict(),
        "metric": "task mAP50-95 (box/mask/keypoints) on the subset",
        "method": "all-but-one: each quantized conv restored to FP32 in the PTQ graph",
        "fp32_metric": ref,
        "int8_metric": base,
        "layers": [asdict(s) for s in scores],
    }
    print(f"{name} ({task}): FP32 {ref:.4f}  INT8 {base:.4f}  on {len(items)} images; {len(scores)} layers measured")
    print(f"calibration: {source.origin}; validation: {val_data} (val)")
    if overlap.warning():
        print(overlap.warning())
    print(f"{'rank':>4s}  {'gain (pts)':>10s}  {'mAP':>7s}  layer")
    for i, s in enumerate(scores[: a.top_k], 1):
        print(f"{i:4d}  {s.gain * 100:10.2f}  {s.metric:7.4f}  {short_name(s.name)}")
    if a.keep_fp32:
        keep = [s.name for s in scores[: a.keep_fp32]]
        log(f"{name}: INT8 with the top {len(keep)} layers in FP32")
        kept = quantize_ptq(fp32, meta, calib, options, extra_ignored=keep)
        xml = save_ir(kept, folder / f"int8-keep{len(keep)}", name)
        metric = float(vfn(ov.Core().compile_model(kept, "CPU"), items)[0])
        result["keep_fp32"] = {"k": len(keep), "layers": keep, "path": str(xml), "metric": metric}
        print(f"int8-keep{len(keep)}: {metric:.4f} (INT8 {base:.4f}, FP32 {ref:.4f}) -> {xml}")
    result["seconds"] = round(time.perf_counter() - t0, 1)
    write_json(folder / "sensitivity.json", result)
    plot(folder / "sensitivity.png", scores, max(a.top_k, 20), f"{name}: INT8 sensitivity ({len(items)} val images)")
    print(f"wrote {folder / 'sensitivity.json'} and sensitivity.png")
    return result
