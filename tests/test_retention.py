"""Issue 28, faults 8-10: retention deletes only the segments recorders wrote, never follows links, never
raises, and counts exactly what it may delete. Real files in a temporary recording root; segments written
by a real SegmentRecorder (small synthetic frames)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest

from yolovino.inference.outputs.recording import Retention, SegmentRecorder

DAY = 86400.0


def old_file(path: Path, size: int = 1000, age: float = 10 * DAY) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (time.time() - age, time.time() - age))
    return path


def record(rec: SegmentRecorder, seconds: float, fps: float = 10.0) -> None:
    """`seconds` of noisy 96x64 frames (noise: every segment has a real size) at `fps`."""
    rng = np.random.default_rng(0)
    t0 = time.monotonic()
    for i in range(int(seconds * fps)):
        rec.write_image(rng.integers(0, 255, (64, 96, 3), np.uint8), t0 + i / fps)


# (what is in the recording root, is it a recorder's segment that an old age may delete)
FOREIGN = [
    ("family.mp4", False),  # a user's video next to the camera folders
    ("other/keep.mp4", False),  # not the recorder's naming
    ("cam/notes.mp4", False),
    ("cam/20200101T000000Z.mp4.bak", False),
    ("cam/sub/20200101T000000Z.mp4", False),  # deeper than a camera folder
    ("20200101T000000Z.mp4", True),  # a recorder writing into the root itself
    ("cam/20200101T000000Z.mp4", True),
    ("cam/20200101T000000Z-2.mp4", True),
    ("one-by-one-person-detection.mp4/20200101T000000Z.mp4", True),  # a file source's default camera name
]


@pytest.mark.parametrize(("name", "ours"), FOREIGN)
def test_age_limit_deletes_only_recorder_segments(tmp_path, name, ours):
    root = tmp_path / "rec"
    path = old_file(root / name)
    deleted = Retention(root, max_age=72 * 3600).enforce()
    assert path.exists() is not ours, sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    assert deleted == ([path] if ours else [])


@pytest.mark.parametrize("name", [n for n, ours in FOREIGN if not ours])
def test_size_limit_neither_counts_nor_deletes_foreign_files(tmp_path, name):
    root = tmp_path / "rec"
    foreign = old_file(root / name, size=50_000)
    segment = old_file(root / "cam" / "20200101T000000Z.mp4", size=100)
    newer = old_file(root / "cam" / "20200102T000000Z.mp4", size=100, age=DAY)
    assert Retention(root, max_bytes=1000).enforce() == []  # 200 bytes of segments: under the limit
    assert foreign.exists() and segment.exists() and newer.exists()


def test_camera_folder_named_like_a_video_records_with_age_and_size_limits(tmp_path, caplog):
    """The default camera folder of a file source ends in .mp4: no IsADirectoryError at start, and the size
    limit at each rollover deletes old segments while recording goes on."""
    root = tmp_path / "rec"
    folder = root / "one-by-one-person-detection.mp4"
    stale = old_file(folder / "20200101T000000Z.mp4")
    os.utime(folder, (time.time() - 10 * DAY, time.time() - 10 * DAY))  # a camera folder from an old run
    caplog.set_level(logging.INFO)
    rec = SegmentRecorder(folder, "clip", fps=10, segment_seconds=0.5, retention=Retention(root, 72 * 3600, 40_000))
    assert not stale.exists() and folder.is_dir()
    record(rec, 3.0)
    rec.close()
    left = sorted(folder.glob("*.mp4"))
    assert len(rec.segments) == 6 and left and left[-1] == rec.segments[-1]
    assert sum(p.stat().st_size for p in left) <= 40_000 or len(left) == 1
    assert "Traceback" not in caplog.text and "Error" not in caplog.text


def test_quota_smaller_than_a_segment_keeps_the_newest_and_says_so_once(tmp_path, caplog):
    root = tmp_path / "rec"
    caplog.set_level(logging.INFO)
    rec = SegmentRecorder(root / "cam", "cam", fps=10, segment_seconds=0.5, retention=Retention(root, max_bytes=100))
    record(rec, 2.0)
    rec.close()
    assert len(rec.segments) == 4
    assert sorted((root / "cam").glob("*.mp4")) == [rec.segments[-1]]  # the newest complete one stays
    said = [r for r in caplog.records if "smaller than a segment" in r.getMessage()]
    assert len(said) == 1, caplog.text


def test_symlinked_camera_folder_is_held_to_the_quota(tmp_path):
    """rec/cam1 -> elsewhere/: the recorder's segments there count and are pruned; a link retention finds on
    its own (a folder or a segment) is never followed: what it points to is neither counted nor deleted."""
    root, elsewhere, outside = tmp_path / "rec", tmp_path / "elsewhere", tmp_path / "outside"
    root.mkdir()
    elsewhere.mkdir()
    (root / "cam1").symlink_to(elsewhere, target_is_directory=True)
    victim = old_file(outside / "20200101T000000Z.mp4", size=10_000_000)
    (root / "cam2").symlink_to(outside, target_is_directory=True)
    old_file(root / "cam3" / "x.txt")
    (root / "cam3" / "20200101T000000Z.mp4").symlink_to(victim)
    keep = Retention(root, max_age=72 * 3600, max_bytes=30_000)
    assert keep.segments() == []  # 10 MB behind links: not counted
    rec = SegmentRecorder(root / "cam1", "cam1", fps=10, segment_seconds=0.5, retention=keep)
    record(rec, 3.0)
    rec.close()
    ours = sorted(elsewhere.glob("*.mp4"))
    assert ours and ours[-1].name == rec.segments[-1].name and len(ours) < len(rec.segments)
    assert sum(size for _, size, _ in keep.segments()) <= 30_000 or len(ours) == 1
    assert {p.resolve() for _, _, p in keep.segments()} == {p.resolve() for p in ours}  # counted == deletable
    assert victim.exists() and (root / "cam3" / "20200101T000000Z.mp4").is_symlink()


def test_a_file_that_cannot_be_deleted_never_stops_recording(tmp_path, caplog, monkeypatch):
    """unlink failing (EACCES, EROFS, EBUSY) is logged once and skipped; recording goes on."""
    root = tmp_path / "rec"
    stuck = old_file(root / "ro" / "20200101T000000Z.mp4")
    unlink = Path.unlink

    def refuse(self, *args, **kw):
        if self.parent.name == "ro":
            raise PermissionError(13, "Permission denied", str(self))
        return unlink(self, *args, **kw)

    monkeypatch.setattr(Path, "unlink", refuse)
    caplog.set_level(logging.INFO)
    rec = SegmentRecorder(root / "cam", "cam", fps=10, segment_seconds=0.5, retention=Retention(root, 3600))
    record(rec, 1.5)
    rec.close()
    assert stuck.exists() and len(rec.segments) == 3
    assert len([r for r in caplog.records if "cannot delete" in r.getMessage()]) == 1
