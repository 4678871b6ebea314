"""Video outputs by kind: each kind is a factory that, given one source's plan, opens its sink or says no.

    @register_output("thumbs")              # or register_output("thumbs", factory)
    def thumbs(req: OutputRequest) -> Sink | None:
        return ThumbSink(req.source_id) if req.plan.name == "door" else None

`service.supervisor.Supervisor` opens a source's outputs with `open_outputs`: every registered kind is asked
in registration order, so adding an output is one module with its `Sink` plus one registration (the
built-in kinds are registered in `outputs/__init__.py`); nothing else changes. A factory returns None when
the plan does not ask for its kind, and raises `SinkError` when it cannot open what was asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from yolovino.inference.outputs.base import Sink
from yolovino.inference.outputs.recording import Retention
from yolovino.inference.outputs.rtsp_server import RtspServer


class OutputPlan(Protocol):
    """What factories read of one source's plan (`service.supervisor.SourcePlan`)."""

    @property
    def key(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def output(self) -> str | None: ...
    @property
    def save(self) -> str | None: ...
    @property
    def jsonl(self) -> str | None: ...
    @property
    def record(self) -> Path | None: ...
    @property
    def record_url(self) -> str | None: ...
    @property
    def serve(self) -> bool: ...
    @property
    def analytics(self) -> Any: ...  # analytics.config.AnalyticsConfig | None (its events: clips)


class SharedOutputs(Protocol):
    """Process-wide output settings every source shares (`service.supervisor.Outputs`)."""

    @property
    def server(self) -> RtspServer | None: ...
    @property
    def segment_seconds(self) -> float: ...
    @property
    def retention(self) -> Retention | None: ...
    @property
    def record_mode(self) -> str: ...


@dataclass(frozen=True)
class OutputRequest:
    """One source's outputs to open: its plan, the shared settings, its id (sinks bind to it) and the
    frame rate to encode at (the source's, unless the settings fix one), and the source itself (its
    packet tap, for outputs that copy the camera's packets; None when a caller has no source object)."""

    plan: OutputPlan
    shared: SharedOutputs
    source_id: str
    fps: float
    source: Any = None


OutputFactory = Callable[[OutputRequest], Sink | None]

OUTPUTS: dict[str, OutputFactory] = {}  # kind -> factory, in registration order


def register_output(kind: str, factory: OutputFactory | None = None):
    """Register `factory` under `kind` (a name used in logs); as a decorator when `factory` is omitted.
    A kind already registered is refused: two plug-ins must not silently replace each other."""

    def add(f: OutputFactory) -> OutputFactory:
        if kind in OUTPUTS:
            raise ValueError(f"output kind {kind!r} is already registered")
        OUTPUTS[kind] = f
        return f

    return add if factory is None else add(factory)


def open_outputs(request: OutputRequest, opened: Callable[[Sink], object] = lambda sink: None) -> list[Sink]:
    """The sinks every registered kind opens for this source, in registration order. `opened` is called
    with each as soon as it is open, so that the caller can close them if a later one fails."""
    sinks: list[Sink] = []
    for factory in list(OUTPUTS.values()):
        sink = factory(request)
        if sink is not None:
            opened(sink)
            sinks.append(sink)
    return sinks
