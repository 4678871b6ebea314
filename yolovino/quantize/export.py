"""Ultralytics .pt -> FP32 OpenVINO IR with our metadata in rt_info.

Exported with dynamic spatial axes, so anchors are computed from the input shape inside the graph, then
saved with a static imgsz shape: the runtime can reshape to any stride-multiple rectangle (rect input)
and still gets a static graph once compiled.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import openvino as ov

from yolovino.inference.model.ir import RT_INFO_KEY, ModelMeta
from yolovino.inference.postprocess import SUPPORTED
from yolovino.quantize.errors import QuantizeError


def load_yolo(pt: str | Path):
    """The Ultralytics model of a checkpoint, with a one-line error for anything that is not one."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    pt = Path(pt)
    if not pt.is_file():
        raise QuantizeError(f"{pt}: checkpoint not found")
    if pt.suffix != ".pt":
        raise QuantizeError(f"{pt}: expected an Ultralytics .pt checkpoint; {SUPPORTED}")
    from ultralytics import YOLO

    try:
        yolo = YOLO(str(pt))
    except Exception as exc:  # noqa: BLE001 - torch/pickle/zip errors come in many types
        detail = str(exc).splitlines()[0] if str(exc) else ""
        detail = detail if len(detail) <= 120 else detail[:117].rsplit(" ", 1)[0] + "..."
        raise QuantizeError(f"{pt}: not a loadable YOLO checkpoint ({type(exc).__name__}: {detail})") from None
    check_head(yolo, pt)
    return yolo


def check_head(yolo, pt: Path) -> None:
    """Refuse, before any export, a checkpoint whose outputs the runtime's decoders cannot read.

    The task alone is not enough: YOLO26 and YOLOv10 are "detect" models whose head also has a one-to-one
    (NMS-free, end-to-end) branch, and YOLO-World, YOLOE or RT-DETR put other heads behind the same task.
    Only the exact Detect/Segment/Pose heads of YOLOv8/YOLO11 (any size, any class count) pass.
    """
    from ultralytics.nn.modules.head import Detect, Pose, Segment

    if yolo.task not in ("detect", "segment", "pose"):
        raise QuantizeError(f"{pt}: task {yolo.task!r} is not supported; {SUPPORTED}")
    layers = getattr(yolo.model, "model", None)
    head = layers[-1] if layers is not None and len(layers) else None
    kind = type(head).__name__
    if getattr(head, "one2one_cv2", None) is not None or getattr(yolo.model, "end2end", False):
        raise QuantizeError(f"{pt}: end-to-end (NMS-free, one-to-one) {kind} head (YOLO26/YOLOv10); {SUPPORTED}")
    if type(head) not in (Detect, Segment, Pose):
        raise QuantizeError(f"{pt}: {kind} head is not supported; {SUPPORTED}")


def export_fp32(pt: str | Path, imgsz: int | tuple[int, int] = 640) -> tuple[ov.Model, ModelMeta]:
    """Export a checkpoint to an in-memory OpenVINO model with static imgsz input and metadata attached."""
    yolo = load_yolo(pt)
    hw: tuple[int, int] = (imgsz, imgsz) if isinstance(imgsz, int) else (int(imgsz[0]), int(imgsz[1]))
    if any(v % 32 for v in hw):
        raise QuantizeError(f"imgsz {hw} must be multiples of the stride 32")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / Path(pt).name
        shutil.copy(pt, src)  # Ultralytics writes its export beside the checkpoint
        from ultralytics import YOLO

        out = Path(YOLO(str(src)).export(format="openvino", imgsz=list(hw), dynamic=True, half=False, verbose=False))
        model = ov.Core().read_model(next(out.glob("*.xml")))
    model.reshape({model.inputs[0]: ov.PartialShape([1, 3, *hw])})
    for i, output in enumerate(model.outputs):
        output.get_tensor().set_names({f"output{i}"})
    inner = yolo.model
    kpt = getattr(inner, "kpt_shape", None) or (getattr(inner, "yaml", {}) or {}).get("kpt_shape")
    meta = ModelMeta(
        task=yolo.task,
        names={int(k): str(v) for k, v in yolo.names.items()},
        imgsz=hw,
        stride=int(max(inner.stride)),
        kpt_shape=tuple(kpt) if kpt else None,
        precision="fp32",
        source=Path(pt).name,
    )
    attach_meta(model, meta)
    return model, meta


def attach_meta(model: ov.Model, meta: ModelMeta) -> None:
    model.set_rt_info(meta.to_json(), RT_INFO_KEY)


def save_ir(model: ov.Model, folder: Path, name: str) -> Path:
    """Write <folder>/<name>.xml/.bin atomically: into a sibling temp folder, then one rename."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        ov.save_model(model, tmp / f"{name}.xml", compress_to_fp16=False)
        old = folder.with_name(f".{folder.name}-old")
        if folder.exists():
            shutil.rmtree(old, ignore_errors=True)
            folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder / f"{name}.xml"


def ir_size_mb(xml: Path) -> float:
    xml = Path(xml)
    return round((xml.stat().st_size + xml.with_suffix(".bin").stat().st_size) / 1e6, 2)


class StagedFolder:
    """Build a whole output folder beside its final place, then swap it in with renames.

    Until `commit()`, the previous folder is untouched; an exception or Ctrl-C leaves it as it was and
    removes the half-built staging folder. `commit()` is rename(old -> .old), rename(staging -> final),
    then delete .old: the final path always holds a complete build (old or new).
    """

    def __init__(self, final: Path):
        self.final = Path(final)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{self.final.name}-staging-", dir=self.final.parent))
        self.done = False

    def commit(self) -> Path:
        old = self.final.with_name(f".{self.final.name}-old")
        shutil.rmtree(old, ignore_errors=True)
        if self.final.exists():
            self.final.rename(old)
        for d in [self.path, *(p for p in self.path.rglob("*") if p.is_dir())]:
            d.chmod(0o755)  # mkdtemp makes 0700 folders; models are for everyone on the machine
        self.path.rename(self.final)
        shutil.rmtree(old, ignore_errors=True)
        self.done = True
        return self.final

    def __enter__(self) -> StagedFolder:
        return self

    def __exit__(self, *exc) -> None:
        if not self.done:
            shutil.rmtree(self.path, ignore_errors=True)
