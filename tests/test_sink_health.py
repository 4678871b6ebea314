"""Issue 28, faults 5 and 6 and the snapshot note: an event consumer's health says the truth.

* MQTT with the broker's port closed: one log line per outage, `yolo_event_sink_up` 0 and nothing counted
  as sent until a real Mosquitto comes up on that port; then the queued events go out and count.
* A webhook that answers with a huge body: the response is read only up to a small bound.
"""

from __future__ import annotations

import logging
import re
import threading
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


class HugeAnswer:
    """HTTP server on 127.0.0.1 answering each POST with 200 and a 200 MB body, streamed 1 MB at a time
    until the client hangs up; counts the bytes it got out."""

    BODY = 200 * 2**20

    def __init__(self):
        self.written = 0
        self.posts = 0
        self.done = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.posts += 1
                self.send_response(200)
                self.send_header("Content-Length", str(outer.BODY))
                self.end_headers()
                block = b"x" * 2**20
                try:
                    while outer.written < outer.BODY:
                        self.wfile.write(block)
                        outer.written += len(block)
                except OSError:  # the client closed the connection: what a bounded reader does
                    pass
                finally:
                    outer.done.set()

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_webhook_huge_answer_is_read_only_up_to_a_bound():
    """The receiver answers 200 with a 200 MB body: the event counts as sent, the client reads a bounded
    amount (the server gets out at most the bound plus the sockets' buffers) and memory stays small."""
    from yolovino.inference.analytics.config import WebhookOutput
    from yolovino.inference.core.events import Event, EventKind
    from yolovino.inference.notify.hub import Delivery, WebhookConsumer

    hook = HugeAnswer()
    sink = WebhookConsumer(WebhookOutput(url=hook.url, retries=0, timeout_s=5.0))
    event = Event(EventKind.CROSSED, 0.0, "cam", 1, 0, "person", 0.9, (0.0, 0.0, 1.0, 1.0), 0, 0.0)
    tracemalloc.start()
    try:
        sink.handle(Delivery("cam", [event]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    try:
        assert hook.done.wait(10), "the server is still writing: the client kept reading"
        assert hook.posts == 1
        assert peak < 8 * 2**20, f"{peak / 2**20:.1f} MB allocated while reading the answer"
        assert hook.written < 32 * 2**20, f"{hook.written / 2**20:.0f} MB read of the answer"
    finally:
        sink.close()
        hook.close()


def test_unwritable_snapshot_folder_is_down_logged_once_and_events_go_on(tmp_path, caplog):
    """The snapshot folder is a file (as an unwritable or missing mount would be): every crossing still
    reaches the JSON lines, the snapshot stage says down with its events failed, one log line; once the
    folder is there it recovers (one line) and counts what it writes."""
    import json

    snaps, events_file = tmp_path / "snaps", tmp_path / "events.jsonl"
    snaps.write_text("not a folder")
    caplog.set_level(logging.INFO, logger="yolovino.inference")
    analytics = analytics_with({"jsonl": str(events_file), "snapshots": {"dir": str(snaps), "kinds": ["line_crossed"]}})
    name = f"snapshots:{snaps}"
    try:
        feed(analytics, Cam(), crossing_frames(3))

        def crossed() -> list[dict]:
            lines = map(json.loads, events_file.read_text().splitlines())
            return [x for x in lines if x["kind"] == "line_crossed"]

        assert wait_until(lambda: events_file.exists() and len(crossed()) == 3, 10)
        assert all("snapshot" not in c for c in crossed())
        down = sink_metrics(analytics, name)
        assert down["up"] == 0 and down["failed"] >= 3, down  # sent: only the events that wanted no snapshot
        said = [r.getMessage() for r in caplog.records if str(snaps) in r.getMessage()]
        assert len(said) == 1 and "failing" in said[0], said
        snaps.unlink()
        snaps.mkdir()
        feed(analytics, Cam(), list(crossing_frames(4))[120:], t0=20.0)
        assert wait_until(lambda: len(crossed()) == 4, 10)
        assert wait_until(lambda: sink_metrics(analytics, name).get("up") == 1, 10)
        assert "snapshot" in crossed()[-1] and list(snaps.rglob("*.jpg"))
        assert any("restored" in r.getMessage() and str(snaps) in r.getMessage() for r in caplog.records)
    finally:
        analytics.close()


def test_broken_webhooks_are_closed_together():
    """Three webhooks whose server never answers, each with events queued and retrying: stopping costs one
    close timeout in all, not one per webhook (it took 3 x 5 s one after the other)."""
    import socket
    import time

    from yolovino.inference.analytics.config import parse_analytics
    from yolovino.inference.core.events import Event, EventKind
    from yolovino.inference.notify.hub import Delivery, EventHub

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # never accept()ed: every request hangs until the client's timeout
    base = f"http://127.0.0.1:{silent.getsockname()[1]}"
    outputs = {
        f"cam{k}": parse_analytics(
            {"events": {"webhook": {"url": f"{base}/hook{k}", "timeout_s": 3, "retries": 5}}}
        ).events
        for k in range(3)
    }
    hub = EventHub.build(outputs)
    try:
        event = Event(EventKind.CROSSED, 0.0, "cam", 1, 0, "person", 0.9, (0.0, 0.0, 1.0, 1.0), 0, 0.0)
        for q in hub.consumers.values():
            for _ in range(3):
                q.offer(Delivery("cam", [event]))
        assert wait_until(lambda: all(q.queue.qsize() < 3 for q in hub.consumers.values()), 5)  # sending
        start = time.monotonic()
        hub.close(timeout=2.0)
        took = time.monotonic() - start
        assert took < 4.5, f"closing 3 broken webhooks took {took:.1f} s"
    finally:
        silent.close()
