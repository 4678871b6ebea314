"""Issue 28, faults 5 and 6 and the snapshot note: an event consumer's health says the truth.

* MQTT with the broker's port closed: one log line per outage, `yolo_event_sink_up` 0 and nothing counted
  as sent until a real Mosquitto comes up on that port; then the queued events go out and count.
* A webhook that answers with a huge body: the response is read only up to a small bound.
"""

from __future__ import annotations

import logging
import re

import pytest
from mqtt_broker import Mosquitto, free_port, mosquitto_available
from prometheus_client import CollectorRegistry, generate_latest
from test_event_sinks import Cam, Subscriber, analytics_with, crossing_frames, feed
from waiting import wait_until

from yolovino.inference.analytics.metrics import register_analytics


def sink_metrics(analytics, consumer: str) -> dict[str, float]:
    """The yolo_event_sink_* samples of one consumer, from a real registry's text page."""
    registry = CollectorRegistry()
    register_analytics(analytics, registry)
    page = generate_latest(registry).decode()
    pattern = re.compile(r'^yolo_event_sink_(\w+?)(?:_total)?\{consumer="' + re.escape(consumer) + r'"\} (\S+)$', re.M)
    return {k: float(v) for k, v in pattern.findall(page)}


def test_mqtt_broker_port_closed_is_down_logged_once_and_not_sent(caplog):
    if not mosquitto_available():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    port = free_port()
    name = f"mqtt:127.0.0.1:{port}"
    caplog.set_level(logging.INFO, logger="yolovino.inference")
    analytics = analytics_with({"mqtt": {"host": "127.0.0.1", "port": port}})
    consumer = analytics.hub.consumers[next(iter(analytics.hub.consumers))]
    broker = Mosquitto(port)
    sub = None
    try:
        feed(analytics, Cam(), crossing_frames(2))
        assert wait_until(lambda: getattr(consumer.consumer, "connect_failures", 2) >= 2, 15)  # paho retried
        down = sink_metrics(analytics, name)
        assert down["up"] == 0 and down["sent"] == 0, down
        assert consumer.stats()["queued"] > 0 and not consumer.stats()["up"]
        said = [r.getMessage() for r in caplog.records if name in r.getMessage()]
        assert len(said) == 1 and "not reachable" in said[0], said  # one line for the outage, not per retry
        broker.start()
        sub = Subscriber(port)
        assert sub.subscribed.wait(10)
        crossed = lambda: {e["track_id"] for e in sub.events("line_crossed")}  # noqa: E731
        assert wait_until(lambda: crossed() == {1, 2}, 30), sub.messages
        assert wait_until(lambda: sink_metrics(analytics, name).get("up") == 1, 10)
        up = sink_metrics(analytics, name)
        assert up["sent"] >= 2 and up["dropped"] == 0 and up["failed"] == 0, up
        assert any("connected" in r.getMessage() and name in r.getMessage() for r in caplog.records)
    finally:
        analytics.close()
        if sub is not None:
            sub.close()
        broker.cleanup()
