"""The built-in RTSP server: every source's annotated stream at rtsp://HOST:PORT/<source name>, H.264.

    server = RtspServer(host="127.0.0.1", port=8554, auth=None)     # auth=(user, password) off loopback
    sink = server.stream("door", fps=10)      # a Sink: the pipeline writes FrameResults to it
    ...                                       # ffplay/VLC/ffprobe rtsp://127.0.0.1:8554/door
    server.close()

Built on GStreamer's RTSP server (libgstrtspserver, the one DeepStream and DL Streamer serve with) through
PyGObject: it already does RTSP sessions, RTP over UDP and TCP, several clients, digest authentication
and late joiners; writing that by hand would be most of an RTSP server. One shared media per stream:
frames are encoded once (x264, zerolatency) however many clients watch, and nothing is encoded while no
one does (frames are only pushed while a client's media exists). `write` never blocks the pipeline: the
appsrc queue holds a few frames and drops the oldest. A mount appears with the stream's first frame
(its size fixes the caps; later frames of another size are fitted to it, `base.fit`).
"""

from __future__ import annotations

import logging
import re
import threading

import numpy as np

from yolovino.inference.core.errors import InferenceError
from yolovino.inference.core.media import is_loopback
from yolovino.inference.core.results import FrameResult
from yolovino.inference.outputs.base import Sink, even_size, fit, to_i420

log = logging.getLogger(__name__)


class RtspServerError(InferenceError):
    """The server cannot start as configured (bindings missing, port taken, no auth off loopback)."""


def mount_path(name: str) -> str:
    """The URL path a stream is served at: its name with anything but [A-Za-z0-9_.-] replaced by _."""
    return "/" + (re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.") or "src")


def _gst():
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtspServer", "1.0")
        gi.require_version("GstRtsp", "1.0")
        from gi.repository import GLib, Gst, GstRtsp, GstRtspServer
    except (ImportError, ValueError) as exc:
        raise RtspServerError(
            f"the built-in RTSP server needs PyGObject and GStreamer's RTSP server ({exc}): "
            "pip install 'yolovino[serve]' and, on Debian, gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-ugly "
            "(scripts/setup.sh installs both in a checkout)"
        ) from None
    Gst.init(None)
    if Gst.ElementFactory.find("x264enc") is None:
        raise RtspServerError("the built-in RTSP server needs x264enc (Debian: gstreamer1.0-plugins-ugly)")
    return GLib, Gst, GstRtsp, GstRtspServer


class RtspServer:
    """GstRtspServer on its own GLib main loop thread; `stream(name, fps)` makes a mount and its sink."""

    ROLE = "viewer"

    def __init__(
        self, host: str = "127.0.0.1", port: int = 8554, auth: tuple[str, str] | None = None, max_threads: int = 16
    ):
        if not is_loopback(host) and auth is None:
            raise RtspServerError(
                f"RTSP server on {host} is reachable from the network: set credentials "
                "(YOLO_RTSP_AUTH=user:password or serve: user/password in the config), or bind 127.0.0.1"
            )
        self.GLib, self.Gst, GstRtsp, self.GstRtspServer = _gst()
        self.host, self.auth = host, auth
        srv = self.GstRtspServer.RTSPServer()
        srv.set_address(host)
        srv.set_service(str(port))
        srv.get_thread_pool().set_max_threads(max_threads)  # default 1: one slow client would hold the rest
        if auth is not None:
            rauth = self.GstRtspServer.RTSPAuth()
            token = self.GstRtspServer.RTSPToken()
            token.set_string("media.factory.role", self.ROLE)
            rauth.add_digest(auth[0], auth[1], token)
            rauth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
            srv.set_auth(rauth)
        self._server = srv
        self._context = self.GLib.MainContext.new()
        self._source_id = srv.attach(self._context)
        if self._source_id == 0:
            raise RtspServerError(f"RTSP server: cannot listen on {host}:{port} (port in use?)")
        self.port = srv.get_bound_port()
        self._loop = self.GLib.MainLoop.new(self._context, False)
        self._thread = threading.Thread(target=self._loop.run, name="rtsp-server", daemon=True)
        self._thread.start()
        self.streams: dict[str, ServedStream] = {}
        self._lock = threading.Lock()
        self.closed = False
        log.info("RTSP server on rtsp://%s:%d/ (%s)", host, self.port, "digest auth" if auth else "no auth, loopback")

    def url(self, name: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"rtsp://{host}:{self.port}{mount_path(name)}"

    def stream(self, name: str, fps: float = 25.0, source_id: str | None = None) -> ServedStream:
        """The sink serving `name` at url(name), fed the frames of `source_id` (default: name); a second
        stream of the same path replaces the first."""
        path = mount_path(name)
        with self._lock:
            old = self.streams.pop(path, None)
        if old is not None:
            old.close()
        s = ServedStream(self, name, path, fps)
        s.source_id = source_id or name
        with self._lock:
            self.streams[path] = s
        return s

    def _mount(self, stream: ServedStream, caps: str) -> None:
        Srv = self.GstRtspServer
        factory = Srv.RTSPMediaFactory()
        gop = max(1, round(stream.fps))
        factory.set_launch(
            f"( appsrc name=src is-live=true format=time do-timestamp=true max-buffers=3 leaky-type=downstream "
            f"caps={caps} ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate=2000 "
            "! video/x-h264,profile=constrained-baseline ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )"
        )
        factory.set_shared(True)
        if self.auth is not None:
            perms = Srv.RTSPPermissions()
            perms.add_permission_for_role(self.ROLE, "media.factory.access", True)
            perms.add_permission_for_role(self.ROLE, "media.factory.construct", True)
            factory.set_permissions(perms)
        factory.connect("media-configure", stream._configure)
        self._server.get_mount_points().add_factory(stream.path, factory)

    def _unmount(self, path: str) -> None:
        self._server.get_mount_points().remove_factory(path)

    def clients(self) -> int:
        """RTSP clients connected now (any mount)."""
        n = 0

        def count(_server, _client):
            nonlocal n
            n += 1
            return self.GstRtspServer.RTSPFilterResult.KEEP

        self._server.client_filter(count)
        return n

    def close(self) -> None:
        """Unmount every stream, disconnect clients, stop the loop. Idempotent."""
        if self.closed:
            return
        self.closed = True
        for s in list(self.streams.values()):
            s.close()
        self._server.client_filter(lambda *_: self.GstRtspServer.RTSPFilterResult.REMOVE)
        source = self._context.find_source_by_id(self._source_id)
        if source is not None:
            source.destroy()
        self._loop.quit()
        self._thread.join(timeout=5)


class ServedStream(Sink):
    """One mount of the server, fed by the pipeline: `write(fr)` pushes fr.image to every watching client."""

    def __init__(self, server: RtspServer, name: str, path: str, fps: float):
        self.server, self.name, self.source_id, self.path = server, name, name, path
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.size: tuple[int, int] | None = None
        self.frames_in = 0
        self.frames_pushed = 0
        self.medias = 0  # shared medias built so far (one per period with at least one client)
        self._srcs: list = []
        self._lock = threading.Lock()
        self.closed = False

    @property
    def url(self) -> str:
        return self.server.url(self.name)

    def _configure(self, _factory, media) -> None:
        src = media.get_element().get_child_by_name("src")
        with self._lock:
            self._srcs.append(src)
            self.medias += 1
        media.connect("unprepared", lambda *_: self._drop(src))

    def _drop(self, src) -> None:
        with self._lock:
            if src in self._srcs:
                self._srcs.remove(src)

    def wants_pictures(self) -> bool:
        """The first picture (it sizes the mount), then only while somebody watches."""
        with self._lock:
            return self.size is None or bool(self._srcs)

    def write(self, fr: FrameResult) -> None:
        self.write_image(fr.image)

    def write_image(self, image: np.ndarray) -> None:
        if self.closed:
            return
        self.frames_in += 1
        if self.size is None:
            self.size = even_size(image)
            caps = f"video/x-raw,format=I420,width={self.size[0]},height={self.size[1]},framerate={round(self.fps)}/1"
            self.server._mount(self, caps)
            log.info("serving %s at %s", self.name, self.url)
        with self._lock:
            srcs = list(self._srcs)
        if not srcs:  # nobody watching: nothing to encode
            return
        image = fit(image, self.size)
        buf = self.server.Gst.Buffer.new_wrapped(to_i420(image).tobytes())
        for src in srcs:
            src.emit("push-buffer", buf)
        self.frames_pushed += 1

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with self._lock:
            srcs, self._srcs = self._srcs, []
        for src in srcs:
            src.emit("end-of-stream")
        if self.size is not None:
            self.server._unmount(self.path)
