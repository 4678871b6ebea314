"""One camera host per node: the headless mode's Supervisor running the cameras placed on that node.

The controller (fleet/live.py) makes one `CameraHost` Ray actor per node, pinned to it, and sends it the
full set of plans that node should run (`assign`). The Supervisor (inference/service/supervisor.py) starts what is
new and leaves every other camera untouched (same source, same reader, same outputs): cameras moved here
from a dead node join without disturbing the ones already running. Cameras sharing a model share one lane:
one compiled model and one pipeline thread per node, not one model per camera.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from yolovino.inference.core.redact import redact
from yolovino.inference.core.results import FrameResult
from yolovino.inference.service.metrics import Metrics
from yolovino.inference.service.plan import with_recording
from yolovino.inference.service.settings import RecordSettings
from yolovino.inference.service.supervisor import Outputs, RunOptions, SourcePlan, Supervisor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostSettings:
    """What every node's outputs share (from the same command line and YAML as the headless mode)."""

    annotate: bool = True
    output_fps: float | None = None
    max_retries: int | None = None
    wait_for_sources: bool = True
    record: RecordSettings | None = None  # the same `record:` as one box's

    def outputs(self) -> Outputs:
        return with_recording(Outputs(output_fps=self.output_fps, annotate=self.annotate), self.record)

    def run_options(self) -> RunOptions:
        return RunOptions(wait_for_sources=self.wait_for_sources, max_retries=self.max_retries)


class _Frames:
    """Results out per source id: count and wall-clock time of the last one (called from the lanes)."""

    def __init__(self) -> None:
        self.count: dict[str, int] = {}
        self.last: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, fr: FrameResult) -> None:
        with self._lock:
            self.count[fr.source_id] = self.count.get(fr.source_id, 0) + 1
            self.last[fr.source_id] = time.time()


class CameraHost:
    """Runs the cameras the controller assigns to this node (wrapped as a Ray actor by fleet/live.py)."""

    def __init__(self, settings: HostSettings):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.frames = _Frames()
        self.metrics = Metrics()
        self.sup = Supervisor(self.metrics, settings.outputs(), self.frames, settings.run_options())
        self.local_models: dict[str, Path] = {}  # the driver's model path -> this node's copy
        self.started = time.time()

    def where(self) -> dict:
        import ray

        return {"node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(), "pid": os.getpid()}

    def assign(self, plans: list[SourcePlan], bundles: dict[str, Any]) -> dict[str, list[str]]:
        """Run exactly these cameras here (others stop); a camera that cannot start is reported as failed
        and the rest go on. `bundles`: every plan's model files (ModelBundle or its object ref), by the
        driver's path of the model."""
        import ray

        for path, bundle in bundles.items():
            if path not in self.local_models:  # bundles come as object refs: fetched once per node and model
                self.local_models[path] = (
                    ray.get(bundle) if isinstance(bundle, ray.ObjectRef) else bundle
                ).materialize()
        local = [replace(p, model=self.local_models[str(p.model)]) for p in plans]
        result = self.sup.apply(local)
        log.info("cameras here: %s", ", ".join(redact(p.key) for p in plans) or "none")
        return result

    def status(self) -> list[dict]:
        """Per camera running here: key, state, frames, FPS, last frame time (epoch s), reconnects, error."""
        snap = self.metrics.snapshot()
        out = []
        for key, r in list(self.sup.running.items()):
            src = r.source
            m = snap.get(redact(src.id), {})
            out.append(
                {
                    "key": key,
                    "source_id": src.id,
                    "state": src.stats.state,
                    "frames": self.frames.count.get(src.id, 0),
                    "fps": round(float(m.get("fps", 0.0)), 2),
                    "last_frame": self.frames.last.get(src.id),
                    "reconnects": src.stats.reconnects,
                    "error": str(src.error) if src.error is not None else None,
                }
            )
        return out

    def close(self) -> bool:
        """Stop every camera; outputs finalised (mp4 renamed into place, JSON lines closed)."""
        self.sup.close()
        return True
