"""Fixtures for the pipeline/RTSP tests: short clips cut from the shared video and a local RTSP server.

The FP32 IR fixtures (`detect_ir`, `seg_ir`, `pose_ir`, exported once per session) live in conftest.py;
this module adds what only the video tests need; conftest.py loads it as a pytest plugin.

RTSP server: tests/rtsp_server.py run with Debian's /usr/bin/python3 (GStreamer rtsp-server + gi),
bound to 127.0.0.1 on a free port. /x loops the clip, /out accepts a publisher, /out-live re-serves it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import media_formats
import pytest
from conftest import require_asset  # tests/ is on sys.path (pytest prepend import mode)
from rtsp_control import RtspServer, free_port, gst_available

__all__ = ["RtspServer", "cut_clip", "free_port", "person_clip", "rtsp_server", "stream_clips", "transcode"]


def cut_clip(src: Path, dst: Path, start: float = 25.0, seconds: float = 6.0) -> Path:
    """A short H.264 clip without audio (stream copy; starts at the keyframe before `start`)."""
    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg is not installed")
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-ss",
            str(start),
            "-i",
            str(src),
            "-t",
            str(seconds),
            "-c",
            "copy",
            "-an",
            str(dst),
        ],
        check=True,
        timeout=60,
    )
    return dst


def transcode(src: Path, dst: Path, *args: str) -> Path:
    """ffmpeg -i SRC ARGS DST (tests/media_formats.py); skips when ffmpeg is not installed."""
    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg is not installed")
    return media_formats.transcode(src, dst, *args)


@pytest.fixture(scope="session")
def stream_clips(tmp_path_factory, person_clip) -> dict[str, Path]:
    """The person clip as a camera may send it: "768x432" (the H.264 clip itself), H.264 at "1280x720" and
    "640x360", H.265 at 768x432 ("h265"); 3 s each at 10 fps, a keyframe every second."""
    d = tmp_path_factory.mktemp("streams")
    x264 = ("-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-an")
    x265 = ("-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:keyint=10", "-an")
    return {
        "768x432": person_clip,
        "1280x720": transcode(person_clip, d / "720p.mp4", "-t", "3", "-vf", "scale=1280:720", *x264),
        "640x360": transcode(person_clip, d / "360p.mp4", "-t", "3", "-vf", "scale=640:360", *x264),
        "h265": transcode(person_clip, d / "h265.mp4", "-t", "3", *x265),
    }


@pytest.fixture(scope="session")
def person_clip(tmp_path_factory) -> Path:
    """6 s, 10 fps, 768x432 with a person and skateboards in view (from 25 s into the shared clip)."""
    src = require_asset("videos/one-by-one-person-detection.mp4")
    return cut_clip(src, tmp_path_factory.mktemp("clips") / "person.mp4")


def require_gst() -> None:
    if not gst_available():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("GStreamer RTSP server (python3-gi, gir1.2-gst-rtsp-server-1.0) is required under CI")
        pytest.skip("GStreamer RTSP server packages are not installed (see /work/shared/TOOLING.md)")


@pytest.fixture
def rtsp_server(person_clip):
    """A running RTSP test server (function scope: tests may kill and restart it)."""
    require_gst()
    server = RtspServer(person_clip).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def switching_server(stream_clips):
    """A server whose /x plays the 768x432, 1280x720 and 640x360 H.264 clips in turn, one per `switch()`;
    `corrupt()` damages the next 6 non-key access units."""
    require_gst()
    clips = [stream_clips[k] for k in ("768x432", "1280x720", "640x360")]
    server = RtspServer(clips, corrupt_burst=6).start()
    try:
        yield server
    finally:
        server.stop()
