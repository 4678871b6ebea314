"""No accuracy figure from calibration images: calibration and validation images compared by content.

An INT8 model scored on its own calibration images looks better than it is (issue 29: segment box +0.60 on
coco128-seg, whose train and val are the same 128 images, -0.75 on held-out images), and accuracy control,
watching the same images, has nothing to revert. So every command that calibrates and then scores
(`build`, `sensitivity`, the benches) and `validate` (against the calibration set its build recorded)
compares the two sets before anything expensive starts, and refuses an overlap unless `--allow-overlap`.

Images are compared by the SHA-256 of their file bytes, not by name: the same photo is stored under other
names and in other folders by different datasets (coco-mini-pose's val2017/000000000139.jpg is byte for byte
coco-val128's), and two different images can share a name (every dataset has its own `images/train2017/`).
A hash does not see a re-encoded copy: coco128-seg holds Ultralytics' re-encoded JPEGs of coco128's 128
photos, so those two sets hash as disjoint although they are the same pictures (see DATA.md); choose sets
from different COCO splits (train2017 vs val2017) rather than rely on the hash alone.

The build writes the hashes of its calibration images beside the model (`calibration.sha256`, one
`<sha256>  <path>` line each) and records their digest in report.json, so that a later `validate` can compare.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yolovino.quantize.errors import QuantizeError

HASHES_FILE = "calibration.sha256"
REPORT_FILE = "report.json"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class ImageSet:
    """A named set of images and the SHA-256 of each file's bytes (hash -> one path that has it)."""

    name: str
    hashes: dict[str, str]

    @classmethod
    def of(cls, name: str, paths: Iterable[Path]) -> ImageSet:
        hashes: dict[str, str] = {}
        for p in paths:
            try:
                hashes.setdefault(file_sha256(Path(p)), str(p))
            except OSError:  # unreadable files are skipped by calibration and validation alike
                continue
        return cls(name, hashes)

    @property
    def digest(self) -> str:
        """One SHA-256 over the sorted image hashes: equal digests = the same set of images."""
        return hashlib.sha256("\n".join(sorted(self.hashes)).encode()).hexdigest()

    def write(self, path: Path) -> None:
        """`<sha256>  <path>` per image (sha256sum's layout), the set's name on a first `#` line."""
        from yolovino.inference.core.fileio import write_bytes

        lines = [f"# {self.name}"] + [f"{h}  {p}" for h, p in sorted(self.hashes.items(), key=lambda x: x[1])]
        write_bytes(Path(path), ("\n".join(lines) + "\n").encode())

    @classmethod
    def read(cls, path: Path) -> ImageSet:
        name, hashes = str(path), {}
        for line in Path(path).read_text().splitlines():
            if line.startswith("# "):
                name = line[2:].strip()
            elif line.strip():
                h, _, p = line.partition("  ")
                hashes[h.strip()] = p.strip()
        return cls(name, hashes)


@dataclass(frozen=True)
class Overlap:
    """What calibration and validation share; `shared_images` > 0 only ever with --allow-overlap."""

    calibration: str
    validation: str
    calibration_images: int
    validation_images: int
    shared_images: int
    allowed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "calibration": self.calibration,
            "validation": self.validation,
            "calibration_images": self.calibration_images,
            "validation_images": self.validation_images,
            "shared_images": self.shared_images,
            "allowed": self.allowed,
            "compared_by": "SHA-256 of the image file bytes",
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Overlap:
        return cls(
            str(d.get("calibration", "")),
            str(d.get("validation", "")),
            int(d.get("calibration_images", 0)),
            int(d.get("validation_images", 0)),
            int(d.get("shared_images", 0)),
            bool(d.get("allowed", False)),
        )

    def warning(self) -> str | None:
        """The line every report shows beside the figures when they include calibration images."""
        if not self.shared_images:
            return None
        return (
            f"WARNING: {self.shared_images} of the {self.validation_images} validation images are calibration "
            f"images (--allow-overlap): the accuracy figures are partly measured on images the INT8 model was "
            f"calibrated on (calibration {self.calibration}, validation {self.validation})"
        )


def compare(calib: ImageSet, val: ImageSet, allow: bool = False) -> Overlap:
    """The overlap of two sets; a QuantizeError (one line, exit 2) when they share images and not `allow`."""
    shared = len(calib.hashes.keys() & val.hashes.keys())
    if shared and not allow:
        raise QuantizeError(
            f"calibration images {calib.name} and validation images {val.name} share {shared} of the "
            f"{len(val.hashes)} validation images (same SHA-256 of the file bytes): an accuracy figure on "
            "calibration images flatters INT8; validate on disjoint images, or pass --allow-overlap to measure "
            "anyway (every report then says so)"
        )
    return Overlap(calib.name, val.name, len(calib.hashes), len(val.hashes), shared, allowed=allow)


def recorded_calibration(model: Path) -> ImageSet | None:
    """The calibration set a build recorded for the IR `model` (its folder or .xml): `calibration.sha256`
    in the IR's folder or the build folder above it; None when no build recorded one (older builds,
    foreign IRs)."""
    model = Path(model)
    folder = model.parent if model.suffix == ".xml" else model
    for d in (folder, folder.parent):
        if (d / HASHES_FILE).is_file():
            return ImageSet.read(d / HASHES_FILE)
    return None
