"""Crash-safe segmented recording (inference/outputs/recording.py): the app killed with SIGKILL mid-segment leaves
every segment playable, the cut one included (ffprobe decodes it); retention by age and total size."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from waiting import wait_until

from yolovino.inference.outputs.recording import Retention, SegmentRecorder

REPO = Path(__file__).resolve().parents[1]


def probe_frames(path: Path) -> tuple[int, str]:
    """Frames ffprobe decodes from a file (-1 when it cannot read it), and what it printed."""
    proc = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0"]
        + ["-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = proc.stdout.strip()
    return (int(out.split(",")[-1]) if proc.returncode == 0 and out else -1), out + proc.stderr


@pytest.mark.slow
def test_kill_9_mid_segment_leaves_playable_segments(detect_ir, video_clip, tmp_path):
    rec = tmp_path / "rec"
    cmd = [sys.executable, "app.py", "--headless", "--model", str(detect_ir), "--source", str(video_clip)]
    cmd += ["--record", str(rec), "--segment-seconds", "2"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    folder = rec / video_clip.name.replace(".mp4", ".mp4")
    try:
        # kill once a segment is complete and the next has its first fragments (a keyframe a second)
        ready = wait_until(
            lambda: any(folder.glob("*.mp4")) and any(p.stat().st_size > 20_000 for p in folder.glob("*.part")), 120
        )
        assert ready, sorted(p.name for p in rec.rglob("*"))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    parts = sorted(folder.glob("*.mp4.part"))
    done = sorted(folder.glob("*.mp4"))
    assert len(parts) == 1 and done, sorted(p.name for p in folder.iterdir())
    report = []
    for path in done + parts:
        n, text = probe_frames(path)
        report.append(f"{path.name}: {text}")
        assert n > 0, f"{path.name} is not playable after kill -9: {text}"
    print("after kill -9:\n  " + "\n  ".join(report))
    # a recorder starting in that folder keeps the cut segment under its final name
    SegmentRecorder(folder, "x").close()
    assert not list(folder.glob("*.part")) and (folder / parts[0].name.removesuffix(".part")).exists()


def test_segments_rotate_atomically_and_retention_applies(tmp_path, person_clip):
    from yolovino.inference.sources import open_source

    frames = [f.image for f in open_source(str(person_clip))][:30]
    root = tmp_path / "rec"
    old = root / "other-cam" / "20200101T000000Z.mp4"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"x" * 1000)
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    rec = SegmentRecorder(root / "cam", "cam", fps=10, segment_seconds=1.0, retention=Retention(root, max_age=3600))
    assert not old.exists(), "a segment older than max_age is removed at start"
    t0 = time.monotonic()
    for i, image in enumerate(frames):  # 3 s of frames at 10 fps: segments of 1 s
        rec.write_image(image, t0 + i * 0.1)
        if i == 15:
            assert rec.current is not None and rec.current.name.endswith(".mp4.part")
            assert all(p.suffix == ".mp4" for p in rec.segments)  # complete ones only ever have the final name
    rec.close()
    assert len(rec.segments) == 3 and not list((root / "cam").glob("*.part"))
    counts = [probe_frames(p)[0] for p in rec.segments]
    assert counts == [10, 10, 10], counts
    sizes = [p.stat().st_size for p in rec.segments]
    keep = Retention(root, max_bytes=sum(sizes[1:]))
    removed = keep.enforce()
    assert removed == rec.segments[:1] and all(p.exists() for p in rec.segments[1:])
