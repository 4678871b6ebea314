"""A pipeline run on a background thread for the live-stream tests, and a plain RTSP reader for what it
publishes; no pytest here."""

from __future__ import annotations

import threading
import time

import av
import numpy as np
from waiting import wait_until

from yolovino.inference.core.results import FrameResult
from yolovino.inference.pipeline import Pipeline


class Runner:
    """Pipeline.run in a background thread, recording each result's arrival time (and, with keep=True,
    the FrameResults themselves)."""

    def __init__(self, pipe: Pipeline, keep: bool = False):
        self.pipe, self.stop = pipe, threading.Event()
        self.keep = keep
        self.times: list[float] = []
        self.results: list[FrameResult] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            for fr in self.pipe.run(self.stop):
                if self.keep:
                    self.results.append(fr)
                self.times.append(time.monotonic())
        except BaseException as exc:  # noqa: BLE001
            self.error = exc

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "pipeline did not stop"

    def wait_frames(self, n: int, timeout: float, after: float = 0.0) -> bool:
        return wait_until(lambda: sum(1 for t in self.times if t > after) >= n, timeout)


def read_frames(url: str, n: int, timeout: float = 20.0) -> list[np.ndarray]:
    """The first `n` frames a plain PyAV client decodes from an RTSP URL (TCP)."""
    out = []
    with av.open(
        url, options={"rtsp_transport": "tcp", "analyzeduration": "500000", "probesize": "65536"}, timeout=(timeout, 5)
    ) as c:
        for f in c.decode(video=0):
            out.append(f.to_ndarray(format="bgr24"))
            if len(out) >= n:
                break
    return out
