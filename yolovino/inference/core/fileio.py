"""Files written atomically: a hidden temp file beside the target, renamed over it when complete.

A reader (or a crash, or a power cut) never sees a half-written file: either the old one or the new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def safe_name(text: str) -> str:
    """`text` as one file or folder name: letters, digits and -_. kept, anything else (slashes, spaces,
    colons of a URL) as "_", so a camera's name can never climb out of the folder it names."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temp path beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, data, indent: int | None = 2) -> Path:
    """JSON (values it cannot encode, such as paths, as their str)."""
    return write_text(path, json.dumps(data, indent=indent, default=str) + "\n")
