"""Is the box doing its job? The answer behind GET /healthz, for an orchestrator's liveness/health probe.

Unhealthy (HTTP 503) when
  * a source that should be delivering has given no result for longer than its stall timeout (a frozen
    or lost camera, or a pipeline that stopped consuming it); a file that ended is not stalled;
  * inference stopped progressing: the oldest frame in an engine has waited longer than `infer_timeout`
    (a hung infer request is noticed by this timeout; nothing here waits on the request itself).
The JSON body lists each source's state and every problem found, so a person can read why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from yolovino.inference.core.redact import redact
from yolovino.inference.service.settings import DEFAULT_INFER_TIMEOUT, DEFAULT_STALL_TIMEOUT


class _Watched(Protocol):
    """What health reads of the metrics: (source, last result time, registered at, closed) per source."""

    def sources(self) -> list: ...


class _Engine(Protocol):
    def oldest_wait(self) -> float: ...


@dataclass
class HealthCheck:
    """Callable: () -> (healthy, detail). Thread-safe to the extent its inputs are (lock-free reads)."""

    metrics: _Watched
    engines: Callable[[], Iterable[_Engine]]
    infer_timeout: float = DEFAULT_INFER_TIMEOUT
    default_stall_timeout: float = DEFAULT_STALL_TIMEOUT
    stall_timeouts: dict[str, float] = field(default_factory=dict)  # by source id

    def __call__(self) -> tuple[bool, dict]:
        now = time.monotonic()
        problems: list[str] = []
        sources: dict[str, dict] = {}
        for src, last_at, registered_at, closed in self.metrics.sources():
            name = redact(src.id)
            state = src.stats.state
            timeout = self.stall_timeouts.get(src.id, self.default_stall_timeout)
            idle = now - (last_at if last_at is not None else registered_at)
            expected = not closed and state not in ("ended", "closed")
            stalled = expected and idle > timeout
            sources[name] = {"state": state, "seconds_since_result": round(idle, 1), "stalled": stalled}
            if stalled:
                problems.append(f"source {name}: no result for {idle:.1f} s (timeout {timeout:g} s, {state})")
        waits = [e.oldest_wait() for e in self.engines()]
        oldest = max(waits, default=0.0)
        if oldest > self.infer_timeout:
            problems.append(f"inference: a request has been pending {oldest:.1f} s (timeout {self.infer_timeout:g} s)")
        return not problems, {"problems": problems, "sources": sources, "oldest_infer_wait_s": round(oldest, 2)}
