"""Sources, sinks, pipeline and the headless CLI on real clips (no RTSP server needed here)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from rtsp_control import free_port
from waiting import wait_until

from yolovino.inference import AsyncEngine, InferenceConfig, YoloModel
from yolovino.inference.core.errors import SourceError
from yolovino.inference.core.redact import redact
from yolovino.inference.core.results import FrameResult
from yolovino.inference.draw.annotate import Annotator
from yolovino.inference.outputs.base import NullSink
from yolovino.inference.outputs.jsonl import JsonlSink
from yolovino.inference.outputs.video_file import VideoFileSink
from yolovino.inference.pipeline import Pipeline
from yolovino.inference.service.metrics import Metrics
from yolovino.inference.sources import open_source

REPO = Path(__file__).resolve().parents[1]


def count_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


@pytest.fixture(scope="module")
def engine(detect_ir):
    return AsyncEngine(YoloModel.load(detect_ir, InferenceConfig()))


# --- sources ------------------------------------------------------------------------------------------


def test_file_source_delivers_every_frame(person_clip):
    expected = count_frames(person_clip)
    src = open_source(str(person_clip), queue_size=2)
    frames = []
    for f in src:
        frames.append(f)
        if len(frames) == 3:
            # a slow consumer: the reader fills the queue and must then wait, not drop
            assert wait_until(lambda: src._queue.full(), 20), "the reader never filled the queue"
            read_at_full = src.stats.frames_read
            went_on = wait_until(lambda n=read_at_full: src.stats.frames_read > n, 0.5)
            assert not went_on, "the reader went on past a full queue"
    assert [f.index for f in frames] == list(range(expected))
    assert src.stats.frames_dropped == 0 and src.stats.state == "ended"
    f = frames[0]
    assert f.image.dtype == np.uint8 and f.image.shape == (432, 768, 3) and f.source_id == "person.mp4"
    assert frames[10].pts == pytest.approx(1.0, abs=0.05) and f.captured_at <= frames[-1].captured_at
    assert src.fps == pytest.approx(10.0)


def test_image_folder_and_single_image(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), np.full((40 + i, 60, 3), i * 50, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    frames = list(open_source(str(tmp_path)))
    assert [f.image.shape[0] for f in frames] == [40, 41, 42]
    assert [f.index for f in frames] == [0, 1, 2]
    single = list(open_source(str(tmp_path / "img1.png")))
    assert len(single) == 1 and single[0].image[0, 0, 0] == 50


def test_keep_latest_drops_on_slow_consumer(person_clip):
    src = open_source(str(person_clip), live=True)
    got = []
    while True:
        f = src.read(timeout=5)
        if f is None:
            break
        got.append(f.index)
        # a consumer slower than the reader: before taking the next frame, let the reader decode two more
        # (or reach the end), so at least one of them is replaced unseen
        wait_until(lambda i=f.index: src.stats.frames_read >= i + 3 or src.stats.state != "running", 20)
    st = src.stats
    assert st.frames_dropped > 0, st
    assert st.frames_read == count_frames(person_clip)
    assert len(got) + st.frames_dropped == st.frames_read
    assert got == sorted(got) and got[-1] == st.frames_read - 1, "the latest frame must be the one kept"


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, person_clip):
    d = tmp_path_factory.mktemp("bad")
    (d / "text.mp4").write_text("hello, I am not a video\n")
    (d / "empty.mp4").write_bytes(b"")
    data = person_clip.read_bytes()
    (d / "cut.mp4").write_bytes(data[: len(data) // 2])  # index (moov) at the end: fails at open
    fast = d / "faststart.mp4"  # index first, then cut: opens, then fails while reading
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(person_clip), "-c", "copy", "-movflags", "+faststart", str(fast)],
        check=True,
        timeout=60,
    )
    data = fast.read_bytes()
    (d / "late_cut.mp4").write_bytes(data[: len(data) * 2 // 3])
    (d / "noimages").mkdir()
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1",
            "-c:a",
            "aac",
            str(d / "audio_only.mp4"),
        ],
        check=True,
        timeout=60,
    )  # a valid mp4 with zero video frames
    return d


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("text.mp4", "cannot open"),
        ("empty.mp4", "empty"),
        ("cut.mp4", "cannot open"),
        ("late_cut.mp4", "truncated"),
        ("missing.mp4", "not found"),
        ("audio_only.mp4", "no video stream"),
        ("noimages", "no images"),
        ("ftp://user:pw@example.com/x.mp4", "unsupported scheme"),
        ("", "empty source"),
    ],
)
def test_bad_inputs_raise_one_line_source_error(bad_inputs, spec, needle):
    full = spec if (not spec or "://" in spec) else str(bad_inputs / spec)
    with pytest.raises(SourceError) as info:
        src = open_source(full)
        for _ in src:  # a file truncated after its index opens, then fails while reading
            pass
    msg = str(info.value)
    assert "\n" not in msg and needle in msg
    assert "pw@" not in msg
    if spec:
        assert redact(full) in msg or Path(full).name in msg


def test_unreachable_rtsp_fails_fast_and_redacted():

    url = f"rtsp://admin:s3cret@127.0.0.1:{free_port()}/x"
    t0 = time.monotonic()
    with pytest.raises(SourceError) as info:
        open_source(url, open_timeout=3)
    # a refused connection fails at once; the bound is the 3 s open timeout with a generous margin for a busy box
    assert time.monotonic() - t0 < 15
    assert "s3cret" not in str(info.value) and "127.0.0.1" in str(info.value)


def test_redact():
    assert redact("rtsp://admin:pw@10.0.0.1:554/s?token=abc&ch=1") == "rtsp://***:***@10.0.0.1:554/s?token=***&ch=1"
    assert redact("rtsp://10.0.0.1/s") == "rtsp://10.0.0.1/s"
    assert redact("/videos/a.mp4") == "/videos/a.mp4"


# --- pipeline -----------------------------------------------------------------------------------------


def test_pipeline_file_to_sinks(engine, person_clip, tmp_path):
    n = count_frames(person_clip)
    video, jsonl = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    metrics = Metrics()
    server = metrics.serve(0)
    null = NullSink()
    pipe = Pipeline(
        engine,
        [open_source(str(person_clip))],
        sinks=[VideoFileSink(video, 10), JsonlSink(jsonl), null],
        annotator=Annotator(),
        metrics=metrics,
    )
    out = list(pipe.run())
    try:
        assert len(out) == n and all(isinstance(fr, FrameResult) for fr in out)
        assert [fr.frame.index for fr in out] == list(range(n))
        with_dets = [fr for fr in out if len(fr.results)]
        assert with_dets, "the clip shows a person"
        fr = with_dets[0]
        assert fr.annotated is not None and not np.array_equal(fr.annotated, fr.frame.image)
        assert fr.latency_ms > 0 and out[-1].fps > 0
        assert count_frames(video) == n and null.frames == n and null.closed
        assert not list(tmp_path.glob(".*tmp*")), "temp file renamed away"
        lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
        assert len(lines) == n and lines[0]["source_id"] == "person.mp4" and "detections" in lines[0]
        assert {"frame_index", "timestamp", "pts"} <= set(lines[0])
        text = urllib.request.urlopen(server.url, timeout=5).read().decode()
        # prometheus_client's text format: values as floats, labels sorted
        assert f'yolo_frames_processed_total{{source="person.mp4"}} {float(n)}' in text
        assert 'yolo_latency_ms{quantile="0.95",source="person.mp4"}' in text
        assert f'yolo_latency_seconds_count{{source="person.mp4"}} {float(n)}' in text
        assert "process_cpu_seconds_total" in text and "process_resident_memory_bytes" in text
    finally:
        server.close()


def test_round_robin_and_failing_source_does_not_stop_others(engine, person_clip, bad_inputs):
    n = count_frames(person_clip)
    # every source decodes its whole file into its queue before the pipeline starts, so each has a frame ready
    # at every round and the order of service depends only on the round-robin, not on decoding speed
    good = [open_source(str(person_clip), name=f"cam{i}", queue_size=n + 1) for i in range(2)]
    broken = open_source(str(bad_inputs / "late_cut.mp4"), name="broken", queue_size=n + 1)
    sources = [*good, broken]
    done = wait_until(lambda: all(s.stats.state in ("ended", "failed") for s in sources), 60)
    assert done, [s.stats for s in sources]
    pipe = Pipeline(engine, sources, annotator=None)
    order = [fr.source_id for fr in pipe.run()]
    assert order.count("cam0") == n and order.count("cam1") == n
    # fairness: the two good cameras alternate strictly, however the engine's requests fill and empty
    cams = [s for s in order if s != "broken"]
    assert all(a != b for a, b in zip(cams, cams[1:])), cams
    # and the broken file's frames were served in turn until it failed, not after the others
    assert 0 < order.count("broken") and order.index("broken") <= 2, order[:10]
    assert any(isinstance(e, SourceError) for e in pipe.errors)


def test_video_file_sink_keeps_the_picture(person_clip, tmp_path):
    """What the mp4 sink writes decodes back to the frames it was given: real frames within a few levels,
    and pure colours keep their hue (a U/V swap or a wrong plane offset in the I420 path would not)."""
    with av.open(str(person_clip)) as c:
        frames = [f.to_ndarray(format="bgr24") for _, f in zip(range(8), c.decode(video=0))]
    h, w = frames[0].shape[:2]
    blocks = np.zeros((h, w, 3), np.uint8)
    for i, bgr in enumerate([(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255)]):
        blocks[:, i * w // 4 : (i + 1) * w // 4] = bgr
    frames += [blocks] * 4
    sink = VideoFileSink(tmp_path / "v.mp4", 10)
    for f in frames:
        sink.write_image(f)
    sink.close()
    with av.open(str(tmp_path / "v.mp4")) as c:
        back = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    assert len(back) == len(frames)
    for got, want in zip(back, frames):
        assert np.abs(got.astype(int) - want).mean() < 4, np.abs(got.astype(int) - want).mean()
    for i, bgr in enumerate([(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255)]):
        centre = back[-1][h // 2, i * w // 4 + w // 8].astype(int)
        assert np.abs(centre - bgr).max() < 12, (bgr, centre)


def test_sink_fits_frames_of_another_size(tmp_path):
    """The mp4 keeps its first size: an odd frame loses its last column and row (no resampling), a frame
    of another shape is scaled into it with its aspect ratio kept, on black bars."""
    from yolovino.inference.outputs.base import fit

    odd = np.random.default_rng(0).integers(0, 255, (359, 641, 3), np.uint8)
    assert np.array_equal(fit(odd, (640, 358)), odd[:358, :640])
    square = np.full((300, 300, 3), 200, np.uint8)
    boxed = fit(square, (640, 360))
    assert boxed.shape == (360, 640, 3)
    assert (boxed[:, :139] == 0).all() and (boxed[:, 501:] == 0).all() and (boxed[:, 141:499] == 200).all()
    sink = VideoFileSink(tmp_path / "v.mp4", 10)
    for image in (odd, square, odd):
        sink.write_image(image)
    sink.close()
    with av.open(str(tmp_path / "v.mp4")) as c:
        back = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    assert [f.shape for f in back] == [(358, 640, 3)] * 3
    assert np.abs(back[1][:, 150:490].astype(int) - 200).mean() < 4 and back[1][:, :120].mean() < 4


def test_pipeline_stop_and_max_frames_close_sinks(engine, person_clip, tmp_path):
    stop = threading.Event()
    sink = VideoFileSink(tmp_path / "a.mp4", 10)
    got = 0
    for _ in Pipeline(engine, [open_source(str(person_clip))], [sink], Annotator()).run(stop):
        got += 1
        if got == 5:
            stop.set()
    assert sink.closed and count_frames(tmp_path / "a.mp4") >= 5
    sink2 = NullSink()
    out = list(Pipeline(engine, [open_source(str(person_clip))], [sink2]).run(max_frames=7))
    assert len(out) == 7 and sink2.closed


def test_all_sources_failing_raises(engine, bad_inputs):
    with pytest.raises(SourceError):
        list(Pipeline(engine, [open_source(str(bad_inputs / "late_cut.mp4"))]).run())


# --- headless CLI ---------------------------------------------------------------------------------------


def _app(*args, **kw):
    return subprocess.run(
        [sys.executable, str(REPO / "app.py"), *args],
        capture_output=True,
        text=True,
        timeout=kw.pop("timeout", 120),
        cwd=kw.pop("cwd", REPO),
        **kw,
    )


@pytest.mark.slow
def test_headless_cli_file_end_to_end(detect_ir, person_clip, tmp_path):
    save, jsonl = tmp_path / "out.mp4", tmp_path / "events.jsonl"
    proc = _app(
        "--headless",
        "--source",
        str(person_clip),
        "--model",
        str(detect_ir),
        "--save",
        str(save),
        "--jsonl",
        str(jsonl),
        "--conf",
        "0.3",
        "--classes",
        "person,skateboard",
    )
    assert proc.returncode == 0, proc.stderr
    n = count_frames(person_clip)
    assert count_frames(save) == n
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert len(lines) == n
    labels = {d["label"] for line in lines for d in line["detections"]}
    assert labels and labels <= {"person", "skateboard"}
    assert all(d["score"] >= 0.3 for line in lines for d in line["detections"])


@pytest.mark.slow
def test_headless_sigterm_leaves_playable_file(detect_ir, tmp_path):
    from conftest import require_asset

    clip = require_asset("videos/one-by-one-person-detection.mp4")  # 139 s: still running at SIGTERM
    save = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "app.py"),
            "--headless",
            "--source",
            str(clip),
            "--model",
            str(detect_ir),
            "--save",
            str(save),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    # frames are flowing once the encoder has muxed something into its temp file
    assert wait_until(lambda: any(p.stat().st_size > 0 for p in tmp_path.glob(".out.tmp*")), 120), proc.poll()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert save.exists() and count_frames(save) > 0
    assert not list(tmp_path.glob(".out.tmp*"))


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--bogus"], "unrecognized"),
        (["--headless"], "--source"),
        (["--headless", "--source", "x.mp4", "--model", "/no/such/model"], "not found"),
        (["--headless", "--source", "/no/such.mp4"], "not found"),
        (["--headless", "--source", "rtsp://u:topsecret@127.0.0.1:1/x"], "cannot open"),
        (["--headless", "--source", "a.mp4", "--output", "out.mp4"], "rtsp://"),
        (["--headless", "--source", "a.mp4", "--conf", "7"], "conf"),
        (["--save", "x.mp4"], "--headless"),
        (["--host", "0.0.0.0"], "--auth"),
    ],
)
def test_cli_misuse_one_line_exit_2(detect_ir, args, needle):
    if "--model" not in args:
        args = [*args, "--model", str(detect_ir)]
    proc = _app(*args, env={**os.environ, "YOLO_APP_AUTH": ""}, timeout=60)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and needle in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and "topsecret" not in proc.stderr


def test_cli_missing_default_model_message(tmp_path):
    """With no --model and no default model in the models folder, the error says how to build or get one."""
    env = {**os.environ, "YOLO_APP_MODELS": str(tmp_path / "models")}
    proc = subprocess.run(
        [sys.executable, "-m", "yolovino", "--headless", "--source", "a.mp4"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and last.startswith("yolovino: error: no model given"), proc.stderr
    assert "make run" in last and "yolovino-quantize build-default" in last and "models/yolov8n" in last


def test_headless_yaml_multi_camera(detect_ir, person_clip, tmp_path):
    from yolovino.inference.service.plan import HeadlessConfig, load_yaml
    from yolovino.inference.service.runner import run_headless

    cfg_file = tmp_path / "cams.yaml"
    cfg_file.write_text(
        f"conf: 0.3\nsources:\n  - url: {person_clip}\n    name: door\n"
        f"  - url: {person_clip}\n    name: yard\n    jsonl: {tmp_path / 'yard.jsonl'}\n"
    )
    data = load_yaml(cfg_file)
    cfg = HeadlessConfig(
        sources=data["sources"], model=detect_ir, save=str(tmp_path / "out.mp4"), max_frames=30, report_every=0
    )
    assert run_headless(cfg) == 0
    assert (tmp_path / "out-door.mp4").exists() and (tmp_path / "out-yard.mp4").exists()
    assert 10 <= len((tmp_path / "yard.jsonl").read_text().splitlines()) <= 20


def test_credentials_never_logged(caplog, tmp_path):
    caplog.set_level(logging.DEBUG)

    url = f"rtsp://admin:hunter2@127.0.0.1:{free_port()}/x"
    with pytest.raises(SourceError) as info:
        open_source(url)
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in caplog.text
