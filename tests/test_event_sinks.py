"""Event outputs against real receivers: a Mosquitto broker started here on 127.0.0.1, a local HTTP server,
files. The events come from the analytics stage on a synthetic scene (one person crossing a line)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest
from mqtt_broker import Mosquitto, mosquitto_available
from waiting import wait_until

from yolovino.inference.analytics.config import parse_analytics, resolve_classes
from yolovino.inference.analytics.stage import Analytics
from yolovino.inference.core.events import EventKind
from yolovino.inference.core.results import Frame, Results
from yolovino.inference.notify.hub import EventHub
from yolovino.inference.sources import SourceStats

NAMES = {0: "person"}
H, W = 400, 800


class Cam:
    def __init__(self, sid="door"):
        self.id, self.fps, self.stats = sid, 10.0, SourceStats()


def crossing_frames(n_people: int = 1, frames: int = 40):
    """Frames of people walking left to right, one after another, across a vertical line at x = 400."""
    for k in range(frames * n_people):
        person, step = divmod(k, frames)
        x = 100 + 16 * step
        box = np.array([[x - 20, 150, x + 20, 250]], np.float32)
        yield k, Results(box, np.array([0.9], np.float32), np.array([0], np.int32), NAMES, (H, W))


def analytics_with(events: dict, cam="door") -> Analytics:
    cfg = parse_analytics({"lines": [{"name": "gate", "points": [[0.5, 0.0], [0.5, 1.0]]}], "events": events})
    cfg = resolve_classes(cfg, NAMES)
    return Analytics({cam: cfg}, hub=EventHub.build({cam: cfg.events}))


def feed(analytics: Analytics, cam: Cam, frames, t0: float = 0.0) -> list[float]:
    """Run frames through the stage; returns how long each process() call took (the video's cost)."""
    image = np.full((H, W, 3), 90, np.uint8)
    costs = []
    for k, results in frames:
        start = time.perf_counter()
        analytics.process(cam, Frame(image, k, cam.id, t0 + k / 10, 0.0), results)
        costs.append(time.perf_counter() - start)
    return costs


# --- MQTT against a real broker -------------------------------------------------------------------------


@pytest.fixture
def broker():
    if not mosquitto_available():
        if __import__("os").environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("mosquitto (Debian package) is required under CI")
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    b = Mosquitto()
    yield b
    b.cleanup()


class Subscriber:
    """A paho client with a persistent session (clean_session=False) collecting messages by topic."""

    def __init__(self, port: int, topic: str = "yolo/#", client_id: str = "test-sub"):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[tuple[str, bytes | bytearray, bool]] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.reconnect_delay_set(1, 2)

        def on_connect(client, userdata, flags, rc, props):
            client.subscribe(topic, qos=1)

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload, bool(m.retain)))
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()

    def events(self, kind: str | None = None) -> list[dict]:
        out = [json.loads(p) for t, p, _ in list(self.messages) if t.endswith("/events")]
        return [e for e in out if kind is None or e["kind"] == kind]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_mqtt_events_and_retained_counts_on_a_real_broker(broker):
    broker.start()
    sub = Subscriber(broker.port)
    assert sub.subscribed.wait(10)
    analytics = analytics_with({"mqtt": {"host": "127.0.0.1", "port": broker.port, "topic": "yolo"}})
    try:
        feed(analytics, Cam(), crossing_frames())
        assert wait_until(lambda: sub.events("line_crossed"), 10), sub.messages
        crossed = sub.events("line_crossed")[0]
        assert crossed["source"] == "door" and crossed["line"] == "gate" and crossed["direction"] == "out"
        assert crossed["label"] == "person" and len(crossed["box"]) == 4 and crossed["track_id"] == 1
        assert any(t == "yolo/door/events" for t, _, _ in sub.messages)
        # a subscriber arriving later gets the current counts at once (retained), and the status
        late = Subscriber(broker.port, "yolo/#", client_id="late-sub")
        assert wait_until(lambda: any(t == "yolo/door/counts" for t, _, _ in late.messages), 10)
        counts = next(json.loads(p) for t, p, r in late.messages if t == "yolo/door/counts" and r)
        assert counts["lines"]["gate"] == {"in": {}, "out": {"person": 1}}
        assert ("yolo/status", b"online", True) in late.messages
        late.close()
    finally:
        analytics.close()
        sub.close()


def test_mqtt_broker_down_at_start_then_lost_mid_run(broker, caplog):
    """The broker is not there when the app starts, comes up, then goes away for a while: the video never
    waits, events made while it was away are queued (bounded) and arrive after the reconnect, in order."""
    caplog.set_level(logging.INFO, logger="yolovino.inference")
    analytics = analytics_with({"mqtt": {"host": "127.0.0.1", "port": broker.port, "max_queue": 500}})
    cam = Cam()
    sub = None
    try:
        costs = feed(analytics, cam, crossing_frames(1))  # broker down: person 1 crosses
        broker.start()
        sub = Subscriber(broker.port)
        assert sub.subscribed.wait(10)
        assert wait_until(lambda: len(sub.events("line_crossed")) == 1, 15), sub.messages
        broker.stop()  # SIGTERM: the broker saves the subscriber's session
        assert wait_until(
            lambda: not analytics.hub.consumers[next(iter(analytics.hub.consumers))].consumer.connected.is_set(), 10
        )
        costs += feed(analytics, cam, list(crossing_frames(3))[40:], t0=10.0)  # persons 2 and 3 cross meanwhile
        broker.start()
        # both clients come back by themselves (paho's reconnect backoff); QoS 1 is at-least-once, so a message
        # in flight when the link broke may arrive twice: count distinct crossings
        crossed = lambda: [e["track_id"] for e in sub.events("line_crossed")]  # noqa: E731
        assert wait_until(lambda: set(crossed()) == {1, 2, 3}, 60), crossed()
        assert crossed() == sorted(crossed())  # in order
        # no call waited for the network (a blocking publish would wait for the broker's connect timeout)
        assert max(costs) < 0.25, max(costs)
        text = caplog.text
        assert text.count("MQTT mqtt:127.0.0.1") >= 2 and "lost" in text  # connected, lost, reconnected: one line each
    finally:
        analytics.close()
        if sub is not None:
            sub.close()


# --- webhook against a real HTTP server -----------------------------------------------------------------


class Hook:
    """HTTP server on 127.0.0.1 that answers 500 to the first `fail` POSTs, then 200, recording bodies."""

    def __init__(self, fail: int = 0):
        self.bodies: list[dict] = []
        self.attempts = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.attempts += 1
                code = 500 if outer.attempts <= fail else 200
                if code == 200:
                    outer.bodies.append(json.loads(body))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_webhook_retries_after_500_and_delivers_every_event():
    hook = Hook(fail=2)
    analytics = analytics_with({"webhook": {"url": hook.url, "backoff_s": 0.05, "retries": 3}})
    try:
        feed(analytics, Cam(), crossing_frames(2))
        kinds = lambda: [b["kind"] for b in hook.bodies]  # noqa: E731
        assert wait_until(lambda: kinds().count("line_crossed") == 2 and "track_appeared" in kinds(), 10), kinds()
        assert hook.attempts == len(hook.bodies) + 2  # two refused tries, retried
        assert analytics.hub.stats()[f"webhook:{hook.url}"]["failed"] == 0
    finally:
        analytics.close()
        hook.close()


def test_webhook_that_never_answers_costs_the_video_nothing(caplog):
    """A server that accepts connections and never replies; a tiny queue: events are dropped and counted,
    the drop is logged once, and no frame waits."""
    caplog.set_level(logging.WARNING, logger="yolovino.inference")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # never accept()ed: requests hang until the client's timeout
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
    analytics = analytics_with({"webhook": {"url": url, "timeout_s": 0.5, "retries": 0}, "queue_size": 2})
    try:
        costs = feed(analytics, Cam(), crossing_frames(6))
        stats = analytics.hub.stats()[f"webhook:{url}"]
        assert stats["dropped"] > 0
        # a blocking send would make frames wait for the 0.5 s timeout; the bound is loose for a busy machine
        assert max(costs) < 0.25, max(costs)
        assert caplog.text.count("queue full") == 1
    finally:
        analytics.hub.close(timeout=1.0)
        silent.close()


# --- files -----------------------------------------------------------------------------------------------


def test_events_jsonl_one_line_per_event_and_snapshots(tmp_path):
    events_file, snaps = tmp_path / "events.jsonl", tmp_path / "snaps"
    analytics = analytics_with({"jsonl": str(events_file), "snapshots": {"dir": str(snaps), "kinds": ["line_crossed"]}})
    feed(analytics, Cam(), crossing_frames(2))
    analytics.close()  # flushes; the two live... ended tracks are written too
    lines = [json.loads(x) for x in events_file.read_text().splitlines()]
    kinds = [x["kind"] for x in lines]
    assert kinds.count("track_appeared") == 2 and kinds.count("line_crossed") == 2 and kinds.count("track_ended") == 2
    crossed = [x for x in lines if x["kind"] == EventKind.CROSSED.value]
    for c in crossed:
        img = cv2.imread(c["snapshot"])
        assert img is not None and img.shape == (H, W, 3)
        x1, y1, x2, y2 = (int(v) for v in c["box"])
        assert tuple(img[y1, (x1 + x2) // 2]) != (90, 90, 90)  # the event's box is drawn on the snapshot
    assert "snapshot" not in next(x for x in lines if x["kind"] == "track_appeared")
