"""Video outputs, one module per kind, found by kind through the registry (`outputs.registry`).

    base          the `Sink` interface, `SinkError`, `fit` (frame to a fixed encoder size), `to_i420`
    encode        the one PyAV H.264 encoder setup every in-process encoder uses
    video_file    `save`: annotated video to an mp4/mkv/avi/mov file, written atomically
    jsonl         `jsonl`: results as JSON lines
    rtsp_publish  `output`: publish to an RTSP server
    recording     `record`: crash-safe fragmented-MP4 segments with retention (encoded frames)
    record_copy   `record` by copy: the same segments from the camera's own packets
    copy          an mp4 written from packets (recording by copy, event clips)
    rtsp_server   `serve`: the built-in RTSP server
    clips         event clips with pre- and post-roll (`analytics: {events: {clips: ...}}`)

The built-in kinds are registered below in the order the supervisor opened them before the registry
(publish, file, JSON lines, segments, served stream). A new kind: a module with its Sink, and a
`register_output("kind", factory)` here (or, for a plug-in outside the package, wherever it is imported).
"""

from __future__ import annotations

from yolovino.inference.outputs.base import Sink
from yolovino.inference.outputs.clips import ClipRecorder
from yolovino.inference.outputs.jsonl import JsonlSink
from yolovino.inference.outputs.record_copy import PacketRecorder
from yolovino.inference.outputs.recording import SegmentRecorder, record_by_copy
from yolovino.inference.outputs.registry import OutputRequest, register_output
from yolovino.inference.outputs.rtsp_publish import RtspSink
from yolovino.inference.outputs.video_file import VideoFileSink
from yolovino.inference.sources import open_packet_source


@register_output("output")
def _publish(req: OutputRequest) -> Sink | None:
    return RtspSink(req.plan.output, req.fps, source_id=req.source_id) if req.plan.output else None


@register_output("save")
def _video_file(req: OutputRequest) -> Sink | None:
    return VideoFileSink(req.plan.save, req.fps, source_id=req.source_id) if req.plan.save else None


@register_output("jsonl")
def _jsonl(req: OutputRequest) -> Sink | None:
    return JsonlSink(req.plan.jsonl, source_id=req.source_id) if req.plan.jsonl else None


@register_output("record")
def _record(req: OutputRequest) -> Sink | None:
    if req.plan.record is None:
        return None
    shared = req.shared
    if req.plan.record_url:  # a sub-stream camera: the main stream is only demuxed, by its own reader
        main = open_packet_source(req.plan.record_url, f"{req.source_id}-record")
        return PacketRecorder(
            req.plan.record,
            req.source_id,
            main.packets,
            segment_seconds=shared.segment_seconds,
            retention=shared.retention,
            owned=main,
        )
    if record_by_copy(shared.record_mode, req.source, req.plan.key):
        return PacketRecorder(
            req.plan.record,
            req.source_id,
            req.source.packets,
            segment_seconds=shared.segment_seconds,
            retention=shared.retention,
        )
    return SegmentRecorder(
        req.plan.record, req.source_id, fps=req.fps, segment_seconds=shared.segment_seconds, retention=shared.retention
    )


@register_output("clips")
def _clips(req: OutputRequest) -> Sink | None:
    """Event clips (`analytics: {events: {clips: ...}}`): packet copies where the source is H.264/H.265,
    encoded frames otherwise; the supervisor attaches the recorder to the event hub."""
    analytics = getattr(req.plan, "analytics", None)
    cfg = analytics.events.clips if analytics is not None else None
    if cfg is None:
        return None
    tap = req.source.packets if req.source is not None and record_by_copy("auto", req.source) else None
    return ClipRecorder(req.source_id, cfg, tap=tap, fps=req.fps)


@register_output("serve")
def _serve(req: OutputRequest) -> Sink | None:
    server = req.shared.server
    if not req.plan.serve or server is None:
        return None
    return server.stream(req.plan.name or req.source_id, req.fps, source_id=req.source_id)
