"""Model files carried to the nodes through Ray's object store, so a node needs no copy of models/.

The driver reads the IR (.xml, .bin and an Ultralytics metadata.yaml if there is one) once; each node
writes it under its cache folder, named by the content's hash, and loads it from there. The same content
always lands in the same folder, so the node's compiled-model cache (OpenVINO CACHE_DIR) is reused
across restarts and cameras sharing a model share one engine.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from yolovino.inference.core.fileio import write_bytes
from yolovino.inference.model.devices import default_cache_dir


@dataclass(frozen=True)
class ModelBundle:
    """The files of one IR, by name, and their hash."""

    name: str  # the .xml file's name
    files: tuple[tuple[str, bytes], ...]
    digest: str

    @classmethod
    def read(cls, path: str | os.PathLike) -> ModelBundle:
        """An IR folder (exactly one .xml) or an .xml path, as YoloModel.load accepts."""
        path = Path(path)
        xml = path if path.suffix == ".xml" else next(iter(sorted(path.glob("*.xml"))), path / "missing.xml")
        if not xml.is_file() or not xml.with_suffix(".bin").is_file():
            raise ValueError(f"{path}: no OpenVINO IR (.xml and .bin) there")
        names = [xml, xml.with_suffix(".bin"), xml.parent / "metadata.yaml"]
        files = tuple((p.name, p.read_bytes()) for p in names if p.is_file())
        h = hashlib.sha256()
        for name, data in files:
            h.update(name.encode() + b"\0" + data)
        return cls(xml.name, files, h.hexdigest())

    def materialize(self, root: Path | None = None) -> Path:
        """The IR as files on this node (written once per content); returns the .xml path."""
        folder = (root or default_cache_dir() / "fleet-models") / self.digest[:16]
        for name, data in self.files:
            target = folder / name
            if not (target.is_file() and target.stat().st_size == len(data)):
                write_bytes(target, data)
        return folder / self.name
