"""App-wide UI state shared by every browser tab: where models and samples live, the model cache, temp root.

`UIContext` is read-only after start (apart from its thread-safe caches). Problems the user can fix are
raised as `UserFacingError`, whose message the page shows as it is.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from yolovino.common.allow import AllowList
from yolovino.inference.core.config import InferenceConfig
from yolovino.inference.core.media import VIDEO_SUFFIXES, is_url
from yolovino.inference.core.redact import redact
from yolovino.ui.catalog import Catalog, ModelCache, discover


class UserFacingError(Exception):
    """A problem the user can fix; the message is shown in the page as it is."""


@dataclass
class UIContext:
    """App-wide settings shared by every session (read-only after start, except the thread-safe cache)."""

    models_dir: Path
    samples_dir: Path | None
    default_source: Path | None
    config: InferenceConfig
    tmp_root: Path
    max_file_bytes: int = 200 * 1024 * 1024
    allow: AllowList = field(default_factory=AllowList)  # network sources the page may open (empty: none)
    cache: ModelCache = field(default_factory=ModelCache)
    _catalog: tuple[tuple, Catalog] | None = field(default=None, init=False, repr=False)
    _catalog_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def catalog(self) -> Catalog:
        """The models found now; re-read only when a file under models_dir changed (cheap per webcam frame)."""
        key = _tree_signature(self.models_dir)
        with self._catalog_lock:
            if self._catalog is None or self._catalog[0] != key:
                self._catalog = (key, discover(self.models_dir))
            return self._catalog[1]

    def samples(self) -> list[str]:
        """File names of the bundled sample clips (videos and gifs), default clip first."""
        names: list[str] = []
        if self.samples_dir and self.samples_dir.is_dir():
            names = sorted(
                p.name for p in self.samples_dir.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
            )
        if self.default_source and self.default_source.name in names:
            names.remove(self.default_source.name)
            names.insert(0, self.default_source.name)
        elif self.default_source and self.default_source.is_file():
            names.insert(0, self.default_source.name)
        return names

    def resolve_source(self, text: str | None) -> str:
        """A source spec the pipeline opens: a URL as typed, or a bundled sample clip by its file name.

        Local paths other than the samples are refused: the page must not read arbitrary server files.
        """
        text = (text or "").strip()
        if not text:
            raise UserFacingError("Enter an RTSP/HTTP URL or pick a sample clip first.")
        if is_url(text):
            if not self.allow.allows(text):
                raise UserFacingError(
                    "This address is not on the operator's allow-list of stream sources "
                    + (
                        f"({self.allow.describe()})."
                        if self.allow
                        else "(none set: start the app with --allow-source)."
                    )
                )
            scheme = text.split("://", 1)[0]
            return scheme.lower() + text[len(scheme) :]  # the URL opened is the URL checked
        name = Path(text).name
        for folder in (self.samples_dir, self.default_source.parent if self.default_source else None):
            if folder and (folder / name).is_file():
                return str(folder / name)
        raise UserFacingError(
            f"Unknown source {redact(text)!r}: enter an rtsp://, http:// or https:// URL, "
            f"or pick one of the sample clips ({', '.join(self.samples()) or 'none found'})."
        )


def _tree_signature(models_dir: Path) -> tuple:
    """(path, mtime, size) of every file discovery looks at: models/<name>/<precision>/* and the reports."""
    try:
        files = [
            p
            for pattern in ("*/*/*.xml", "*/*/*.bin", "*/report.json", "*/report.png")
            for p in models_dir.glob(pattern)
        ]
        out = []
        for p in sorted(files):
            st = p.stat()
            out.append((str(p), st.st_mtime_ns, st.st_size))
        return tuple(out)
    except OSError:  # a folder changing while we look: treat as changed
        return (time.monotonic(),)
