"""What the bench scripts share: the default model and clip, a free loopback port, the local RTSP server.

Bench-only (tests keep their own fixtures in tests/fixtures_models.py, which pytest manages).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SYSTEM_PY = "/usr/bin/python3"  # Debian's python3-gi (GStreamer RTSP server) lives there, not in the venv
RTSP_SERVER = REPO / "tests" / "rtsp_server.py"


def default_model(name: str = "yolov8n", script: str = "bench") -> Path:
    """models/<name>/int8, else fp32; exits with the command that builds one."""
    for precision in ("int8", "fp32"):
        folder = REPO / "models" / name / precision
        if any(folder.glob("*.xml")):
            return folder
    raise SystemExit(f"{script}: no model in models/{name}/{{int8,fp32}}: run `python -m quantize build-default` "
                     "or pass --model")


def default_clip(name: str = "one-by-one-person-detection.mp4") -> Path:
    from inference.assets import assets_root

    return assets_root() / "videos" / name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def video_only(clip: Path, folder: Path) -> Path:
    """A stream copy of the clip without audio (the test server serves H.264 video only)."""
    out = Path(folder) / f"{Path(clip).stem}-video.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-c", "copy", "-an", str(out)], check=True,
                   timeout=120)
    return out


class RtspServer:
    """tests/rtsp_server.py on 127.0.0.1: /x loops the clip at its own frame rate, /out takes a publisher."""

    def __init__(self, clip: Path, port: int | None = None, log_path: Path | None = None):
        self.clip, self.port = Path(clip), port or free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> "RtspServer":
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen([SYSTEM_PY, str(RTSP_SERVER), str(self.clip), str(self.port)],
                                         stdout=subprocess.PIPE, stderr=log, text=True)
        finally:
            if self.log_path:
                log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("READY"):
                return self
            if not line and self.proc.poll() is not None:
                break
        self.kill()
        raise RuntimeError(f"the RTSP test server did not start on 127.0.0.1:{self.port}")

    def kill(self) -> None:
        """SIGKILL (a camera that loses power); also works on a SIGSTOPped server."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def sig(self, s: int) -> None:
        os.kill(self.proc.pid, s)

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used so far (its own share of the machine)."""
        if self.proc is None:
            return 0.0
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def url(self, path: str = "x") -> str:
        return f"rtsp://127.0.0.1:{self.port}/{path}"

    def __enter__(self) -> "RtspServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
