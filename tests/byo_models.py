"""Custom ("bring your own") models for tests/test_custom_models.py: a 3-class dataset and tiny trainings.

The dataset relabels coco128 to person -> 0 "walker", car -> 1 "vehicle", dog -> 2 "pet" (other objects
dropped), so that nothing in the product can pass by assuming COCO's 80 names or ids. Training runs in a
child process (`python tests/byo_models.py train ...`): Ultralytics' trainer switches torch to
deterministic algorithms and reseeds globally, which must not leak into the rest of the test session.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

NAMES = {0: "walker", 1: "vehicle", 2: "pet"}
COCO_TO_CUSTOM = {0: 0, 2: 1, 16: 2}  # COCO person, car, dog
IMGSZ = 160


def make_dataset(coco128: Path, out: Path, images: int = 24) -> Path:
    """`out/data.yaml` with train = val = `images` coco128 images that hold a person, car or dog.

    Images with a car or a dog come first, so that all three classes have instances. train and val are the
    same images on purpose: a model trained for 2 epochs finds little on images it never saw, and the tests
    check that our validation scores the user's own classes, not a generalisation figure.
    """
    chosen: list[tuple[int, Path, list[str]]] = []
    for lab in sorted((coco128 / "labels" / "train2017").glob("*.txt")):
        rows = []
        for line in lab.read_text().splitlines():
            parts = line.split()
            if len(parts) == 5 and int(parts[0]) in COCO_TO_CUSTOM:
                rows.append(" ".join([str(COCO_TO_CUSTOM[int(parts[0])]), *parts[1:]]))
        if rows and (coco128 / "images" / "train2017" / f"{lab.stem}.jpg").is_file():
            rare = sum(not r.startswith("0 ") for r in rows)
            chosen.append((-rare, lab, rows))
    chosen.sort(key=lambda c: (c[0], c[1].name))
    for split in ("train", "val"):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for _, lab, rows in chosen[:images]:
            shutil.copy(coco128 / "images" / "train2017" / f"{lab.stem}.jpg", out / "images" / split)
            (out / "labels" / split / lab.name).write_text("\n".join(rows) + "\n")
    names = "".join(f"  {k}: {v}\n" for k, v in NAMES.items())
    yaml = out / "data.yaml"
    yaml.write_text(f"path: {out}\ntrain: images/train\nval: images/val\nnames:\n{names}")
    return yaml


FACE_NAMES = {0: "head"}
FACE_KPTS = 5  # nose, eyes, ears: the first 5 COCO keypoints


def make_face_dataset(coco_pose: Path, out: Path, images: int = 16) -> Path:
    """A custom pose dataset: coco-mini-pose train2017 cut down to 5 face keypoints (kpt_shape [5, 3]) and
    the class renamed "head"; train = val, as in make_dataset."""
    for split in ("train", "val"):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for lab in sorted((coco_pose / "labels" / "train2017").glob("*.txt"))[:images]:
            rows = [" ".join(line.split()[: 5 + 3 * FACE_KPTS]) for line in lab.read_text().splitlines() if line]
            shutil.copy(coco_pose / "images" / "train2017" / f"{lab.stem}.jpg", out / "images" / split)
            (out / "labels" / split / lab.name).write_text("\n".join(rows) + "\n")
    yaml = out / "data.yaml"
    yaml.write_text(
        f"path: {out}\ntrain: images/train\nval: images/val\nkpt_shape: [{FACE_KPTS}, 3]\n"
        "flip_idx: [0, 2, 1, 4, 3]\nnames:\n  0: head\n"
    )
    return yaml


def train(model: str, data: Path, project: Path, name: str, epochs: int = 2) -> Path:
    """Train `model` (a .pt to fine-tune or a model yaml to start from scratch) in a child process; the
    checkpoint's path. Offline, CPU, no AMP check, no plots (both would try to download)."""
    proc = subprocess.run(
        [sys.executable, __file__, "train", model, str(data), str(project), name, str(epochs)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    weights = project / name / "weights" / "last.pt"
    if proc.returncode != 0 or not weights.is_file():
        raise RuntimeError(f"training {model} failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    return weights


def _train_here(model: str, data: str, project: str, name: str, epochs: int) -> None:
    import os

    os.environ["YOLO_OFFLINE"] = "1"
    from ultralytics import YOLO

    YOLO(model).train(
        data=data,
        epochs=epochs,
        imgsz=IMGSZ,
        batch=8,
        device="cpu",
        workers=0,
        amp=False,
        plots=False,
        val=False,
        project=project,
        name=name,
        exist_ok=True,
        verbose=False,
    )


if __name__ == "__main__" and sys.argv[1:2] == ["train"]:
    _train_here(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
