"""No accuracy figure from calibration images: calibration and validation images compared by content.

An INT8 model scored on its own calibration images looks better than it is (issue 29: segment box +0.60 on
coco128-seg, whose train and val are the same 128 images, -0.75 on held-out images), and accuracy control,
watching the same images, has nothing to revert. So every command that calibrates and then scores
(`build`, `sensitivity`, the benches) and `validate` (against the calibration set its build recorded)
compares the two sets before anything expensive starts, and refuses an overlap unless `--allow-overlap`.

Images are compared by content, not by name: the same photo is stored under other names and in other
folders by different datasets (coco-mini-pose's val2017/000000000139.jpg is byte for byte coco-val128's), and
two different images can share a name (every dataset has its own `images/train2017/`). Two hashes per image:
- the SHA-256 of the file bytes: the same file, whatever its name;
- a 256-bit difference hash of the decoded picture (grayscale, 17x16 area-resized, sign of each horizontal
  step): a re-encoded copy. coco128-seg holds Ultralytics' re-encoded JPEGs of coco128's 128 photos, so no
  SHA-256 matches, but their difference hashes differ in at most 12 of 256 bits, while different COCO
  photos (coco128, coco128-seg, coco-val128, coco-mini-pose against each other) differ in 66 bits or more.
  Two images are the same picture at NEAR_BITS (24) or fewer.

The build writes both hashes of its calibration images beside the model (`calibration-images.txt`, one
`<sha256> <dhash>  <path>` line each) and records the set's digest in report.json, so that a later
`validate` can compare.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yolovino.quantize.errors import QuantizeError

HASHES_FILE = "calibration-images.txt"
NEAR_BITS = 24  # difference-hash bits (of 256) within which two images are the same picture


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def difference_hash(path: Path) -> str | None:
    """256-bit difference hash of the decoded picture as 64 hex digits; None when it does not decode."""
    import cv2
    import numpy as np

    try:
        gray = cv2.imread(str(path), cv2.IMREAD_REDUCED_GRAYSCALE_4)
    except cv2.error:
        return None
    if gray is None or not gray.size:
        return None
    small = cv2.resize(gray, (17, 16), interpolation=cv2.INTER_AREA).astype(np.int16)
    return np.packbits(small[:, 1:] > small[:, :-1]).tobytes().hex()


@dataclass(frozen=True)
class ImageSet:
    """A named set of images: SHA-256 of each file's bytes -> one path that has it, and -> its difference hash."""

    name: str
    hashes: dict[str, str]
    dhashes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, name: str, paths: Iterable[Path]) -> ImageSet:
        hashes: dict[str, str] = {}
        dhashes: dict[str, str] = {}
        for p in paths:
            try:
                sha = file_sha256(Path(p))
            except OSError:  # unreadable files are skipped by calibration and validation alike
                continue
            if sha in hashes:
                continue
            hashes[sha] = str(p)
            dh = difference_hash(Path(p))
            if dh is not None:
                dhashes[sha] = dh
        return cls(name, hashes, dhashes)

    @property
    def digest(self) -> str:
        """One SHA-256 over the sorted image hashes: equal digests = the same set of images."""
        return hashlib.sha256("\n".join(sorted(self.hashes)).encode()).hexdigest()

    def write(self, path: Path) -> None:
        """`<sha256> <dhash or ->  <path>` per image, the set's name on a first `#` line."""
        from yolovino.inference.core.fileio import write_bytes

        rows = sorted(self.hashes.items(), key=lambda x: x[1])
        lines = [f"# {self.name}"] + [f"{h} {self.dhashes.get(h, '-')}  {p}" for h, p in rows]
        write_bytes(Path(path), ("\n".join(lines) + "\n").encode())

    @classmethod
    def read(cls, path: Path) -> ImageSet:
        name, hashes, dhashes = str(path), {}, {}
        for line in Path(path).read_text().splitlines():
            if line.startswith("# "):
                name = line[2:].strip()
            elif line.strip():
                keys, _, p = line.partition("  ")
                sha, _, dh = keys.strip().partition(" ")
                hashes[sha] = p.strip()
                if dh and dh != "-":
                    dhashes[sha] = dh
        return cls(name, hashes, dhashes)

    def shared_with(self, other: ImageSet) -> int:
        """How many of `other`'s images are one of ours: the same bytes, or a difference hash within NEAR_BITS."""
        import numpy as np

        exact = other.hashes.keys() & self.hashes.keys()
        rest = [h for h in other.hashes if h not in exact and h in other.dhashes]
        if not rest or not self.dhashes:
            return len(exact)

        def bits(values: list[str]) -> np.ndarray:
            return np.unpackbits(np.frombuffer(bytes.fromhex("".join(values)), np.uint8).reshape(len(values), -1), 1)

        ours = bits(list(self.dhashes.values()))
        near = 0
        for i in range(0, len(rest), 256):  # (256 x ours x 256) booleans at a time
            theirs = bits([other.dhashes[h] for h in rest[i : i + 256]])
            near += int(((theirs[:, None, :] != ours[None, :, :]).sum(-1).min(1) <= NEAR_BITS).sum())
        return len(exact) + near


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
            "compared_by": f"SHA-256 of the file bytes, or a 256-bit difference hash within {NEAR_BITS} bits",
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
    shared = calib.shared_with(val)
    if shared and not allow:
        raise QuantizeError(
            f"calibration images {calib.name} and validation images {val.name} share {shared} of the "
            f"{len(val.hashes)} validation images (same file bytes or a re-encoded copy): an accuracy figure on "
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
