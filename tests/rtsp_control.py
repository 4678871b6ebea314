"""Start, stop and fault the local RTSP test server (tests/rtsp_server.py) from Python; no pytest here.

Shared by the test fixtures (tests/fixtures_models.py) and the bench scripts (bench/benchlib.py).
The server needs Debian's /usr/bin/python3 with python3-gi and the GStreamer RTSP server typelib.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

SYSTEM_PY = "/usr/bin/python3"
SERVER = Path(__file__).resolve().parent / "rtsp_server.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gst_available() -> bool:
    """True when the system Python can import GStreamer's RTSP server bindings."""
    if not Path(SYSTEM_PY).exists():
        return False
    probe = subprocess.run(
        [
            SYSTEM_PY,
            "-c",
            "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer",
        ],
        capture_output=True,
        timeout=60,
    )
    return probe.returncode == 0


class RtspServer:
    """The server as a child process on 127.0.0.1: /x loops the clip at its own frame rate, /out takes a
    publisher, /out-live re-serves it. Restartable on the same port (kill, then start)."""

    def __init__(self, clip: Path, port: int | None = None, log_path: Path | None = None):
        self.clip, self.port = Path(clip), port or free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def url(self, path: str = "x", auth: str = "") -> str:
        return f"rtsp://{auth + '@' if auth else ''}127.0.0.1:{self.port}/{path}"

    def start(self, timeout: float = 30.0) -> RtspServer:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                [SYSTEM_PY, str(SERVER), str(self.clip), str(self.port)], stdout=subprocess.PIPE, stderr=log, text=True
            )
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

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL (a camera losing power), then reap; also works on a SIGSTOPped server."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.signal(signal.SIGCONT)
                self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc.stdout.close()
            self.proc = None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used so far (its share of a machine it runs on)."""
        if self.proc is None:
            return 0.0
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
