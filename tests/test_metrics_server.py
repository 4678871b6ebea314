"""Issue 28, fault 12: the metrics/health server against clients that misbehave, on 127.0.0.1.

Clients that send half a request and hang up are not worth a traceback; clients that connect and idle
cannot pile up threads (a bounded number are served, idle ones are closed after a timeout); a normal
scrape still works afterwards."""

from __future__ import annotations

import logging
import socket
import struct
import threading
import urllib.request

import pytest
from waiting import wait_until

from yolovino.inference.service.metrics import Metrics, MetricsServer


def handler_threads() -> int:
    return sum("process_request_thread" in t.name for t in threading.enumerate())


def scrape(server: MetricsServer) -> str:
    with urllib.request.urlopen(server.url, timeout=5) as r:
        return r.read().decode()


@pytest.fixture
def server():
    s = MetricsServer(Metrics(), 0, idle_timeout=1.0, max_connections=4)
    yield s
    s.close()


# what a client sends before it resets the connection
HALF_REQUESTS = [b"GET /metrics HTTP/1.1\r\nHost: x", b"GET /healthz HTTP/1.1\r\n", b"GET /metr", b"", b"\x16\x03\x01"]


@pytest.mark.parametrize("sent", HALF_REQUESTS)
def test_clients_that_hang_up_mid_request_log_no_traceback(server, sent, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    for _ in range(20):
        c = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        c.sendall(sent)
        c.shutdown(socket.SHUT_WR)  # the server reads EOF: the request ends here
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # then a reset
        c.close()
    # every one taken from the listen backlog (not only none in progress at one instant), then none in progress
    assert wait_until(lambda: server.httpd.accepted == 20 and handler_threads() == 0, 10), server.httpd.accepted
    assert "yolo_uptime_seconds" in scrape(server)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Error" not in err, err[-2000:]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_idle_connections_cannot_pile_up():
    server = MetricsServer(Metrics(), 0, idle_timeout=3.0, max_connections=4)
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(12)]
    try:
        assert wait_until(lambda: handler_threads() == 4, 5), handler_threads()
        for c in idle:  # every one is closed by the server: 8 at once (over the bound), 4 after the timeout
            assert c.recv(1024) == b""
        assert wait_until(lambda: handler_threads() == 0, 10)
        assert "yolo_uptime_seconds" in scrape(server)
    finally:
        for c in idle:
            c.close()
        server.close()


def test_scrapes_are_answered_during_a_flood_of_half_requests():
    """Found by bench.abuse: clients that send half a request and idle held every slot until their idle
    timeout, so Prometheus (and a liveness probe on /healthz) were refused for the whole flood. The longest
    waiting half-request now makes room for a new connection."""
    server = MetricsServer(Metrics(), 0, idle_timeout=30.0, max_connections=4)
    flood: list[socket.socket] = []
    try:
        for _ in range(3):  # waves of stuck clients, more than the bound each time
            for _ in range(8):
                c = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x")  # and nothing more
                flood.append(c)
            assert "yolo_uptime_seconds" in scrape(server)  # answered at once, not after the 30 s idle timeout
        assert wait_until(lambda: handler_threads() <= 4, 5), handler_threads()
    finally:
        for c in flood:
            c.close()
        server.close()
