"""What every event consumer is: the `EventConsumer` protocol, the `Delivery` it handles, and CONSUMERS, the
registry the hub builds consumers from: a key of the `events:` block (notify/config.py) -> its factory.

Adding a consumer is one module that defines it and its config class and registers both
(`@register_consumer("key", config=...)`); once that module is imported, `events: {key: ...}` is accepted and
validated by that class and the hub builds the consumer: there is no list of kinds to edit. The built-in
kinds are also fields of `EventOutputs`, so the JSON Schema documents them (CONTRIBUTING.md).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from yolovino.inference.core.events import Event


@dataclass
class Delivery:
    """What one frame sends to a consumer: its events, and the counts when they changed (None otherwise).
    With `clip` set it is no new events but the notice that this clip, holding `events`, is complete on
    disk: the worker calls the consumer's optional `clip_ready(source, clip, events)` instead of `handle`."""

    source: str
    events: list[Event]
    counts: dict | None = None
    image: np.ndarray | None = None  # the frame, only on the way to the snapshot writer
    clip: str | None = None


class EventConsumer(Protocol):
    """What a consumer implements; it may also have an `up` attribute (its own view of its health, e.g.
    connected to the broker), which the stats report together with the outcome of its last delivery."""

    name: str

    def handle(self, delivery: Delivery) -> None:
        """Send it (worker thread; may block, may raise: the queue in front absorbs both)."""
        ...

    def close(self) -> None: ...

    # optional: `clip_ready(self, source: str, path: str, events: list[Event]) -> None`, called on the
    # consumer's own worker thread once a clip of its events is complete under its final name `path`


class ClipMarker(Protocol):
    """One source's event clips, as the hub sees them (outputs/clips.py implements it).

    `mark` runs on the pipeline thread before the events are delivered: it sets `Event.clip` on those a
    clip will hold and returns at once; when a clip is complete the marker calls `on_ready(source, path,
    events)` (the hub's `clip_ready`, set by `EventHub.attach_clips`) from its own thread."""

    on_ready: Callable[[str, str, list[Event]], None] | None

    def mark(self, events: list[Event]) -> None: ...


@dataclass(frozen=True)
class ConsumerKind:
    """How to build one kind of consumer from its config (the value under its key in `events:`).

    config: the type that value is validated as (a pydantic model, or str for a path) when the key is not a
    built-in field of EventOutputs; dedup: sources whose configs give the same dedup key share one consumer
    (the same file, broker, URL)."""

    make: Callable[[Any], EventConsumer]
    dedup: Callable[[Any], Hashable]
    config: Any = None


CONSUMERS: dict[str, ConsumerKind] = {}


def register_consumer(key: str, config: Any = None, dedup: Callable[[Any], Hashable] = lambda cfg: cfg):
    """Class or factory decorator: register it as the consumer of `events: {key: <config>}`."""

    def register(make: Callable[[Any], EventConsumer]):
        CONSUMERS[key] = ConsumerKind(make, dedup, config)
        return make

    return register
