"""Video outputs, one module per kind, found by kind through the registry (`outputs.registry`).

    base          the `Sink` interface, `SinkError`, `fit` (frame to a fixed encoder size), `to_i420`
    encode        the one PyAV H.264 encoder setup every in-process encoder uses
    video_file    `save`: annotated video to an mp4/mkv/avi/mov file, written atomically
    jsonl         `jsonl`: results as JSON lines
    rtsp_publish  `output`: publish to an RTSP server
    recording     `record`: crash-safe fragmented-MP4 segments with retention
    rtsp_server   `serve`: the built-in RTSP server

The built-in kinds are registered below in the order the supervisor opened them before the registry
(publish, file, JSON lines, segments, served stream). A new kind: a module with its Sink, and a
`register_output("kind", factory)` here (or, for a plug-in outside the package, wherever it is imported).
"""

from __future__ import annotations

from yolovino.inference.outputs.base import Sink
from yolovino.inference.outputs.jsonl import JsonlSink
from yolovino.inference.outputs.recording import SegmentRecorder
from yolovino.inference.outputs.registry import OutputRequest, register_output
from yolovino.inference.outputs.rtsp_publish import RtspSink
from yolovino.inference.outputs.video_file import VideoFileSink


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
    return SegmentRecorder(
        req.plan.record, req.source_id, fps=req.fps, segment_seconds=shared.segment_seconds, retention=shared.retention
    )


@register_output("serve")
def _serve(req: OutputRequest) -> Sink | None:
    server = req.shared.server
    if not req.plan.serve or server is None:
        return None
    return server.stream(req.plan.name or req.source_id, req.fps, source_id=req.source_id)
