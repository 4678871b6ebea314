"""What every event consumer is: the `EventConsumer` protocol, the `Delivery` it handles, and CONSUMERS, the
registry the hub builds consumers from: a key of the `events:` block (notify/config.py) -> its factory.

Adding a consumer is one module that defines it and registers it (`@register_consumer("key")`), a field of that key
in `EventOutputs`, and the module's import in notify/__init__.py; the hub has no list of kinds to edit.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from yolovino.inference.core.events import Event


@dataclass
class Delivery:
    """What one frame sends to a consumer: its events, and the counts when they changed (None otherwise)."""

    source: str
    events: list[Event]
    counts: dict | None = None
    image: np.ndarray | None = None  # the frame, only on the way to the snapshot writer


class EventConsumer(Protocol):
    name: str

    def handle(self, delivery: Delivery) -> None:
        """Send it (worker thread; may block, may raise: the queue in front absorbs both)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ConsumerKind:
    """How to build one kind of consumer from its config (the value under its key in `events:`).

    dedup: sources whose configs give the same dedup key share one consumer (the same file, broker, URL)."""

    make: Callable[[Any], EventConsumer]
    dedup: Callable[[Any], Hashable]


CONSUMERS: dict[str, ConsumerKind] = {}


def register_consumer(key: str, dedup: Callable[[Any], Hashable] = lambda cfg: cfg):
    """Class or factory decorator: register it as the consumer of `events: {key: ...}`."""

    def register(make: Callable[[Any], EventConsumer]):
        CONSUMERS[key] = ConsumerKind(make, dedup)
        return make

    return register
