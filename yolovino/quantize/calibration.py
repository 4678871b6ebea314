"""Calibration and validation data: Ultralytics dataset yamls or plain image folders -> model inputs.

The raw FP32 network that NNCF quantizes takes float NCHW RGB in [0, 1] at the model's square size. The
runtime graph (inference/model/ir.py) does letterbox -> RGB -> /255 in-graph on uint8 BGR frames. Calibration
must see exactly those tensors, so `preprocess` builds them on the host with the *same* Letterbox
geometry and the OpenCV reference letterbox (`Letterbox.numpy_letterbox`), followed by BGR->RGB, /255
and HWC->NCHW: identical math to the graph (bilinear half-pixel resize, constant 114 padding).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from yolovino.inference.core.geometry import Letterbox
from yolovino.quantize.errors import QuantizeError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class Dataset:
    """A resolved Ultralytics dataset: image files of one split and where their label files are."""

    yaml: Path
    split: str
    images: tuple[Path, ...]
    names: dict[int, str]
    kpt_shape: tuple[int, int] | None = None

    def label_path(self, image: Path) -> Path:
        return label_path(image)


def label_path(image: Path) -> Path:
    """Ultralytics convention: .../images/<split>/x.jpg -> .../labels/<split>/x.txt (last 'images' part)."""
    parts = list(image.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def load_dataset_yaml(path: str | Path, split: str = "val") -> Dataset:
    """Resolve a dataset yaml's split (dir, list of dirs or .txt list) to image paths; one-line errors."""
    import yaml as pyyaml

    path = Path(path)
    if not path.is_file():
        raise QuantizeError(f"{path}: dataset yaml not found")
    try:
        data = pyyaml.safe_load(path.read_text())
    except (pyyaml.YAMLError, UnicodeDecodeError) as exc:
        raise QuantizeError(f"{path}: not a readable yaml ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(data, dict) or "names" not in data:
        raise QuantizeError(f"{path}: not an Ultralytics dataset yaml (needs 'names' and '{split}')")
    if split not in data or not data[split]:
        split = "val" if split != "val" and data.get("val") else "train"
        if not data.get(split):
            raise QuantizeError(f"{path}: no 'train' or 'val' split")
    path = path.resolve()
    root = Path(data.get("path") or path.parent)
    if not root.is_absolute():
        root = (path.parent / root).resolve()
    entries = data[split] if isinstance(data[split], list) else [data[split]]
    images: list[Path] = []
    for entry in entries:
        p = Path(entry)
        p = p if p.is_absolute() else root / p
        if p.is_dir():
            images += list_images(p)
        elif p.is_file() and p.suffix == ".txt":
            for line in p.read_text().splitlines():
                if line.strip():
                    q = Path(line.strip())
                    images.append(q if q.is_absolute() else (p.parent / q).resolve())
        else:
            raise QuantizeError(f"{path}: {split} path {p} does not exist")
    if not images:
        raise QuantizeError(f"{path}: the {split} split has no images")
    names = data["names"]
    names = dict(enumerate(names)) if isinstance(names, list) else {int(k): str(v) for k, v in names.items()}
    kpt = data.get("kpt_shape")
    return Dataset(path, split, tuple(images), names, tuple(kpt) if kpt else None)


def read_image(path: Path) -> np.ndarray | None:
    try:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    except cv2.error:
        return None
    return img if img is not None and img.size else None


def preprocess(frame: np.ndarray, imgsz: tuple[int, int], stride: int = 32) -> tuple[np.ndarray, Letterbox]:
    """uint8 BGR frame -> float32 (1, 3, H, W) RGB/255 letterboxed exactly like the runtime graph (rect=False)."""
    lb = Letterbox.fit(frame.shape[:2], imgsz, stride, rect=False)
    img = lb.numpy_letterbox(frame)
    x = img[..., ::-1].transpose(2, 0, 1)[None].astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray(x), lb


class ImageSource:
    """Images for calibration: a dataset yaml split or a folder (recursive); unreadable files are skipped."""

    def __init__(self, paths: list[Path], origin: str):
        self.paths = paths
        self.origin = origin
        self.skipped = 0

    @classmethod
    def from_args(
        cls, data: str | Path | None = None, images: str | Path | None = None, split: str = "train"
    ) -> ImageSource:
        if images is not None:
            folder = Path(images)
            if not folder.is_dir():
                raise QuantizeError(f"{folder}: calibration image folder not found")
            paths = list_images(folder)
            if not paths:
                raise QuantizeError(f"{folder}: no images (jpg/png/bmp/webp) found")
            return cls(paths, str(folder))
        if data is None:
            raise QuantizeError("calibration data needed: --data <yaml> or --calib-images <folder>")
        ds = load_dataset_yaml(data, split)
        return cls(list(ds.images), f"{data} ({ds.split})")

    def check(self) -> ImageSource:
        """Fail fast (before export/quantization) when no image decodes (stops at the first good one)."""
        if next(iter(self.frames(1)), None) is None:
            raise QuantizeError(f"{self.origin}: none of the {len(self.paths)} images could be read")
        self.skipped = 0
        return self

    def frames(self, limit: int | None = None):
        """Yield readable BGR frames (up to limit); counts unreadable files in .skipped."""
        n = 0
        for p in self.paths:
            if limit is not None and n >= limit:
                return
            img = read_image(p)
            if img is None:
                self.skipped += 1
                continue
            n += 1
            yield img

    def tensors(self, imgsz: tuple[int, int], stride: int, limit: int | None = None) -> list[np.ndarray]:
        """Preprocessed calibration inputs held in memory (a few hundred 640x640 images is ~1.5 MB each)."""
        out = [preprocess(f, imgsz, stride)[0] for f in self.frames(limit)]
        if not out:
            raise QuantizeError(f"{self.origin}: none of the {len(self.paths)} images could be read")
        return out
