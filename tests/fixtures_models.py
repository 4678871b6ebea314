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

import pytest
from conftest import require_asset  # tests/ is on sys.path (pytest prepend import mode)
from rtsp_control import RtspServer, free_port, gst_available

__all__ = ["RtspServer", "free_port", "person_clip", "rtsp_server", "cut_clip"]


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


@pytest.fixture(scope="session")
def person_clip(tmp_path_factory) -> Path:
    """6 s, 10 fps, 768x432 with a person and skateboards in view (from 25 s into the shared clip)."""
    src = require_asset("videos/one-by-one-person-detection.mp4")
    return cut_clip(src, tmp_path_factory.mktemp("clips") / "person.mp4")


@pytest.fixture
def rtsp_server(person_clip):
    """A running RTSP test server (function scope: tests may kill and restart it)."""
    if not gst_available():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("GStreamer RTSP server (python3-gi, gir1.2-gst-rtsp-server-1.0) is required under CI")
        pytest.skip("GStreamer RTSP server packages are not installed (see /work/shared/TOOLING.md)")
    server = RtspServer(person_clip).start()
    try:
        yield server
    finally:
        server.stop()
