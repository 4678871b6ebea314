"""Events to an MQTT broker with paho-mqtt: one topic per source, retained counts, QoS 1, reconnect with backoff.

Topics (`topic` defaults to "yolo"; the source name is made topic-safe):
    <topic>/<source>/events   one JSON message per event (QoS from the config, 1 by default), with its
                              snapshot's and clip's paths, the snapshot embedded on request (notify/payload.py)
    <topic>/<source>/clips    a follow-up per clip once it is complete on disk: {"type": "clip_ready", ...}
    <topic>/<source>/counts   retained: the zone and line counts after the last change (late subscribers
                              get the current state at once):
                              {"zones": {<zone>: {"occupancy": {<class>: n}, "entries": {..}, "exits": {..}}},
                               "lines": {<line>: {"in": {<class>: n}, "out": {..}}}, "tracks_active": n}
    <topic>/status            retained "online"; the broker publishes "offline" (last will) if we vanish
    <topic>/<source>/availability  with `discovery: true`: retained "online", "offline" at a clean shutdown
    <topic>/<source>/snapshot with `discovery: true`: retained, the JPEG bytes of the last event's snapshot
    <prefix>/.../config       with `discovery: true`: Home Assistant discovery (notify/discovery.py)

paho's network loop runs on its own thread and reconnects by itself (1 s, doubling to 10 s). A broker
that is down at start or goes away mid-run costs the video nothing: `handle` (on the consumer's worker
thread) waits for the connection, so events made meanwhile wait in the consumer's bounded queue (hub.py)
and go out after the reconnect, in order; beyond that bound they are dropped and counted. They count as
sent only once handed to a connected client (QoS 1 with a persistent session, so messages in flight when
the link broke are sent again; paho's own queue, bounded by `max_queue`, holds only those). The sink is
`up` only while connected, and an outage is logged once: not reachable / lost, then (re)connected.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import threading

from yolovino.inference.core.errors import ConfigError
from yolovino.inference.core.events import Event
from yolovino.inference.notify.base import register_consumer
from yolovino.inference.notify.config import MqttOutput
from yolovino.inference.notify.discovery import Discovery
from yolovino.inference.notify.payload import SnapshotEmbedder, clip_message, dumps, event_message

log = logging.getLogger(__name__)


def topic_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "source"


@register_consumer("mqtt")
class MqttConsumer:
    def __init__(self, cfg: MqttOutput):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.cfg = cfg
        self.name = f"mqtt:{cfg.host}:{cfg.port}"
        self.dropped = 0
        self.connected = threading.Event()
        self._closing = threading.Event()  # set by close(): a handle() waiting for the broker gives up
        self._ever = False
        self._outage_said = False  # the current outage has been logged (one line per outage)
        self.connect_failures = 0  # attempts paho's loop made that did not connect
        self._mqtt = mqtt
        client_id = cfg.client_id or f"yolo-analytics-{topic_safe(socket.gethostname())}-{os.getpid()}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        if cfg.username:
            password = os.environ.get(cfg.password_env) if cfg.password_env else None
            if cfg.password_env and password is None:
                raise ConfigError(f"MQTT password: environment variable {cfg.password_env} is not set")
            self.client.username_pw_set(cfg.username, password)
        self.client.max_queued_messages_set(cfg.max_queue)
        self.client.reconnect_delay_set(1, 10)
        self.client.will_set(f"{cfg.topic}/status", "offline", qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail
        self.embedder = SnapshotEmbedder(cfg.embed_max_kb * 1024) if cfg.embed_snapshot else None
        self.discovery: Discovery | None = None
        if cfg.discovery:
            self.discovery = Discovery(cfg.topic, cfg.discovery_prefix, self._publish_config)
            self.client.message_callback_add(f"{cfg.discovery_prefix}/status", self._on_ha_status)
        self.client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive)
        self.client.loop_start()

    @property
    def up(self) -> bool:
        """True only while connected to the broker: what `yolo_event_sink_up` reports for this consumer."""
        return self.connected.is_set() and not self._closing.is_set()

    def _outage(self, why: str) -> None:
        """Log the first failure of an outage (not every retry of paho's reconnect loop)."""
        if not self._outage_said:
            self._outage_said = True
            log.warning("MQTT %s %s; events wait in the consumer's queue until it is back", self.name, why)

    def _on_connect_fail(self, client, userdata) -> None:
        self.connect_failures += 1
        self._outage("is not reachable" if not self._ever else "still not reachable")

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._outage(f"refused the connection: {reason_code}")
            return
        log.info("MQTT %s %s", self.name, "reconnected" if self._ever else "connected")
        self._ever = True
        self._outage_said = False
        self.connected.set()
        client.publish(f"{self.cfg.topic}/status", "online", qos=1, retain=True)
        if self.discovery is not None:
            client.subscribe(f"{self.cfg.discovery_prefix}/status", qos=1)
            self._republish()  # a broker that restarted without persistence lost the retained configs

    def _on_ha_status(self, client, userdata, message) -> None:
        """Home Assistant's birth message: it (re)started, so announce every entity again."""
        if message.payload == b"online":
            self._republish()

    def _republish(self) -> None:
        """On paho's thread: an exception here would end its network loop, so a full queue is only logged."""
        if self.discovery is not None:
            try:
                self.discovery.republish(topic_safe)
            except RuntimeError as exc:
                log.warning("MQTT %s: Home Assistant discovery not republished (%s)", self.name, exc)

    def _publish_config(self, topic: str, payload: str, retain: bool) -> None:
        """Discovery messages: QoS 1 whatever the events' QoS (an entity lost is an entity missing)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc == self._mqtt.MQTT_ERR_QUEUE_SIZE:
            self.dropped += 1
            raise RuntimeError(f"paho's queue is full ({self.cfg.max_queue} messages)")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected.is_set() and not self._closing.is_set():
            self._outage(f"lost ({reason_code})")
        self.connected.clear()

    def _publish(self, topic: str, payload: str, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=self.cfg.qos, retain=retain)
        if info.rc == self._mqtt.MQTT_ERR_QUEUE_SIZE:
            self.dropped += 1
            raise RuntimeError(f"paho's queue is full ({self.cfg.max_queue} messages)")

    def _wait_connected(self) -> None:
        while not self.connected.wait(0.25):
            if self._closing.is_set():
                raise RuntimeError(f"closing while {self.name} is not connected")

    def handle(self, delivery) -> None:
        """Publish once connected (waits meanwhile: the queue in front holds what comes, see above)."""
        self._wait_connected()
        safe = topic_safe(delivery.source)
        base = f"{self.cfg.topic}/{safe}"
        for event in delivery.events:
            self._publish(f"{base}/events", dumps(event_message(event, self.embedder)))
        if self.discovery is not None:  # the entities first: Home Assistant then reads the retained state
            if delivery.counts is not None:
                self.discovery.update(delivery.source, safe, delivery.counts)
            snapshots = [e.snapshot for e in delivery.events if e.snapshot]
            if snapshots:
                self._last_snapshot(self.discovery, delivery.source, safe, snapshots[-1])
        if delivery.counts is not None:
            self._publish(f"{base}/counts", json.dumps(delivery.counts, separators=(",", ":")), retain=True)

    def _last_snapshot(self, discovery: Discovery, source: str, safe: str, path: str) -> None:
        """The camera's `image` entity shows the snapshot: its JPEG's bytes, retained, if within embed_max_kb."""
        limit = self.cfg.embed_max_kb * 1024
        try:
            with open(path, "rb") as fh:
                data = fh.read(limit + 1)
        except OSError:
            return  # gone already (retention): the event message still names it
        if len(data) > limit:
            return  # the entity keeps the previous picture; the event message names this one
        discovery.announce_image(source, safe)
        info = self.client.publish(discovery.snapshot_topic(safe), data, qos=1, retain=True)
        if info.rc == self._mqtt.MQTT_ERR_QUEUE_SIZE:
            self.dropped += 1
            raise RuntimeError(f"paho's queue is full ({self.cfg.max_queue} messages)")

    def clip_ready(self, source: str, path: str, events: list[Event]) -> None:
        """A clip is complete on disk: the follow-up message on <topic>/<source>/clips (worker thread)."""
        self._wait_connected()
        self._publish(f"{self.cfg.topic}/{topic_safe(source)}/clips", dumps(clip_message(source, path, events)))

    def source_removed(self, source: str) -> None:
        """The camera left the config (live reload): remove its Home Assistant entities (worker thread)."""
        if self.discovery is not None:
            self._wait_connected()
            self.discovery.remove(source, topic_safe(source))

    def close(self, timeout: float = 3.0) -> None:
        """Send what is queued while connected (up to `timeout`), mark the status offline, disconnect."""
        self._closing.set()
        if self.connected.is_set():
            if self.discovery is not None:
                with contextlib.suppress(RuntimeError):  # paho's queue full: the entities stay "online"
                    self.discovery.offline(topic_safe)
            info = self.client.publish(f"{self.cfg.topic}/status", "offline", qos=1, retain=True)
            try:  # QoS 1 messages go out in order: the last one acknowledged, the cameras' went before it
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()
