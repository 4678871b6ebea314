"""Issue 28, fault 4: credentials where cameras put them (user-info, the path, the query) never reach a log
line, an error, a metrics label or the /healthz body. One table of probes, each run through every place a
URL is shown: redact() itself, scrub() of a message quoting the URL, the SourceError of an unreachable
camera and its log lines, the source's id, the /metrics page, the health detail and a webhook's name."""

from __future__ import annotations

import json
import logging
import socket
import urllib.error
import urllib.request

import pytest

from yolovino.inference.core.redact import redact, safe_name, scrub

SECRET = "S3cretPW"

# (URL with a credential, the part of it that must stay readable)
PROBES = [
    ("rtsp://admin:{s}@127.0.0.1:{port}/stream1", "127.0.0.1"),
    ("rtsp://127.0.0.1:{port}/user=admin&password={s}&channel=1&stream=0.sdp", "channel=1"),
    ("rtsp://127.0.0.1:{port}/user=admin_password={s}_channel=1_stream=0.sdp", "channel=1"),
    ("http://127.0.0.1:{port}/x?pw={s}", "/x"),
    ("http://127.0.0.1:{port}/x?p={s}&res=hd", "res=hd"),
    ("http://127.0.0.1:{port}/video.cgi?user=admin&pwd={s}", "user=admin"),
    ("http://127.0.0.1:{port}/snap;password={s}", "/snap"),
    ("rtsp://127.0.0.1:{port}/live?token={s}", "/live"),
    ("rtsp://127.0.0.1:{port}/live?api_key={s}#x", "/live"),
    ("http://127.0.0.1:{port}/x?user_pw={s}", "/x"),
    ("RTSP://127.0.0.1:{port}/a/PASSWORD={s}", "/a/"),
]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def probe(template: str, port: int = 9) -> str:
    return template.format(s=SECRET, port=port)


@pytest.mark.parametrize(("template", "kept"), PROBES)
def test_redact_hides_every_credential_and_keeps_the_rest(template, kept):
    url = probe(template)
    shown = redact(url)
    assert SECRET not in shown, shown
    assert kept in shown and "***" in shown, shown
    assert redact(shown) == shown  # idempotent: a redacted URL is left as it is
    message = f"[tcp] cannot open '{url}': Connection refused ({url})"
    assert SECRET not in scrub(message), scrub(message)


@pytest.mark.parametrize(
    "url",
    ["rtsp://127.0.0.1/live/ch00_0", "http://127.0.0.1/x?page=2&keyframe=1", "rtsp://cam/stream?channel=3", "a.mp4"],
)
def test_redact_leaves_urls_without_credentials_alone(url):
    assert redact(url) == url


def test_safe_name_removes_control_characters():
    assert safe_name("cam\n2\x1b[31m\x00") == "cam\\n2\\x1b[31m\\x00"
    assert "\n" not in safe_name("a\r\nb") and safe_name("Tür 3") == "Tür 3"


@pytest.mark.parametrize(("template", "kept"), PROBES)
def test_unreachable_camera_error_logs_metrics_and_health_hide_credentials(template, kept, caplog):
    """A camera that is not there: its error, its log lines, its id, /metrics and /healthz."""
    from yolovino.inference.core.errors import SourceError
    from yolovino.inference.service.health import HealthCheck
    from yolovino.inference.service.metrics import Metrics
    from yolovino.inference.sources import open_source

    url = probe(template, closed_port())
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SourceError) as info:
        open_source(url, open_timeout=2, read_timeout=2)
    src = open_source(url, start=False)
    metrics = Metrics()
    metrics.register_source(src)
    health = HealthCheck(metrics, engines=lambda: [], default_stall_timeout=0.0)
    ok, detail = health()
    server = metrics.serve(0, health=health)
    try:
        with urllib.request.urlopen(server.url, timeout=5) as r:
            page = r.read().decode()
        try:
            urllib.request.urlopen(server.health_url, timeout=5)
            health_page = ""
        except urllib.error.HTTPError as exc:  # 503: the source never delivered
            health_page = exc.read().decode()
    finally:
        server.close()
    assert not ok and health_page
    shown = {
        "SourceError": str(info.value),
        "id": src.id + src.display + repr(src),
        "metrics": page + metrics.render(),
        "health": json.dumps(detail) + health_page,
        "logs": caplog.text,
    }
    for where, text in shown.items():
        assert SECRET not in text, f"{where}: {text[:500]}"
    assert "127.0.0.1" in page and "127.0.0.1" in health_page  # the camera can still be told apart


@pytest.mark.parametrize(("template", "kept"), [p for p in PROBES if p[0].startswith("http")])
def test_webhook_name_and_failure_hide_credentials(template, kept):
    """A webhook URL with a credential: the consumer's name (a metrics label, log lines) and its failure."""
    from yolovino.inference.analytics.config import WebhookOutput
    from yolovino.inference.core.events import Event, EventKind
    from yolovino.inference.notify.hub import Delivery, WebhookConsumer

    url = probe(template, closed_port())
    sink = WebhookConsumer(WebhookOutput(url=url, retries=0, timeout_s=2.0))
    event = Event(EventKind.CROSSED, 0.0, "cam", 1, 0, "person", 0.9, (0.0, 0.0, 1.0, 1.0), 0, 0.0)
    with pytest.raises(RuntimeError) as info:
        sink.handle(Delivery("cam", [event]))
    assert SECRET not in sink.name and "127.0.0.1" in sink.name
    assert SECRET not in str(info.value)


# names that try to forge a log line or move the terminal's cursor
NASTY = ["cam\nERROR forged line", "cam\r\x1b[2Kgone", "cam\x00nul", "cam\u2028sep"]


@pytest.mark.parametrize("name", NASTY)
def test_control_characters_in_source_names_do_not_reach_the_logs(name, caplog, tmp_path):
    """A named source, an unnamed URL and a folder with such names: ids, errors and log lines stay one line."""
    from yolovino.inference.core.errors import SourceError
    from yolovino.inference.sources import open_source

    caplog.set_level(logging.DEBUG)
    url = f"rtsp://127.0.0.1:{closed_port()}/{name}"
    with pytest.raises(SourceError) as info:
        open_source(url, open_timeout=2, read_timeout=2)
    named = open_source(url, name=name, start=False)
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"")
    with pytest.raises(SourceError) as empty:
        open_source(str(folder / name))  # not there: the error names it
    for text in (str(info.value), named.id, named.display, str(empty.value), *(r.getMessage() for r in caplog.records)):
        assert text.isprintable(), repr(text)
    assert "cam" in named.id


@pytest.mark.parametrize(
    "text", ["ftp://admin:{s}@127.0.0.1/x.mp4", "ftp://127.0.0.1/user=admin&password={s}", "gopher://h/x?pw={s}"]
)
def test_page_errors_and_allow_list_errors_hide_credentials(text, tmp_path):
    """The page's 'Unknown source' answer and a bad --allow-source pattern quote what was typed, redacted."""
    from yolovino.common.allow import AllowList
    from yolovino.inference.core.config import InferenceConfig
    from yolovino.ui.context import UIContext, UserFacingError

    ctx = UIContext(tmp_path, None, None, InferenceConfig(), tmp_path / "ui", allow=AllowList.parse(["*://127.0.0.1"]))
    with pytest.raises(UserFacingError) as page:
        ctx.resolve_source(text.format(s=SECRET))
    with pytest.raises(ValueError) as pattern:
        AllowList.parse([text.format(s=SECRET)])
    for shown in (str(page.value), str(pattern.value)):
        assert SECRET not in shown and "***" in shown, shown
