"""Recording by packet copy (outputs/record_copy.py, the source's packet tap in sources/pyav.py): segments of
the camera's own H.264, checked with ffprobe: each starts on a keyframe, has the camera's resolution and
codec, lasts `segment_seconds` up to one keyframe interval, and together they hold every packet; from a
real RTSP stream (tests/rtsp_server.py) and from a file. Plus how `record: {mode}` is chosen and validated."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from waiting import wait_until

from yolovino.inference.core.errors import ConfigError
from yolovino.inference.outputs.base import SinkError
from yolovino.inference.outputs.record_copy import PacketRecorder
from yolovino.inference.outputs.recording import record_by_copy
from yolovino.inference.service.settings import parse_settings
from yolovino.inference.sources import open_source


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
