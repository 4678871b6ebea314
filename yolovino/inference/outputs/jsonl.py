"""Results as JSON lines, one object per frame; the `jsonl` output of a source (and the process-wide log)."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import TextIO

from yolovino.inference.outputs.base import Sink, SinkError


class JsonlSink(Sink):
    """One JSON object per frame: {source_id, frame_index, timestamp, pts, latency_ms, ...results.to_dict()}."""

    def __init__(self, path: str | os.PathLike, *, source_id: str | None = None, skip_empty: bool = False):
        self.path = Path(path)
        self.source_id = source_id
        self.skip_empty = skip_empty
        if self.path.is_dir():
            raise SinkError(f"{self.path}: is a directory; give a file name")
        try:
            self._fh: TextIO | None = open(self.path, "a", encoding="utf-8")
        except OSError as exc:
            raise SinkError(f"{self.path}: cannot write ({exc.strerror})") from None
        self.lines = 0
        self._lock = threading.Lock()

    def wants_pictures(self) -> bool:
        return False  # results and events only

    def write(self, fr) -> None:
        if self.skip_empty and not len(fr.results):
            return
        record = {
            "source_id": fr.frame.source_id,
            "frame_index": fr.frame.index,
            "timestamp": round(time.time(), 3),
            "pts": fr.frame.pts,
            "latency_ms": round(fr.latency_ms, 2),
            **fr.results.to_dict(),
        }
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            if self._fh is None:
                return
            self._fh.write(line)
            self._fh.flush()
            self.lines += 1

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
