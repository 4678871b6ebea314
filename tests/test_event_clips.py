"""Event clips (outputs/clips.py, the hub's clip plumbing in notify/hub.py) on the sample clips, through the
real pipeline, detector, analytics stage and event hub: every event of a chosen kind carries its clip's
path before any consumer sees it; each clip is a file ffprobe reads, starting on a keyframe, lasting
pre_s + post_s (merged events: their span plus both) within one keyframe interval; consumers that define
`clip_ready` are told once per clip, on their own thread, when the file is complete under that path."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fixtures_models import cut_clip
from test_record_copy import probe, source_facts
from waiting import wait_until

from yolovino.inference import AsyncEngine, InferenceConfig, YoloModel
from yolovino.inference.analytics.config import parse_analytics, resolve_classes
from yolovino.inference.analytics.stage import Analytics
from yolovino.inference.core.events import Event, EventKind
from yolovino.inference.notify.base import Delivery, register_consumer
from yolovino.inference.notify.config import ClipOutput
from yolovino.inference.notify.hub import EventHub
from yolovino.inference.outputs.clips import ClipRecorder
from yolovino.inference.pipeline import Pipeline
from yolovino.inference.sources import open_source

pytestmark = pytest.mark.slow


@register_consumer("clip_watch", config=str)
class ClipWatch:
    """A consumer that keeps what it is given: events (with their clip path as delivered) and clip notices."""

    seen: dict[str, ClipWatch] = {}

    def __init__(self, key: str):
        self.name = f"clip_watch:{key}"
        self.events: list[Event] = []
        self.ready: list[tuple[str, list[Event], bool, str]] = []  # path, events, file there, thread
        ClipWatch.seen[key] = self

    def handle(self, delivery: Delivery) -> None:
        self.events += delivery.events

    def clip_ready(self, source: str, path: str, events: list[Event]) -> None:
        self.ready.append((path, events, Path(path).is_file(), threading.current_thread().name))

    def close(self) -> None:
        pass


def run(detect_ir, clip: Path, analytics: dict, packets: bool) -> tuple[ClipWatch, ClipRecorder]:
    model = YoloModel.load(detect_ir, InferenceConfig())
    cfg = resolve_classes(parse_analytics(analytics), model.names)
    src = open_source(str(clip), live=False, name="cam")
    hub = EventHub.build({"cam": cfg.events})
    assert cfg.events.clips is not None
    clips = ClipRecorder("cam", cfg.events.clips, tap=src.packets if packets else None, fps=src.fps or 25.0)
    hub.attach_clips("cam", clips)
    stage = Analytics({"cam": cfg}, hub=hub)
    with AsyncEngine(model) as engine:
        for _ in Pipeline(engine, [src], sinks=[clips], analytics=stage).run():
            pass  # the pipeline closes the clips when the file ends: the open clip is finished then
    stage.close()  # closes the hub: every queued delivery and clip notice reaches the consumer first
    return ClipWatch.seen[str(cfg.events.config_of("clip_watch"))], clips


def check_clips(watch: ClipWatch, recorder: ClipRecorder, pre: float, post: float, end: float, gop: float, fps: float):
    """Each event's clip exists, is announced once with exactly the events that name it, and spans
    [first event - pre, last event + post] (within the file) up to one keyframe interval earlier."""
    by_clip: dict[str, list[Event]] = {}
    for e in watch.events:
        assert e.clip is not None, f"{e.kind} at {e.stream_time:.2f} s was delivered without its clip"
        by_clip.setdefault(e.clip, []).append(e)
    assert sorted(by_clip) == sorted(str(p) for p in recorder.clips)
    assert sorted(p for p, *_ in watch.ready) == sorted(by_clip), "one clip_ready per clip"
    report = []
    for path, events, there, thread in watch.ready:
        assert there and thread.startswith("events-clip_watch"), (path, there, thread)
        assert [id(e) for e in events] == [id(e) for e in by_clip[path]]
        f = probe(Path(path))
        first, last = events[0].stream_time, events[-1].stream_time
        want = min(end, last + post) - max(0.0, first - pre)
        report.append(f"{Path(path).name}: events at {[round(e.stream_time, 2) for e in events]}, {f}")
        assert f["key_first"] and f["packets"] > 0, report[-1]
        assert want - 1.5 / fps <= f["duration"] <= want + gop + 1.5 / fps, (want, report[-1])
    print("\n".join(report))
    return by_clip


def test_car_clip_line_crossings_get_packet_copied_clips(detect_ir, require_asset, tmp_path):
    """9.6 s to 21.6 s of the car clip (stream copy, keyframes every 4.8 s): a silver car drives down past a
    red car driving up; each crosses the middle line once, 0.4 s apart (tests/test_analytics_clips.py)."""
    clip = cut_clip(require_asset("videos/car-detection.mp4"), tmp_path / "cars.mp4", start=9.6, seconds=12)
    _, gop = source_facts(clip)
    facts = probe(clip)
    analytics = {
        "lines": [{"name": "middle", "points": [[0.0, 0.5], [1.0, 0.5]], "anchor": "center"}],
        "events": {"clip_watch": "cars", "clips": {"dir": str(tmp_path / "clips"), "pre_s": 2, "post_s": 2}},
    }
    watch, recorder = run(detect_ir, clip, analytics, packets=True)
    crossed = [e for e in watch.events if e.kind == EventKind.CROSSED]
    assert sorted(e.direction for e in crossed) == ["in", "out"], [(e.stream_time, e.direction) for e in crossed]
    by_clip = check_clips(_only(watch, EventKind.CROSSED), recorder, 2, 2, facts["duration"], gop, 12.5)
    assert [len(v) for v in by_clip.values()] == [2], "the two cars passing each other share one clip"
    assert all(probe(p)["size"] == facts["size"] and probe(p)["codec"] == "h264" for p in recorder.clips)
    assert recorder.mode == "copy" and recorder.dropped == 0
    assert not list(tmp_path.rglob("*.part"))


def test_gif_frames_are_encoded_into_clips(detect_ir, require_asset, tmp_path):
    """A source that gives pictures only (a GIF here, as webcams and image folders do): clips are encoded
    from the ring of frames; every frame is a keyframe for them."""
    clip = require_asset("videos/person-bicycle-car-detection.gif")
    analytics = {
        "events": {
            "clip_watch": "gif",
            "clips": {"dir": str(tmp_path), "pre_s": 0.5, "post_s": 1.0, "kinds": ["track_appeared"]},
        }
    }
    facts = probe(clip)
    watch, recorder = run(detect_ir, clip, analytics, packets=False)
    assert recorder.mode == "frames" and watch.events
    check_clips(_only(watch, EventKind.APPEARED), recorder, 0.5, 1.0, facts["duration"], 1 / 12, 12)
    assert all(probe(p)["size"] == facts["size"] and probe(p)["codec"] == "h264" for p in recorder.clips)
    assert watch.events[0].to_dict()["clip"] == watch.events[0].clip


def _only(watch: ClipWatch, kind: EventKind) -> ClipWatch:
    """The watch with only the events of `kind` (the others were delivered without a clip, as configured)."""
    others = [e for e in watch.events if e.kind != kind]
    assert all(e.clip is None for e in others), "only the chosen kinds get a clip"
    view = ClipWatch.__new__(ClipWatch)
    view.events, view.ready = [e for e in watch.events if e.kind == kind], watch.ready
    return view


def test_rtsp_clip_starts_on_a_keyframe_before_the_event(rtsp_server, tmp_path):
    """A live camera (tests/rtsp_server.py): the event's stream time (a decoded frame's pts) and the packets'
    times are one timeline, so the clip spans pre_s + post_s up to one keyframe interval (1 s) more. The
    event is made at a frame the reader delivered (no detector: this checks the timeline, not detection)."""
    _, gop = source_facts(rtsp_server.clip)
    src = open_source(rtsp_server.url(), live=True, name="cam").start()
    ready: list[tuple[str, list[Event]]] = []
    try:
        clips = ClipRecorder("cam", ClipOutput(dir=str(tmp_path), pre_s=1.5, post_s=1.5), tap=src.packets)
        clips.on_ready = lambda source, path, events: ready.append((path, events))
        try:
            frame, first = None, None
            for _ in range(100):  # 2.5 s of frames at 10 fps first, so the ring holds the pre-roll
                frame = src.read(timeout=5)
                assert frame is not None
                if frame.pts is None:
                    continue  # a stream joined mid-GOP: FFmpeg stamps no pts on the first frame
                first = frame.pts if first is None else first
                if frame.pts - first > 2.5:
                    break
            assert frame is not None and frame.pts is not None and first is not None and frame.pts - first > 2.5
            event = Event(EventKind.CROSSED, 0.0, "cam", 1, 2, "car", 0.9, (0, 0, 1, 1), frame.index, frame.pts)
            # a second event stamped with a capture time (a frame FFmpeg gave no pts): another clock, taken
            # as the ring's newest media time, so it joins the clip instead of holding one open for hours
            other = Event(EventKind.ENTERED, 0.0, "cam", 1, 2, "car", 0.9, (0, 0, 1, 1), frame.index, frame.captured_at)
            clips.mark([event, other])
            assert event.clip is not None and not Path(event.clip).exists() and other.clip == event.clip
            assert wait_until(lambda: ready, 30), "the clip is finished once 1.5 s of packets followed the event"
        finally:
            clips.close()
    finally:
        src.close()
    assert ready == [(event.clip, [event, other])]
    f = probe(Path(event.clip))
    print(f"event at {event.stream_time:.2f} s: {f}")
    assert f["key_first"] and f["size"] == (768, 432) and f["codec"] == "h264"
    assert 3.0 - 0.15 <= f["duration"] <= 3.0 + gop + 0.5, f  # + what the reader was ahead at the mark
