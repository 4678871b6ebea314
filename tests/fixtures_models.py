"""Fixtures for the pipeline/RTSP tests: short clips cut from the shared video and a local RTSP server.

The FP32 IR fixtures (`detect_ir`, `seg_ir`, `pose_ir`, exported once per session) live in conftest.py;
this module adds what only the video tests need. Use with `from fixtures_models import *`.

RTSP server: tests/rtsp_server.py run with Debian's /usr/bin/python3 (GStreamer rtsp-server + gi),
bound to 127.0.0.1 on a free port. /x loops the clip, /out accepts a publisher, /out-live re-serves it.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import require_asset  # tests/ is on sys.path (pytest prepend import mode)

HERE = Path(__file__).resolve().parent
SYSTEM_PY = "/usr/bin/python3"

__all__ = ["RtspServer", "free_port", "person_clip", "rtsp_server", "cut_clip"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cut_clip(src: Path, dst: Path, start: float = 25.0, seconds: float = 6.0) -> Path:
    """A short H.264 clip without audio (stream copy; starts at the keyframe before `start`)."""
    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg is not installed")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-ss", str(start), "-i", str(src), "-t", str(seconds),
                    "-c", "copy", "-an", str(dst)], check=True, timeout=60)
    return dst


@pytest.fixture(scope="session")
def person_clip(tmp_path_factory) -> Path:
    """6 s, 10 fps, 768x432 with a person and skateboards in view (from 25 s into the shared clip)."""
    src = require_asset("videos/one-by-one-person-detection.mp4")
    return cut_clip(src, tmp_path_factory.mktemp("clips") / "person.mp4")


class RtspServer:
    """tests/rtsp_server.py as a child process; restartable on the same port."""

    def __init__(self, clip: Path, port: int | None = None):
        self.clip, self.port = Path(clip), port or free_port()
        self.proc: subprocess.Popen | None = None

    def url(self, path: str = "x", auth: str = "") -> str:
        return f"rtsp://{auth + '@' if auth else ''}127.0.0.1:{self.port}/{path}"

    def start(self, timeout: float = 15.0) -> "RtspServer":
        self.proc = subprocess.Popen([SYSTEM_PY, str(HERE / "rtsp_server.py"), str(self.clip), str(self.port)],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("READY"):
                return self
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"RTSP test server did not start on port {self.port}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL (an abrupt outage), then reap."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.signal(signal.SIGCONT)
                self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc.stdout.close()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.signal(signal.SIGCONT)
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
            self.proc.stdout.close()
            self.proc = None


def _gst_available() -> bool:
    if not Path(SYSTEM_PY).exists():
        return False
    probe = subprocess.run([SYSTEM_PY, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
                            "from gi.repository import GstRtspServer"], capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.fixture
def rtsp_server(person_clip):
    """A running RTSP test server (function scope: tests may kill and restart it)."""
    if not _gst_available():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("GStreamer RTSP server (python3-gi, gir1.2-gst-rtsp-server-1.0) is required under CI")
        pytest.skip("GStreamer RTSP server packages are not installed (see /work/shared/TOOLING.md)")
    server = RtspServer(person_clip).start()
    try:
        yield server
    finally:
        server.stop()
