#!/usr/bin/python3
"""Local RTSP test server (GStreamer rtsp-server through Debian's python3-gi). Run with /usr/bin/python3.

    /usr/bin/python3 tests/rtsp_server.py CLIP [CLIP ...] PORT [--host 127.0.0.1] [--corrupt N]

Mounts:
  /x         loops the current CLIP forever, as a live camera would (mp4, H.264 or H.265, video only; all
             CLIPs must share one codec)
  /out       accepts one publisher (ANNOUNCE/RECORD, H.264, no audio; UDP or TCP)
  /out-live  re-serves what is published on /out (a RECORD mount cannot be read directly)

Faults, by signal (each prints one line on stderr):
  SIGUSR1    /x switches to the next CLIP at once (cyclic): a camera whose resolution or stream changes
             on the same path, as when its settings are edited while clients are connected
  SIGUSR2    bytes are flipped in the slice data of the next N (--corrupt, default 10) non-key access
             units sent on /x, every other one heavily: a burst of corrupt packets, some that decoders
             reject and some they conceal; keyframes stay intact, so decoders recover at the next one

Prints "READY rtsp://HOST:PORT CODEC" on stdout once listening. SIGTERM/SIGINT stop it at once.
Recipe: /work/shared/TOOLING.md, need 1.
"""

import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

CAPS = {
    "h264": "video/x-h264,stream-format=byte-stream,alignment=au",
    "h265": "video/x-h265,stream-format=byte-stream,alignment=au",
}


def play_launch(codec):
    # SPS/PPS (and VPS) go in front of every keyframe from the parser, once per access unit. Not from the
    # payloader: rtp*pay config-interval=-1 repeats them before every IDR *slice*, so a keyframe sent as
    # several slices (x264's sliced threads, many cameras) reaches FFmpeg as several pictures, each with
    # only its own slices decoded, and every frame up to the next keyframe is predicted from a broken one
    return (
        f"( appsrc name=src is-live=true format=time do-timestamp=false caps={CAPS[codec]} ! "
        f"{codec}parse config-interval=-1 ! rtp{codec}pay name=pay0 pt=96 )"
    )


def probe_codec(clip):
    """'h264' or 'h265' from the clip's video track caps (demux only: nothing is decoded)."""
    pipe = Gst.parse_launch(
        f'filesrc location="{clip}" ! qtdemux ! capsfilter caps="video/x-h264;video/x-h265" ! fakesink name=fs'
    )
    try:
        pipe.set_state(Gst.State.PAUSED)
        pipe.get_state(5 * Gst.SECOND)
        caps = pipe.get_by_name("fs").get_static_pad("sink").get_current_caps()
    finally:
        pipe.set_state(Gst.State.NULL)
    if caps is None:
        raise SystemExit(f"{clip}: no H.264 or H.265 video track in an mp4")
    return caps.get_structure(0).get_name().split("-")[-1]


def is_slice(nal_header, codec):
    """A coded slice that is not part of a keyframe (those stay intact so that decoders can recover)."""
    if codec == "h264":
        return nal_header & 0x1F == 1
    return (nal_header >> 1) & 0x3F <= 9  # H.265 TRAIL/TSA/STSA/RADL/RASL


def corrupted(data, codec, heavy):
    """The access unit with bytes of every slice NAL inverted: heavy, every 7th byte after the first few
    (decoders reject such a packet); else six bytes in the second half (decoders conceal the damage)."""
    out = bytearray(data)
    starts, i = [], out.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i + 3)
        i = out.find(b"\x00\x00\x01", i + 3)
    for n, start in enumerate(starts):
        end = starts[n + 1] - 3 if n + 1 < len(starts) else len(out)
        if end - start > 32 and is_slice(out[start], codec):
            first = start + 4 if heavy else start + (end - start) // 2
            for i in range(first, end, 7 if heavy else max(1, (end - first) // 6)):
                out[i] ^= 0xFF
    return bytes(out)


class Bridge:
    """appsink of a producer pipeline -> appsrc of every media currently playing a shared play factory."""

    def __init__(self, codec="h264"):
        self.codec = codec
        self.srcs = []
        self.corrupt_left = 0  # access units still to corrupt (SIGUSR2)

    def factory(self):
        f = GstRtspServer.RTSPMediaFactory()
        f.set_launch(play_launch(self.codec))
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
        payload = None
        if self.corrupt_left > 0 and buf.has_flags(Gst.BufferFlags.DELTA_UNIT):
            self.corrupt_left -= 1
            payload = corrupted(buf.extract_dup(0, buf.get_size()), self.codec, heavy=self.corrupt_left % 2 == 0)
        for src in list(self.srcs):
            clock = src.get_clock()
            if clock is None:
                continue
            b = buf.copy() if payload is None else Gst.Buffer.new_wrapped(payload)
            rt = clock.get_time() - src.get_base_time()
            offset = 0
            if buf.pts != Gst.CLOCK_TIME_NONE and buf.dts != Gst.CLOCK_TIME_NONE:
                offset = buf.pts - buf.dts
            b.dts = rt
            b.pts = rt + offset
            b.duration = Gst.CLOCK_TIME_NONE
            if payload is not None:
                b.set_flags(Gst.BufferFlags.DELTA_UNIT)
            src.emit("push-buffer", b)
        return Gst.FlowReturn.OK


class Looper:
    """Plays one clip after another into a Bridge: each clip loops until `next()` is called."""

    def __init__(self, clips, codec, bridge):
        self.clips, self.codec, self.bridge = clips, codec, bridge
        self.current = -1
        self.pipe = None

    def next(self):
        self.stop()
        self.current = (self.current + 1) % len(self.clips)
        self.pipe = Gst.parse_launch(
            f'filesrc location="{self.clips[self.current]}" ! qtdemux ! {self.codec}parse config-interval=-1 ! '
            f"{CAPS[self.codec]} ! appsink name=sink emit-signals=true sync=true"
        )
        self.pipe.get_by_name("sink").connect("new-sample", self.bridge.on_sample)
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self._on_message, self.pipe)
        self.pipe.set_state(Gst.State.PLAYING)

    def _on_message(self, _bus, msg, pipe):
        if pipe is not self.pipe:
            return
        if msg.type == Gst.MessageType.EOS:
            pipe.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT, 0)
        elif msg.type == Gst.MessageType.ERROR:
            err, _ = msg.parse_error()
            print(f"loop error: {err.message}", file=sys.stderr, flush=True)

    def stop(self):
        if self.pipe is not None:
            self.pipe.get_bus().remove_signal_watch()
            self.pipe.set_state(Gst.State.NULL)


def option(args, name, default):
    if name in args:
        i = args.index(name)
        value = args[i + 1]
        del args[i : i + 2]
        return value
    return default


def main():
    args = sys.argv[1:]
    host = option(args, "--host", "127.0.0.1")
    burst = int(option(args, "--corrupt", "10"))
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    *clips, port = args
    Gst.init(None)
    codecs = {probe_codec(c) for c in clips}
    if len(codecs) != 1:
        raise SystemExit(f"clips mix codecs ({', '.join(sorted(codecs))}); serve one codec per server")
    codec = codecs.pop()

    srv = GstRtspServer.RTSPServer()
    srv.set_address(host)
    srv.set_service(str(port))
    srv.get_thread_pool().set_max_threads(16)  # default 1 deadlocks a TCP publisher + a waiting reader
    mounts = srv.get_mount_points()

    # /x: loop the clips, one at a time
    loop_bridge = Bridge(codec)
    mounts.add_factory("/x", loop_bridge.factory())
    looper = Looper(clips, codec, loop_bridge)
    looper.next()

    # /out (publish, H.264) -> /out-live (read)
    out_bridge = Bridge("h264")
    mounts.add_factory("/out-live", out_bridge.factory())
    rec = GstRtspServer.RTSPMediaFactory()
    rec.set_transport_mode(GstRtspServer.RTSPTransportMode.RECORD)
    rec.set_launch(
        "( rtph264depay name=depay0 ! h264parse config-interval=-1 ! "
        + CAPS["h264"]
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

    def switch(*_):
        looper.next()
        print(f"switched /x to {clips[looper.current]}", file=sys.stderr, flush=True)
        return True

    def corrupt(*_):
        loop_bridge.corrupt_left = burst
        print(f"corrupting the next {burst} non-key access units on /x", file=sys.stderr, flush=True)
        return True

    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGUSR1, switch)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGUSR2, corrupt)
    print(f"READY rtsp://{host}:{port} {codec}", flush=True)
    main_loop.run()
    looper.stop()


if __name__ == "__main__":
    main()
