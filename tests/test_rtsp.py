"""Live RTSP against a real local server (tests/rtsp_server.py): read -> infer -> publish -> read back,
outages (server killed, frozen with SIGSTOP) detected and recovered without help, credentials never logged.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

import av
import numpy as np
import pytest
from fixtures_models import require_gst, transcode
from pipeline_runner import Runner, read_frames
from rtsp_control import RtspServer, free_port
from waiting import wait_until

from yolovino.inference import AsyncEngine, InferenceConfig, YoloModel
from yolovino.inference.core.errors import SourceError
from yolovino.inference.draw.annotate import Annotator, color_for
from yolovino.inference.outputs.base import NullSink
from yolovino.inference.outputs.rtsp_publish import RtspSink
from yolovino.inference.pipeline import Pipeline
from yolovino.inference.sources import open_source

pytestmark = pytest.mark.rtsp

SECRET = "pa55word"
FAST = dict(open_timeout=5, read_timeout=2, backoff=(0.25, 2.0))


@pytest.fixture(scope="module")
def engine(detect_ir):
    return AsyncEngine(YoloModel.load(detect_ir, InferenceConfig()))


def _near(img: np.ndarray, bgr, tol: int = 45) -> int:
    return int((np.abs(img.astype(int) - np.array(bgr)).max(axis=2) < tol).sum())


def test_rtsp_read_infer_publish_read_back(engine, rtsp_server):
    src = open_source(rtsp_server.url("x"), **FAST)
    sink = RtspSink(rtsp_server.url("out"), fps=10)
    with Runner(Pipeline(engine, [src], [sink], Annotator())) as run:
        assert run.wait_frames(5, 20), f"no frames from /x ({src.stats})"
        published = read_frames(rtsp_server.url("out-live"), 10)
        raw = read_frames(rtsp_server.url("x"), 10)
    assert len(published) == 10 and published[0].shape == (432, 768, 3)
    person = color_for(0)
    drawn = np.median([_near(f, person) for f in published])
    plain = np.median([_near(f, person) for f in raw])
    assert drawn > plain + 200, (drawn, plain)  # person boxes/labels in the class colour
    # the FPS/latency overlay: a black box with white text in the top-left corner
    corner = np.stack(published)[:, 6:20, 6:60].astype(int)
    assert (corner.max(axis=3) < 40).any() and (corner.min(axis=3) > 200).any()
    assert sink.frames_sent > 10 and run.error is None


def test_server_killed_and_restarted_pipeline_resumes(engine, rtsp_server, caplog):
    caplog.set_level(logging.INFO)
    src = open_source(rtsp_server.url("x", auth=f"viewer:{SECRET}"), **FAST)
    with Runner(Pipeline(engine, [src], [NullSink()])) as run:
        assert run.wait_frames(5, 20)
        rtsp_server.kill()
        assert wait_until(lambda: src.stats.state == "reconnecting", 20), "outage not detected within 20 s"
        # the outage lasts until the source has failed to reconnect twice (it keeps trying while the camera is away)
        assert wait_until(lambda: src.stats.failed_attempts >= 2, 20), f"no reconnect attempts ({src.stats})"
        rtsp_server.start()
        restarted = time.monotonic()
        assert run.wait_frames(5, 30, after=restarted), f"did not resume ({src.stats})"
        resume_s = time.monotonic() - restarted
    assert src.stats.outages == 1 and src.stats.reconnects == 1
    lost = [r for r in caplog.records if "stream lost" in r.getMessage()]
    assert len(lost) == 1, "one log line per outage, not per attempt"
    assert any("restored" in r.getMessage() for r in caplog.records)
    assert SECRET not in caplog.text and SECRET not in str(src.stats.as_dict())
    assert "viewer" not in caplog.text
    print(f"resumed {resume_s:.1f} s after the restart")


def test_frozen_stream_detected_and_recovered(engine, rtsp_server):
    src = open_source(rtsp_server.url("x"), **FAST)
    with Runner(Pipeline(engine, [src], [NullSink()])) as run:
        assert run.wait_frames(5, 20)
        rtsp_server.signal(signal.SIGSTOP)
        frozen = time.monotonic()
        try:
            detected = wait_until(lambda: src.stats.state != "running", 20)
            detect_s = time.monotonic() - frozen
            assert detected and src.stats.state == "reconnecting", f"frozen stream not detected ({src.stats})"
        finally:
            rtsp_server.signal(signal.SIGCONT)
        thawed = time.monotonic()
        assert run.wait_frames(5, 30, after=thawed), f"did not resume ({src.stats})"
    print(f"frozen stream detected after {detect_s:.1f} s")


def test_publisher_survives_server_restart(rtsp_server):
    """RtspSink keeps going when the server goes away and publishes again once it is back."""
    sink = RtspSink(rtsp_server.url("out"), fps=10, backoff=(0.25, 1.0))
    frame = np.zeros((240, 320, 3), np.uint8)
    stop = threading.Event()

    def feed():
        while not stop.is_set():
            sink.write_image(frame)
            time.sleep(0.1)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        assert wait_until(lambda: sink.up, 20), "publisher never came up"
        rtsp_server.kill()
        assert wait_until(lambda: not sink.up, 20) and sink.outages == 1
        rtsp_server.start()
        assert wait_until(lambda: sink.up, 30), "publisher did not reconnect"
        assert len(read_frames(rtsp_server.url("out-live"), 3)) == 3
    finally:
        stop.set()
        feeder.join()
        sink.close()
        sink.close()  # idempotent


def test_camera_down_at_start_is_waited_for(engine, rtsp_server, caplog):
    """open_source(wait=True): a camera that boots after us is retried in the background."""
    caplog.set_level(logging.INFO)
    rtsp_server.kill()
    with pytest.raises(SourceError):
        open_source(rtsp_server.url("x"), **FAST)
    src = open_source(rtsp_server.url("x", auth=f"viewer:{SECRET}"), wait=True, **FAST)
    assert src.stats.state == "reconnecting"
    with Runner(Pipeline(engine, [src], [NullSink()])) as run:
        retried = wait_until(lambda: src.stats.failed_attempts >= 2, 20)
        assert retried, f"no retries while the camera was down ({src.stats})"
        rtsp_server.start()
        started = time.monotonic()
        assert run.wait_frames(3, 30, after=started), f"no frames after the camera came up ({src.stats})"
    assert SECRET not in caplog.text


@pytest.mark.slow
def test_headless_cli_rtsp_in_out_metrics_sigterm(detect_ir, rtsp_server, tmp_path):
    """app.py --headless on a live camera: publishes to /out, serves metrics, SIGTERM finalises the mp4."""
    import json as _json
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    port = free_port()
    save, jsonl = tmp_path / "live.mp4", tmp_path / "live.jsonl"
    cmd = [
        sys.executable,
        str(repo / "app.py"),
        "--headless",
        "--model",
        str(detect_ir),
        "--source",
        rtsp_server.url("x", auth=f"cam:{SECRET}"),
        "--output",
        rtsp_server.url("out"),
        "--save",
        str(save),
        "--jsonl",
        str(jsonl),
        "--metrics-port",
        str(port),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        frames = read_frames(rtsp_server.url("out-live"), 5, timeout=40)
        assert len(frames) == 5
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert "yolo_source_up{" in text and " 1" in text.split("yolo_source_up{")[1].splitlines()[0]
        assert SECRET not in text and "***" in text
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert SECRET not in err and "Traceback" not in err
    with av.open(str(save)) as c:
        n = sum(1 for _ in c.decode(video=0))
    lines = jsonl.read_text().splitlines()
    assert n > 0 and len(lines) >= n and _json.loads(lines[0])["source_id"].startswith("rtsp://***")


def test_http_source_reads_a_served_file(person_clip, tmp_path):
    import functools
    import http.server
    import subprocess

    # python's http.server has no Range support, so serve an mp4 with its index first (faststart)
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(person_clip),
            "-c",
            "copy",
            "-movflags",
            "+faststart",
            str(tmp_path / person_clip.name),
        ],
        check=True,
        timeout=60,
    )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/{person_clip.name}"
        frames = list(open_source(url, live=False))
        assert len(frames) == 61 and frames[0].image.shape == (432, 768, 3)
    finally:
        httpd.shutdown()


def test_a_camera_sending_keyframes_as_several_slices_decodes_like_the_file(person_clip, tmp_path):
    """Cameras (and x264's sliced threads) cut a picture into several slices. Every frame read over RTSP is
    one of the file's frames, not a picture with only some of its slices decoded (the test server once
    repeated SPS/PPS before every keyframe slice and FFmpeg then split each keyframe in two)."""
    require_gst()
    sliced = transcode(
        person_clip, tmp_path / "sliced.mp4", "-t", "3", "-c:v", "libx264", "-preset", "veryfast", "-g", "10",
        "-x264-params", "slices=4", "-an",
    )  # fmt: skip
    with av.open(str(sliced)) as c:
        # the Y plane as decoded (to_ndarray of yuv420p stacks Y over U and V), as Frame.luma gives it
        truth = np.stack([f.to_ndarray()[: f.height] for f in c.decode(video=0)]).astype(np.int16)
    with RtspServer(sliced) as server:
        src = open_source(server.url("x"), live=True, **FAST)
        try:
            got = []
            deadline = time.monotonic() + 30
            while len(got) < 25 and time.monotonic() < deadline:
                frame = src.read(timeout=1.0)
                if frame is not None:
                    got.append(frame.luma.astype(np.int16) if frame.luma is not None else None)
        finally:
            src.close()
    assert len(got) == 25 and all(g is not None for g in got), f"{len(got)} frames, {src.stats}"
    # the nearest frame of the file, by mean absolute difference of the Y plane: 0 for a frame decoded whole
    nearest = [float(np.abs(truth - g).mean(axis=(1, 2)).min()) for g in got]
    assert max(nearest) < 0.5, nearest
