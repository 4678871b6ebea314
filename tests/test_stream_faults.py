"""Faults a real camera stream shows besides outages, against the local RTSP server (tests/rtsp_server.py):
its resolution changes mid-stream on the same path, a burst of corrupt packets, and a camera that comes
back from a reboot sending H.265 instead of H.264. Short versions of the rows in bench/reliability.py.
"""

from __future__ import annotations

import logging
import time

import av
import numpy as np
import pytest
from pipeline_runner import Runner, read_frames
from waiting import wait_until

from yolovino.inference import AsyncEngine, InferenceConfig, YoloModel
from yolovino.inference.draw.annotate import Annotator
from yolovino.inference.outputs.base import NullSink
from yolovino.inference.outputs.rtsp_publish import RtspSink
from yolovino.inference.outputs.video_file import VideoFileSink
from yolovino.inference.pipeline import Pipeline
from yolovino.inference.service.metrics import Metrics
from yolovino.inference.sources import open_source

pytestmark = pytest.mark.rtsp

FAST = dict(open_timeout=5, read_timeout=2, backoff=(0.25, 2.0))
SIZES = [(432, 768), (720, 1280), (360, 640)]  # (height, width) of the clips /x plays in turn


@pytest.fixture(scope="module")
def engine(detect_ir):
    return AsyncEngine(YoloModel.load(detect_ir, InferenceConfig()))


def _decoded_sizes(path) -> tuple[int, set[tuple[int, int]]]:
    with av.open(str(path)) as c:
        shapes = [(f.height, f.width) for f in c.decode(video=0)]
    return len(shapes), set(shapes)


def test_resolution_change_mid_stream(engine, switching_server, tmp_path):
    """768x432 -> 1280x720 -> 640x360 -> 768x432 on one path: each size gets its graph (the first is reused
    when it comes back), results stay in frame pixels, both outputs keep their first size, no reconnect."""
    src = open_source(switching_server.url("x"), **FAST)
    video = tmp_path / "out.mp4"
    file_sink, rtsp_sink = VideoFileSink(video, 10), RtspSink(switching_server.url("out"), fps=10)
    gaps = []
    with Runner(Pipeline(engine, [src], [file_sink, rtsp_sink], Annotator()), keep=True) as run:
        assert run.wait_frames(5, 20), f"no frames from /x ({src.stats})"
        for hw in [*SIZES[1:], SIZES[0]]:
            last_before, switched = run.times[-1], time.monotonic()
            switching_server.switch()

            def arrived(hw=hw, since=switched):
                return [t for t, fr in zip(run.times, run.results) if t > since and fr.frame.image.shape[:2] == hw]

            assert wait_until(lambda: len(arrived()) >= 5, 20), f"no {hw[1]}x{hw[0]} frames ({src.stats})"
            gaps.append(round((arrived()[0] - last_before) * 10) - 1)
        published = read_frames(switching_server.url("out-live"), 3)
    assert run.error is None and src.stats.outages == 0 and src.stats.reconnects == 0
    assert sorted(engine.frame_sizes) == sorted(SIZES), "one graph per size, the first one reused"
    seen = set()
    for fr in run.results:
        h, w = fr.frame.image.shape[:2]
        seen.add((h, w))
        assert fr.annotated.shape == fr.frame.image.shape
        boxes = fr.results.boxes
        assert ((boxes >= -1) & (boxes <= [w + 1, h + 1, w + 1, h + 1])).all(), "boxes in this frame's pixels"
    assert seen == set(SIZES)
    for hw in SIZES:  # the person in view is found at every size
        found = [bool((fr.results.class_ids == 0).any()) for fr in run.results if fr.frame.image.shape[:2] == hw]
        assert sum(found) >= len(found) // 2, f"person rarely found at {hw}: {sum(found)} of {len(found)}"
    assert all(f.shape == (432, 768, 3) for f in published), "the published stream keeps its first size"
    n, shapes = _decoded_sizes(video)
    assert n == file_sink.frames == len(run.results) and shapes == {(432, 768)}
    print(f"frames lost at each switch (10 fps): {gaps}")


def test_corrupt_burst_counted_and_recovered(engine, switching_server, caplog):
    """Bytes flipped in 6 access units: counted as decode errors (one log line), no outage, no stall; the
    errors stop at the next keyframe."""
    caplog.set_level(logging.INFO)
    metrics = Metrics()
    src = open_source(switching_server.url("x"), **FAST)
    with Runner(Pipeline(engine, [src], [NullSink()], metrics=metrics)) as run:
        assert run.wait_frames(5, 20), f"no frames from /x ({src.stats})"
        assert src.stats.decode_errors == 0
        burst_at = time.monotonic()
        switching_server.corrupt()
        assert wait_until(lambda: src.stats.decode_errors > 0, 15), "the corrupt burst was not counted"
        last = {"errors": src.stats.decode_errors, "frames": len(run.times)}

        def clean_for(n: int) -> bool:
            if src.stats.decode_errors != last["errors"]:
                last.update(errors=src.stats.decode_errors, frames=len(run.times))
            return len(run.times) - last["frames"] >= n

        # 6 damaged frames, then whatever refers to them until the next keyframe (every 10 frames)
        assert wait_until(lambda: clean_for(20), 30), f"decode errors did not stop ({src.stats})"
        times = [t for t in run.times if t >= burst_at]
    assert run.error is None
    assert src.stats.outages == 0 and src.stats.reconnects == 0 and src.stats.state == "closed"
    assert 0 < src.stats.decode_errors <= 30
    assert max(np.diff(times)) < 1.5, "frames kept coming through the burst"
    text = metrics.render()
    assert f'yolo_decode_errors_total{{source="{src.id}"}} {src.stats.decode_errors}' in text
    lines = [r for r in caplog.records if "corrupt data" in r.getMessage()]
    assert len(lines) == 1, "one log line per burst, not one per packet"


def test_camera_back_with_h265_after_reconnect(engine, switching_server, stream_clips, tmp_path, caplog):
    """The camera reboots and comes back on the same URL sending H.265: the source reconnects, decodes the
    new codec and the pipeline (same graph: same size) carries on into the same output file."""
    caplog.set_level(logging.INFO)
    src = open_source(switching_server.url("x"), **FAST)
    video = tmp_path / "out.mp4"
    sink = VideoFileSink(video, 10)
    with Runner(Pipeline(engine, [src], [sink], Annotator()), keep=True) as run:
        assert run.wait_frames(5, 20), f"no frames from /x ({src.stats})"
        assert src.codec == "h264"
        switching_server.kill()
        assert wait_until(lambda: src.stats.state == "reconnecting", 10), "outage not detected"
        switching_server.start(clips=[stream_clips["h265"]])
        restarted = time.monotonic()
        assert switching_server.codec == "h265"
        assert run.wait_frames(10, 30, after=restarted), f"no frames after the camera came back ({src.stats})"
    assert run.error is None and src.stats.reconnects == 1 and src.codec == "hevc"
    after = [fr for t, fr in zip(run.times, run.results) if t > restarted]
    assert all(fr.frame.image.shape == (432, 768, 3) for fr in after)
    assert sum(bool((fr.results.class_ids == 0).any()) for fr in after) >= len(after) // 2, "person not found"
    assert any("codec changed h264 -> hevc" in r.getMessage() for r in caplog.records)
    n, shapes = _decoded_sizes(video)
    assert n == sink.frames == len(run.results) and shapes == {(432, 768)}
