"""Where events go: an events JSON-lines file, a webhook, MQTT (inference/notify/mqtt.py), JPEG snapshots.

The pipeline thread only ever calls `EventHub.publish()`, which puts the frame's events on a bounded queue
per consumer and returns (`put_nowait`): a slow or dead consumer (a broker down, a webhook that never
answers, a full disk) never blocks or slows the video. Each consumer drains its queue on its own thread;
when a queue is full the newest events are dropped and counted, and logged once per outage, as are a
consumer's failures ("webhook down ... / restored after N s").

Consumers implement `EventConsumer` (notify/base.py: a name, `handle(delivery)` on the worker thread,
`close()`), and optionally `source_removed(source)` (the source left the config: a live reload; MQTT removes
its Home Assistant entities), called on the same worker thread in order with the deliveries; the hub builds
them through the CONSUMERS registry from the `events:` outputs of a source's analytics config
(notify/config.py). Sources that name the same output (the same file, broker or URL) share one consumer.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from yolovino.inference.core.errors import ConfigError
from yolovino.inference.core.events import Event, FrameAnalytics
from yolovino.inference.core.fileio import safe_name, write_bytes
from yolovino.inference.core.redact import one_line, redact
from yolovino.inference.core.results import Frame
from yolovino.inference.notify.base import CONSUMERS, ClipMarker, Delivery, EventConsumer, register_consumer
from yolovino.inference.notify.config import EventOutputs, SnapshotOutput, WebhookOutput
from yolovino.inference.notify.payload import SnapshotEmbedder, clip_message, event_message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Call:
    """An optional method of the consumer to call on its worker thread, in order with its deliveries."""

    method: str
    args: tuple


class QueuedConsumer:
    """A bounded queue and a worker thread in front of one consumer; counts what it sent, dropped, failed."""

    def __init__(self, consumer: EventConsumer, size: int = 1000):
        self.consumer = consumer
        self.name = consumer.name
        self.queue: queue.Queue[Delivery | _Call | None] = queue.Queue(maxsize=max(1, size))
        self.sent = self.dropped = self.failed = 0
        self.up = True
        self._dropping = False
        self._down_since: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"events-{self.name}", daemon=True)
        self._thread.start()

    def offer(self, delivery: Delivery) -> None:
        """Never blocks: a full queue drops this delivery's events (counted, logged once per outage)."""
        try:
            self.queue.put_nowait(delivery)
        except queue.Full:
            self.dropped += len(delivery.events) if delivery.clip is None else 0  # a notice is no new event
            if not self._dropping:
                self._dropping = True
                log.warning(
                    "events to %s: queue full (%d), dropping new events until it catches up",
                    self.name,
                    self.queue.maxsize,
                )

    def call(self, method: str, *args, timeout: float = 5.0) -> bool:
        """Queue a call of the consumer's optional `method(*args)` behind what is queued (a no-op for a
        consumer without it); waits up to `timeout` for room. False when it could not be queued."""
        if not callable(getattr(self.consumer, method, None)):
            return True
        try:
            self.queue.put(_Call(method, args), timeout=timeout)
            return True
        except queue.Full:
            log.warning("events to %s: queue full, %s not sent", self.name, method)
            return False

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if isinstance(item, _Call):
                try:
                    getattr(self.consumer, item.method)(*item.args)
                except Exception as exc:  # noqa: BLE001 - as a delivery's failure: the worker goes on
                    log.warning("events to %s: %s failed (%s)", self.name, item.method, one_line(exc))
                continue
            try:
                if item.clip is not None:
                    self.consumer.clip_ready(item.source, item.clip, item.events)  # type: ignore[attr-defined]
                    continue  # a notice about events already counted, not new ones
                self.consumer.handle(item)
            except Exception as exc:  # noqa: BLE001 - a consumer's failure must never end the worker
                self.failed += len(item.events) if item.clip is None else 0
                if self.up:
                    self.up, self._down_since = False, time.monotonic()
                    log.warning("events to %s failing (%s); events are dropped until it is back", self.name, exc)
                continue
            self.sent += len(item.events)
            if not self.up:
                self.up = True
                down = time.monotonic() - (self._down_since or time.monotonic())
                log.info("events to %s restored after %.1f s (%d failed meanwhile)", self.name, down, self.failed)
            if self._dropping and self.queue.qsize() < self.queue.maxsize // 2:
                self._dropping = False
                log.info("events to %s caught up (%d dropped so far)", self.name, self.dropped)

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (for at most `timeout` s), then close the consumer."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.queue.put(None, timeout=0.1)
                break
            except queue.Full:
                if time.monotonic() > deadline:
                    break
        self._thread.join(max(deadline - time.monotonic(), 0.1))
        if self._thread.is_alive():
            log.warning("events to %s: %d deliveries not sent at close", self.name, self.queue.qsize())
        self.consumer.close()

    def stats(self) -> dict:
        return {
            "sent": self.sent,
            "dropped": self.dropped,
            "failed": self.failed,
            "up": self.up and bool(getattr(self.consumer, "up", True)),  # a consumer may know better (MQTT)
            "queued": self.queue.qsize(),
        }


@register_consumer("jsonl", dedup=os.path.abspath)
class JsonlEventConsumer:
    """One JSON object per event (not per frame), appended to a file and flushed per delivery."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.name = f"jsonl:{self.path.name}"
        if self.path.is_dir() or not self.path.parent.is_dir():
            raise ConfigError(f"{self.path}: events file needs an existing folder and a file name")
        try:
            self._fh = open(self.path, "a", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot write ({exc.strerror})") from None

    def handle(self, delivery: Delivery) -> None:
        if delivery.events:
            self._fh.write("".join(json.dumps(e.to_dict(), separators=(",", ":")) + "\n" for e in delivery.events))
            self._fh.flush()

    def close(self) -> None:
        self._fh.close()


@register_consumer("webhook")
class WebhookConsumer:
    """HTTP POST of each event as JSON; retries with exponential backoff on errors, 5xx, 429 and timeouts.

    An event that still fails after `retries` retries is given up (counted as failed); 4xx answers other
    than 429 are not retried (the receiver refuses it: retrying cannot help)."""

    def __init__(self, cfg: WebhookOutput, stop: threading.Event | None = None):
        self.cfg = cfg
        self.name = f"webhook:{redact(cfg.url).split('?')[0]}"  # no credentials in logs or metric labels
        self._stop = stop or threading.Event()
        self.embedder = SnapshotEmbedder(cfg.embed_max_kb * 1024) if cfg.embed_snapshot else None

    MAX_ANSWER_BYTES = 64 * 1024  # of the receiver's answer body: its status is what counts

    def _post(self, body: bytes) -> None:
        """POST one event; read at most MAX_ANSWER_BYTES of the answer, for at most timeout_s in all.

        The answer's body means nothing to us, but reading it whole let a receiver that answers with a
        huge or endless body fill memory (timeout_s bounds each socket read, not the total)."""
        req = urllib.request.Request(self.cfg.url, body, {"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=self.cfg.timeout_s) as resp:
            deadline = time.monotonic() + self.cfg.timeout_s
            left = self.MAX_ANSWER_BYTES
            while left > 0 and time.monotonic() < deadline:
                chunk = resp.read1(min(left, 16384))
                if not chunk:
                    break
                left -= len(chunk)

    def handle(self, delivery: Delivery) -> None:
        """POST each event's message (notify/payload.py: its snapshot and clip, the snapshot embedded on request)."""
        for event in delivery.events:
            self._send(json.dumps(event_message(event, self.embedder)).encode())

    def clip_ready(self, source: str, path: str, events: list[Event]) -> None:
        """A clip is complete on disk: POST the follow-up {"type": "clip_ready", ...} (worker thread)."""
        self._send(json.dumps(clip_message(source, path, events)).encode())

    def _send(self, body: bytes) -> None:
        """POST with the retries and backoff of the class docstring; raises when it gives up."""
        delay = self.cfg.backoff_s
        for attempt in range(self.cfg.retries + 1):
            try:
                self._post(body)
                break
            except urllib.error.HTTPError as exc:
                if 400 <= exc.code < 500 and exc.code != 429:
                    raise RuntimeError(f"HTTP {exc.code} (not retried)") from None
                if attempt == self.cfg.retries:
                    raise RuntimeError(f"HTTP {exc.code} after {attempt + 1} tries") from None
            except (OSError, TimeoutError) as exc:  # refused, reset, timed out
                if attempt == self.cfg.retries:
                    why = f"{type(exc).__name__}: {one_line(exc, self.cfg.url)}"
                    raise RuntimeError(f"{why} after {attempt + 1} tries") from None
            if self._stop.wait(delay):
                raise RuntimeError("closing")
            delay = min(delay * 2, self.cfg.max_backoff_s)

    def close(self) -> None:
        self._stop.set()


def write_snapshot(cfg: SnapshotOutput, source: str, image: np.ndarray, events: list[Event]) -> str:
    """The frame as JPEG with the events' boxes drawn, written atomically; returns its path."""
    import cv2

    folder = Path(cfg.dir) / safe_name(source)
    folder.mkdir(parents=True, exist_ok=True)
    first = events[0]
    path = folder / f"{first.frame_index:07d}-{first.kind.value}-{first.track_id}.jpg"
    img = image.copy()
    for e in events:
        x1, y1, x2, y2 = (int(v) for v in e.box)
        cv2.rectangle(img, (x1, y1), (x2, y2), (0, 0, 255), 2)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, cfg.quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    write_bytes(path, buf.tobytes())
    return str(path)


class _SnapshotQueue(QueuedConsumer):
    """The snapshot stage's queue: its counts say how many snapshots were written, not deliveries passed on."""

    consumer: _SnapshotStage

    def stats(self) -> dict:
        out = super().stats()
        stage = self.consumer
        out["sent"] = max(out["sent"] - stage.not_written, 0)
        out["failed"] += stage.not_written
        return out


class _SnapshotStage:
    """Writes the JPEG of frames whose events want one, then hands the delivery on (order kept per source).

    A snapshot that cannot be written (an unwritable or full folder) costs the events nothing: they go on
    without one. The stage then reports down and counts those events as failed, not sent, and logs the
    first failure of an outage and the recovery (one line each, not one per snapshot)."""

    def __init__(self, cfg: SnapshotOutput, forward, size: int):
        self.cfg, self.forward = cfg, forward
        self.name = f"snapshots:{cfg.dir}"
        self.up = True
        self.not_written = 0  # events whose snapshot failed
        self._down_since = 0.0
        self.queue = _SnapshotQueue(self, size)

    def handle(self, item: Delivery) -> None:
        image = item.image
        wanted = [e for e in item.events if e.kind in self.cfg.kinds]
        if wanted and image is not None:
            try:
                path = write_snapshot(self.cfg, item.source, image, wanted)
                for e in wanted:
                    e.snapshot = path
                if not self.up:
                    self.up = True
                    log.info(
                        "snapshots to %s restored after %.1f s (%d events went without one)",
                        self.cfg.dir,
                        time.monotonic() - self._down_since,
                        self.not_written,
                    )
            except (OSError, RuntimeError) as exc:
                self.not_written += len(item.events)
                if self.up:
                    self.up, self._down_since = False, time.monotonic()
                    log.warning(
                        "snapshots to %s failing (%s); events go on without one until it works again",
                        self.cfg.dir,
                        one_line(exc),
                    )
        self.forward(Delivery(item.source, item.events, item.counts))

    def close(self) -> None:
        pass


class EventHub:
    """Routes each source's events to its consumers through their queues (see the module docstring)."""

    def __init__(self) -> None:
        self.consumers: dict[tuple, QueuedConsumer] = {}
        self._routes: dict[str, list[QueuedConsumer]] = {}
        self._outputs: dict[str, EventOutputs] = {}
        self._snapshots: dict[str, _SnapshotStage] = {}
        self._clips: dict[str, ClipMarker] = {}
        self._layout: dict[str, tuple] = {}  # per source, the zones and lines of the last counts sent

    @classmethod
    def build(cls, outputs: dict[str, EventOutputs]) -> EventHub:
        """One hub for several sources (source id -> its `events:` outputs); shared outputs share a consumer."""
        hub = cls()
        try:
            for source, out in outputs.items():
                hub.add_source(source, out)
        except BaseException:
            hub.close()
            raise
        return hub

    def add_source(self, source: str, out: EventOutputs) -> None:
        routes = []
        for key, make in _consumers_for(out):
            if key not in self.consumers:
                self.consumers[key] = QueuedConsumer(make(), out.queue_size)
            routes.append(self.consumers[key])
        for dropped in [c for c in self._routes.get(source, ()) if c not in routes]:  # a reload took it away
            dropped.call("source_removed", source)
        self._routes[source] = routes
        self._outputs[source] = out
        self._layout.pop(source, None)  # a (re)configured source sends its counts with its first frame
        old = self._snapshots.pop(source, None)
        if old is not None:  # a restarted source: the old stage's queue goes out first
            old.queue.close()
        if out.snapshots is not None:
            self._snapshots[source] = _SnapshotStage(out.snapshots, self._fan_out, out.queue_size)

    def attach_clips(self, source: str, clips: ClipMarker | None) -> None:
        """Event clips of `source` (outputs/clips.py): `publish` lets them mark its events, and they report
        each complete clip to `clip_ready`. None detaches (the source stopped)."""
        if clips is None:
            self._clips.pop(source, None)
            return
        clips.on_ready = self.clip_ready
        self._clips[source] = clips

    def clip_ready(self, source: str, path: str, events: list[Event]) -> None:
        """A clip of `source` is complete under its final name: each of the source's consumers that defines
        `clip_ready` is told on its own worker thread, behind the events it already queued (any thread;
        never blocks)."""
        for consumer in self._routes.get(source, ()):
            if callable(getattr(consumer.consumer, "clip_ready", None)):
                consumer.offer(Delivery(source, list(events), clip=path))

    def remove_source(self, source: str) -> None:
        """The source left the config (a live reload): what it queued goes out, then each of its consumers
        that has `source_removed` is told (MQTT removes its Home Assistant entities); others stay open."""
        stage = self._snapshots.pop(source, None)
        if stage is not None:
            stage.queue.close()
        for consumer in self._routes.pop(source, ()):
            consumer.call("source_removed", source)
        self._outputs.pop(source, None)
        self._layout.pop(source, None)

    def _fan_out(self, delivery: Delivery) -> None:
        for consumer in self._routes.get(delivery.source, ()):
            consumer.offer(delivery)

    def publish(self, source: str, info: FrameAnalytics | None, image: np.ndarray | Frame | None) -> None:
        """Called by the analytics stage for every frame; returns at once. `image`: the frame's picture for
        snapshots (a Frame is converted to BGR only when a snapshot of an event needs it)."""
        out = self._outputs.get(source)
        if out is None or info is None:
            return
        events = [e for e in info.events if e.kind in out.kinds]
        clips = self._clips.get(source)
        if clips is not None and events:
            clips.mark(events)  # sets Event.clip before any consumer sees the event
        # counts come with a processed frame (its scene); the final events of a closed source carry none. They
        # are sent when a zone or line event changed them, and when the zones and lines changed (the first
        # frame, the UI's editor): what Home Assistant discovery follows (notify/discovery.py)
        layout = tuple((c.kind, c.name) for c in info.counts)
        has_counts = info.scene is not None or bool(info.counts)
        changed = any(e.zone or e.line for e in info.events) or self._layout.get(source) != layout
        regional = has_counts and changed
        if not events and not regional:
            return
        if regional:
            self._layout[source] = layout
        delivery = Delivery(source, events, info.counts_dict() if regional else None)
        snap = self._snapshots.get(source)
        if snap is not None and events:
            snap.queue.offer(replace(delivery, image=image.image if isinstance(image, Frame) else image))
        else:
            self._fan_out(delivery)

    def stats(self) -> dict[str, dict]:
        out = {c.name: c.stats() for c in self.consumers.values()}
        out.update({s.name: s.queue.stats() for s in self._snapshots.values()})
        return out

    def close(self, timeout: float = 5.0) -> None:
        """Close the snapshot stages, then the consumers, each group at once (a thread each): N broken
        webhooks cost `timeout` at stop, not N times it."""
        for group in ([s.queue for s in self._snapshots.values()], list(self.consumers.values())):
            closing = [threading.Thread(target=q.close, args=(timeout,), name=f"close-{q.name}") for q in group]
            for t in closing:
                t.start()
            for t in closing:
                t.join()
        self._snapshots.clear()
        self.consumers.clear()


def _consumers_for(out: EventOutputs):
    """(dedup key, factory) of each consumer an `events:` block asks for, by the CONSUMERS registry."""
    for key, kind in CONSUMERS.items():
        cfg = out.config_of(key)
        if cfg is not None:
            yield (key, kind.dedup(cfg)), (lambda kind=kind, cfg=cfg: kind.make(cfg))
