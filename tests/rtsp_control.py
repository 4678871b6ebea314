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
from collections.abc import Sequence
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
    publisher, /out-live re-serves it. Restartable on the same port (kill, then start), with other clips
    if wanted (a camera that comes back with another codec).

    Several clips (one codec): /x plays the first; `switch()` moves it to the next on the same path.
    `corrupt()` flips bytes in the next `corrupt_burst` non-key access units sent on /x.
    """

    def __init__(
        self,
        clip: Path | Sequence[Path],
        port: int | None = None,
        log_path: Path | None = None,
        corrupt_burst: int = 10,
    ):
        self.clips = [Path(clip)] if isinstance(clip, (str, Path)) else [Path(c) for c in clip]
        self.port = port or free_port()
        self.log_path = log_path
        self.corrupt_burst = corrupt_burst
        self.codec: str | None = None  # "h264" | "h265", as the server found it in the clips
        self.proc: subprocess.Popen | None = None

    @property
    def clip(self) -> Path:
        return self.clips[0]

    def url(self, path: str = "x", auth: str = "") -> str:
        return f"rtsp://{auth + '@' if auth else ''}127.0.0.1:{self.port}/{path}"

    def start(self, timeout: float = 30.0, clips: Path | Sequence[Path] | None = None) -> RtspServer:
        """Start (or restart after kill/stop) on the same port; `clips` replaces what /x serves."""
        if clips is not None:
            self.clips = [Path(clips)] if isinstance(clips, (str, Path)) else [Path(c) for c in clips]
        log = open(self.log_path, "ab") if self.log_path else None
        cmd = [SYSTEM_PY, str(SERVER), *map(str, self.clips), str(self.port), "--corrupt", str(self.corrupt_burst)]
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log or subprocess.DEVNULL, text=True)
        finally:
            if log is not None:
                log.close()
        self.proc, out = proc, proc.stdout
        assert out is not None  # stdout=PIPE
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = out.readline()
            if line.startswith("READY"):
                self.codec = line.split()[-1]
                return self
            if not line and proc.poll() is not None:
                break
        self.kill()
        raise RuntimeError(f"the RTSP test server did not start on 127.0.0.1:{self.port}")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def switch(self) -> None:
        """/x moves to the next clip at once, on the same path (SIGUSR1)."""
        self.signal(signal.SIGUSR1)

    def corrupt(self) -> None:
        """Flip bytes in the next `corrupt_burst` non-key access units sent on /x (SIGUSR2)."""
        self.signal(signal.SIGUSR2)

    def kill(self) -> None:
        """SIGKILL (a camera losing power), then reap; also works on a SIGSTOPped server."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.signal(signal.SIGCONT)
                self.proc.kill()
            self.proc.wait(timeout=10)
            if self.proc.stdout is not None:
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
