#!/usr/bin/python3
"""Local RTSP test server (GStreamer rtsp-server through Debian's python3-gi). Run with /usr/bin/python3.

    /usr/bin/python3 tests/rtsp_server.py CLIP.mp4 PORT [--host 127.0.0.1]

Mounts:
  /x         loops CLIP (H.264 mp4, video only) forever, as a live camera would
  /out       accepts one publisher (ANNOUNCE/RECORD, H.264, no audio; UDP or TCP)
  /out-live  re-serves what is published on /out (a RECORD mount cannot be read directly)

Prints "READY rtsp://HOST:PORT" on stdout once listening. SIGTERM/SIGINT stop it at once.
Recipe: /work/shared/TOOLING.md, need 1.
"""

import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

H264 = "video/x-h264,stream-format=byte-stream,alignment=au"
PLAY = (
    "( appsrc name=src is-live=true format=time do-timestamp=false caps="
    + H264
    + " ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
)


class Bridge:
    """appsink of a producer pipeline -> appsrc of every media currently playing a shared play factory."""

    def __init__(self):
        self.srcs = []

    def factory(self):
        f = GstRtspServer.RTSPMediaFactory()
        f.set_launch(PLAY)
        f.set_shared(True)
        f.connect("media-configure", self._configure)
        return f

    def _configure(self, _factory, media):
        src = media.get_element().get_by_name("src")
        self.srcs.append(src)
        media.connect("unprepared", lambda *_: self.srcs.remove(src) if src in self.srcs else None)

    def on_sample(self, sink):
        sample = sink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.OK
        buf = sample.get_buffer()
        for src in list(self.srcs):
            clock = src.get_clock()
            if clock is None:
                continue
            b = buf.copy()
            rt = clock.get_time() - src.get_base_time()
            offset = 0
            if buf.pts != Gst.CLOCK_TIME_NONE and buf.dts != Gst.CLOCK_TIME_NONE:
                offset = buf.pts - buf.dts
            b.dts = rt
            b.pts = rt + offset
            b.duration = Gst.CLOCK_TIME_NONE
            src.emit("push-buffer", b)
        return Gst.FlowReturn.OK


def main():
    args = sys.argv[1:]
    host = "127.0.0.1"
    if "--host" in args:
        i = args.index("--host")
        host = args[i + 1]
        del args[i : i + 2]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    clip, port = args
    Gst.init(None)

    srv = GstRtspServer.RTSPServer()
    srv.set_address(host)
    srv.set_service(str(port))
    srv.get_thread_pool().set_max_threads(16)  # default 1 deadlocks a TCP publisher + a waiting reader
    mounts = srv.get_mount_points()

    # /x: loop the clip
    loop_bridge = Bridge()
    mounts.add_factory("/x", loop_bridge.factory())
    looper = Gst.parse_launch(
        f"filesrc location={clip} ! qtdemux ! h264parse config-interval=-1 ! {H264} ! "
        "appsink name=sink emit-signals=true sync=true"
    )
    looper.get_by_name("sink").connect("new-sample", loop_bridge.on_sample)
    bus = looper.get_bus()
    bus.add_signal_watch()

    def on_message(_bus, msg):
        if msg.type == Gst.MessageType.EOS:
            looper.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0)
        elif msg.type == Gst.MessageType.ERROR:
            err, _ = msg.parse_error()
            print(f"loop error: {err.message}", file=sys.stderr, flush=True)

    bus.connect("message", on_message)
    looper.set_state(Gst.State.PLAYING)

    # /out (publish) -> /out-live (read)
    out_bridge = Bridge()
    mounts.add_factory("/out-live", out_bridge.factory())
    rec = GstRtspServer.RTSPMediaFactory()
    rec.set_transport_mode(GstRtspServer.RTSPTransportMode.RECORD)
    rec.set_launch(
        "( rtph264depay name=depay0 ! h264parse config-interval=-1 ! "
        + H264
        + " ! appsink name=sink emit-signals=true sync=false )"
    )
    rec.set_shared(False)

    def rec_configure(_factory, media):
        media.get_element().get_by_name("sink").connect("new-sample", out_bridge.on_sample)

    rec.connect("media-configure", rec_configure)
    mounts.add_factory("/out", rec)

    if srv.attach(None) == 0:
        print(f"cannot bind {host}:{port}", file=sys.stderr, flush=True)
        sys.exit(1)
    main_loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, sig, lambda *_: (main_loop.quit(), False)[1])
    print(f"READY rtsp://{host}:{port}", flush=True)
    main_loop.run()
    looper.set_state(Gst.State.NULL)


if __name__ == "__main__":
    main()
