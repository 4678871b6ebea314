"""Issue 28, fault 7: a URL the page's allow-list admitted opens only itself. Real servers on 127.0.0.1:
an HTTP server that answers 302 or serves an HLS playlist, an RTSP server that answers 302, all pointing at
a listener on a port that is not on the list, which counts every connection FFmpeg makes to it."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fixtures_models import person_clip, rtsp_server  # noqa: F401 - fixtures
from test_security import model_dir  # noqa: F401 - the fixture, for the UI test
from waiting import wait_until

from yolovino.common.allow import AllowList
from yolovino.inference.core.errors import SourceError
from yolovino.inference.sources import open_source


class Elsewhere:
    """A TCP listener off the allow-list: counts the connections made to it, closes them."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.count = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.count += 1
            conn.close()

    def reached(self) -> bool:
        return wait_until(lambda: self.count > 0, 0.5)

    def close(self):
        self.sock.close()


class Servers:
    """HTTP (302, HLS playlist) and RTSP (302) servers on 127.0.0.1 that all point at `Elsewhere`."""

    def __init__(self, elsewhere: Elsewhere):
        away = f"127.0.0.1:{elsewhere.port}"

        class Http(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.startswith("/redirect"):
                    self.send_response(302)
                    self.send_header("Location", f"http://{away}/x.ts")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = (
                    f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nhttp://{away}/seg0.ts\n#EXT-X-ENDLIST\n".encode()
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.apple.mpegurl")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Http)
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.http_port = self.http.server_address[1]
        self.rtsp = socket.create_server(("127.0.0.1", 0))
        self.rtsp_port = self.rtsp.getsockname()[1]
        threading.Thread(target=self._rtsp, args=(away,), daemon=True).start()

    def _rtsp(self, away: str):
        while True:
            try:
                conn, _ = self.rtsp.accept()
            except OSError:
                return
            threading.Thread(target=self._rtsp_conn, args=(conn, away), daemon=True).start()

    @staticmethod
    def _rtsp_conn(conn: socket.socket, away: str):
        with conn, conn.makefile("rb") as r:
            conn.settimeout(5)
            try:
                while True:
                    lines = []
                    while (line := r.readline(4096)) not in (b"\r\n", b"\n", b""):
                        lines.append(line.decode("latin-1"))
                    if not lines:
                        return
                    cseq = next((x.split(":", 1)[1].strip() for x in lines if x.lower().startswith("cseq")), "1")
                    answer = f"RTSP/1.0 302 Found\r\nCSeq: {cseq}\r\nLocation: rtsp://{away}/x\r\n\r\n"
                    conn.sendall(answer.encode())
            except OSError:
                return

    def close(self):
        self.http.shutdown()
        self.http.server_close()
        self.rtsp.close()


@pytest.fixture
def net():
    elsewhere = Elsewhere()
    servers = Servers(elsewhere)
    allow = AllowList.parse([f"http://127.0.0.1:{servers.http_port}", f"rtsp://127.0.0.1:{servers.rtsp_port}"])
    yield elsewhere, servers, allow
    servers.close()
    elsewhere.close()


# (URL on the allow-list whose server points elsewhere, what the refusal says)
PROBES = [
    ("http://127.0.0.1:{http}/redirect", "cannot open"),
    ("HTTP://127.0.0.1:{http}/redirect", "cannot open"),
    ("http://127.0.0.1:{http}/live.m3u8", "cannot open"),
    ("http://127.0.0.1:{http}/live", "cannot open"),  # a playlist without the .m3u8 name
    ("rtsp://127.0.0.1:{rtsp}/cam", "redirects"),
    ("RTSP://127.0.0.1:{rtsp}/cam", "redirects"),
]


def url_of(template: str, servers: Servers) -> str:
    return template.format(http=servers.http_port, rtsp=servers.rtsp_port)


@pytest.mark.parametrize(("template", "said"), PROBES)
def test_pinned_source_follows_no_redirect_or_playlist(net, template, said):
    elsewhere, servers, allow = net
    url = url_of(template, servers)
    assert allow.allows(url)
    with pytest.raises(SourceError) as info:
        open_source(url, pinned=True, open_timeout=5, read_timeout=3)
    assert said in str(info.value), info.value
    assert not elsewhere.reached(), f"FFmpeg connected to port {elsewhere.port}, which is not on the list"


@pytest.mark.parametrize("template", [PROBES[0][0], PROBES[2][0]])
def test_headless_sources_still_follow_them(net, template):
    """The probes reach the listener when not pinned: the headless service opens what its operator wrote."""
    elsewhere, servers, _ = net
    with pytest.raises(SourceError):
        open_source(url_of(template, servers), open_timeout=5, read_timeout=3)
    assert elsewhere.reached()


def test_allow_list_scheme_is_case_insensitive_and_the_checked_url_is_opened(tmp_path):
    from yolovino.inference.core.config import InferenceConfig
    from yolovino.ui.context import UIContext, UserFacingError

    ctx = UIContext(
        models_dir=tmp_path,
        samples_dir=None,
        default_source=None,
        config=InferenceConfig(),
        tmp_root=tmp_path / "ui",
        allow=AllowList.parse(["RTSP://127.0.0.1:8554"]),
    )
    assert ctx.resolve_source("RTSP://127.0.0.1:8554/x") == "rtsp://127.0.0.1:8554/x"
    assert ctx.resolve_source("rtsp://127.0.0.1:8554/x") == "rtsp://127.0.0.1:8554/x"
    for off in ("RTSP://127.0.0.1:8555/x", "Http://127.0.0.1:8554/x", "RTSPS://127.0.0.1:8554/x"):
        with pytest.raises(UserFacingError):
            ctx.resolve_source(off)


@pytest.mark.parametrize("template", [PROBES[0][0], PROBES[2][0], PROBES[4][0]])
def test_ui_stream_refuses_redirects_and_playlists(net, template, model_dir, tmp_path):  # noqa: F811
    """What the page does with such a URL: one 'Cannot open' line, and no connection elsewhere."""
    from yolovino.inference.core.config import InferenceConfig
    from yolovino.ui.context import UIContext, UserFacingError
    from yolovino.ui.session import Session

    elsewhere, servers, allow = net
    ctx = UIContext(model_dir.parents[1], None, None, InferenceConfig(), tmp_path / "ui", allow=allow)
    session = Session(ctx, "pin")
    try:
        with pytest.raises(UserFacingError) as info:
            for _ in session.stream(url_of(template, servers)):
                pass
    finally:
        session.close()
    assert str(info.value).startswith("Cannot open") and "\n" not in str(info.value)
    assert not elsewhere.reached()


def test_pinned_source_plays_a_real_rtsp_stream_and_http_mpegts(rtsp_server, person_clip, tmp_path):  # noqa: F811
    """Pinning costs a real camera nothing: the GStreamer RTSP test server and MPEG-TS over HTTP play."""
    import functools
    from http.server import SimpleHTTPRequestHandler

    import av

    with av.open(str(person_clip)) as src, av.open(str(tmp_path / "cam.ts"), "w", format="mpegts") as out:
        video = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = video
                out.mux(packet)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        for url in (rtsp_server.url(), f"http://127.0.0.1:{http.server_address[1]}/cam.ts"):
            src = open_source(url, pinned=True, open_timeout=10, read_timeout=5)
            try:
                frame = src.read(timeout=10)
                assert frame is not None and frame.image.shape[:2] == (432, 768), (url, src.stats.last_error)
            finally:
                src.close()
    finally:
        http.shutdown()
        http.server_close()
