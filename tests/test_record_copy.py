"""Recording by packet copy (outputs/record_copy.py, the source's packet tap in sources/pyav.py): segments of
the camera's own H.264, checked with ffprobe: each starts on a keyframe, has the camera's resolution and
codec, lasts `segment_seconds` up to one keyframe interval, and together they hold every packet; from a
real RTSP stream (tests/rtsp_server.py) and from a file. Plus how `record: {mode}` is chosen and validated."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fixtures_models import RtspServer, require_gst
from waiting import wait_until

from yolovino.inference.core.errors import ConfigError
from yolovino.inference.outputs.base import SinkError
from yolovino.inference.outputs.record_copy import PacketRecorder
from yolovino.inference.outputs.recording import record_by_copy
from yolovino.inference.service.settings import parse_settings
from yolovino.inference.sources import open_source

REPO = Path(__file__).resolve().parents[1]


def probe(path: Path) -> dict:
    """codec, size, packets, duration and whether the first frame is a keyframe, as ffprobe reads the file."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_packets", "-select_streams", "v:0", "-of", "json"]
        + ["-show_entries", "stream=codec_name,width,height,nb_read_packets:format=duration", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    first = (
        subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1"]
            + ["-show_entries", "frame=key_frame", "-of", "csv=p=0", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        .stdout.replace(",", " ")
        .split()
    )  # "1," then a line per side data of the frame (x264's SEI)
    data = json.loads(out)
    s = data["streams"][0]
    return {
        "codec": s["codec_name"],
        "size": (s["width"], s["height"]),
        "packets": int(s["nb_read_packets"]),
        "duration": float(data["format"]["duration"]),
        "key_first": first[:1] == ["1"],
    }


def source_facts(path: Path) -> tuple[int, float]:
    """(packets, keyframe interval in s) of the source file."""
    keys = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-skip_frame", "nokey"]
        + ["-show_entries", "frame=pts_time", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    times = [float(t) for t in keys]
    return probe(path)["packets"], max(b - a for a, b in zip(times, times[1:], strict=False))


def test_file_recorded_by_copy_in_keyframe_aligned_segments(tmp_path, person_clip):
    total, gop = source_facts(person_clip)
    duration = probe(person_clip)["duration"]
    src = open_source(str(person_clip), live=False)
    assert src.packets is not None
    rec = PacketRecorder(tmp_path / "cam", "cam", src.packets, segment_seconds=2)
    frames = sum(1 for _ in src)  # the frames are decoded for detection; the recorder copies packets
    rec.close()
    src.close()
    assert frames == total and rec.dropped == 0
    assert not list((tmp_path / "cam").glob("*.part")), "every segment has its final name"
    facts = [probe(p) for p in rec.segments]
    print("\n".join(f"{p.name}: {f}" for p, f in zip(rec.segments, facts, strict=True)))
    assert len(facts) == int(duration // 2) + (duration % 2 > 0.05), (duration, facts)  # 2 s each, the rest
    assert all(f["key_first"] and f["codec"] == "h264" and f["size"] == (768, 432) for f in facts)
    assert sum(f["packets"] for f in facts) == total, "every packet is in exactly one segment"
    assert all(2 <= f["duration"] <= 2 + gop for f in facts[:-1]), facts
    assert abs(sum(f["duration"] for f in facts) - duration) < 0.15, (duration, facts)


def test_rtsp_stream_recorded_by_copy(tmp_path, rtsp_server):
    src = open_source(rtsp_server.url(), live=True).start()
    try:
        assert src.codec == "h264" and record_by_copy("auto", src), "auto copies an H.264 camera"
        assert src.packets is not None
        rec = PacketRecorder(tmp_path / "cam", "cam", src.packets, segment_seconds=2)
        try:
            assert wait_until(lambda: len(rec.segments) >= 2, 60), rec.segments
        finally:
            rec.close()
    finally:
        src.close()
    _, gop = source_facts(rtsp_server.clip)
    facts = [probe(p) for p in rec.segments]
    print("\n".join(f"{p.name}: {f}" for p, f in zip(rec.segments, facts, strict=True)))
    assert all(f["key_first"] and f["codec"] == "h264" and f["size"] == (768, 432) for f in facts), facts
    # keyframes arrive on the 90 kHz RTP clock, a few ms either side of the file's 1 s grid
    assert all(2 - 0.05 <= f["duration"] <= 2 + gop + 0.15 for f in facts[:-1]), facts


def test_record_mode_choice_and_validation(tmp_path, video_clip):
    with open_source(str(video_clip), live=False) as mp4:
        assert record_by_copy("auto", mp4) and record_by_copy("copy", mp4)
        assert not record_by_copy("annotated", mp4)
    gif = Path(video_clip).parent / "classroom.gif"
    if gif.exists():
        with open_source(str(gif), live=False) as g:
            assert g.codec == "gif" and not record_by_copy("auto", g), "a GIF is not copied into mp4 by default"
    (tmp_path / "imgs").mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(video_clip), "-frames:v", "2", str(tmp_path / "imgs/%d.jpg")])
    with open_source(str(tmp_path / "imgs"), live=False) as folder:
        assert not record_by_copy("auto", folder)
        with pytest.raises(SinkError, match="record mode copy needs a video file or stream"):
            record_by_copy("copy", folder, "imgs")
    settings = parse_settings({"record": {"dir": "rec", "mode": "copy"}, "sources": ["a.mp4"]})
    assert settings.record is not None and settings.record.mode == "copy"
    assert parse_settings({"record": {"dir": "rec"}}).record.mode == "auto"
    with pytest.raises(ConfigError, match=r"record\.mode"):
        parse_settings({"record": {"dir": "rec", "mode": "reencode"}})


@pytest.mark.slow
def test_substream_camera_detects_low_res_and_records_the_main_stream(detect_ir, stream_clips, tmp_path):
    """A camera with a sub-stream (two RTSP servers here: 640x360 `url`, 768x432 `record_url`): the headless
    app detects on the 640x360 frames and records the 768x432 stream by copy, never decoding it."""
    require_gst()
    with RtspServer(stream_clips["640x360"]) as sub, RtspServer(stream_clips["768x432"]) as main:
        cams = tmp_path / "cams.yaml"
        cams.write_text(
            yaml.safe_dump(
                {
                    "record": {"dir": str(tmp_path / "rec"), "segment_seconds": 1},
                    "sources": [{"url": sub.url(), "record_url": main.url(), "name": "door"}],
                }
            )
        )
        cmd = [sys.executable, "app.py", "--headless", "--model", str(detect_ir), "--config", str(cams)]
        cmd += ["--jsonl", str(tmp_path / "frames.jsonl"), "--max-frames", "40"]
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    shapes = {tuple(json.loads(line)["frame_shape"]) for line in (tmp_path / "frames.jsonl").open()}
    assert shapes == {(360, 640)}, shapes
    segments = sorted((tmp_path / "rec" / "door").glob("*.mp4"))
    facts = [probe(p) for p in segments]
    print("\n".join(f"{p.name}: {f}" for p, f in zip(segments, facts, strict=True)))
    assert len(segments) >= 2 and not list((tmp_path / "rec" / "door").glob("*.part"))
    assert all(f["key_first"] and f["size"] == (768, 432) and f["codec"] == "h264" for f in facts), facts


def test_record_url_needs_copy(tmp_path):
    from yolovino.inference.service.plan import HeadlessConfig, plan_sources
    from yolovino.inference.service.settings import RecordSettings, SourceSpec

    cfg = HeadlessConfig(
        sources=[SourceSpec(url="rtsp://127.0.0.1:1/sub", record_url="rtsp://127.0.0.1:1/main", name="door")],
        model=tmp_path / "m.xml",
        record=RecordSettings(dir=str(tmp_path), mode="annotated"),
    )
    with pytest.raises(ConfigError, match=r"sources\[0\]\.record_url: the main stream is recorded by copy"):
        plan_sources(cfg)
    cfg.record = RecordSettings(dir=str(tmp_path))
    assert plan_sources(cfg)[0].record_url == "rtsp://127.0.0.1:1/main"


def test_h265_stream_recorded_by_copy(tmp_path, stream_clips):
    """An H.265 camera is copied as it is too (hevc in the mp4), each segment decodable from its start."""
    require_gst()
    with RtspServer(stream_clips["h265"]) as server:
        src = open_source(server.url(), live=True).start()
        try:
            assert src.codec == "hevc" and record_by_copy("auto", src) and src.packets is not None
            rec = PacketRecorder(tmp_path / "cam", "cam", src.packets, segment_seconds=1)
            try:
                assert wait_until(lambda: len(rec.segments) >= 2, 60), rec.segments
            finally:
                rec.close()
        finally:
            src.close()
    for path in rec.segments:
        f = probe(path)
        frames = subprocess.run(
            ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0"]
            + ["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.strip()
        print(f"{path.name}: {f}, {frames} frames decoded")
        assert f["key_first"] and f["codec"] == "hevc" and f["size"] == (768, 432), f
        # x265's keyframes here are CRA (open GOP): the one or two pictures after a segment's first CRA that
        # reference the GOP before it (RASL) are skipped by decoders, as at any seek; every other one decodes
        assert f["packets"] - 2 <= int(frames) <= f["packets"], (frames, f)
