"""The built-in RTSP server (inference/outputs/rtsp_server.py) read by clients nobody here wrote: ffprobe and PyAV.

The app runs headless on a live camera (the local GStreamer test server looping the clip) with `--serve`;
its annotated stream is at rtsp://127.0.0.1:PORT/<name>. Several clients read at once and see the drawings;
clients coming and going do not disturb inference (its frame counter on /metrics keeps growing); off
loopback, credentials are required. The app runs as a child process: once GStreamer's RTSP server has run
in a process, OpenVINO's device enumeration crashes that process (app.py asks for the devices first), so
the test process itself never starts one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import av
import numpy as np
import pytest
from rtsp_control import free_port
from waiting import wait_until

from yolovino.inference.draw.annotate import color_for
from yolovino.inference.outputs.rtsp_server import RtspServer, RtspServerError, mount_path

pytestmark = pytest.mark.rtsp
REPO = Path(__file__).resolve().parents[1]
FAST_OPEN = {"rtsp_transport": "tcp", "analyzeduration": "500000", "probesize": "65536"}


def read_frames(url: str, n: int, timeout: float = 20.0) -> list[np.ndarray]:
    out = []
    with av.open(url, options=FAST_OPEN, timeout=(timeout, 5)) as c:
        for f in c.decode(video=0):
            out.append(f.to_ndarray(format="bgr24"))
            if len(out) >= n:
                break
    return out


def ffprobe(url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_entries", "stream=codec_name,profile,width,height"]
        + ["-of", "json", url],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _near(img: np.ndarray, bgr, tol: int = 45) -> int:
    return int((np.abs(img.astype(int) - np.array(bgr)).max(axis=2) < tol).sum())


class App:
    """app.py --headless on `camera`, serving it as "door cam" on the built-in server, metrics on a port."""

    def __init__(self, model, camera: str, log: Path, auth: str | None = None):
        self.port, self.mport = free_port(), free_port()
        cfg = log.with_suffix(".yaml")
        cfg.write_text(f"sources:\n  - url: {camera}\n    name: door cam\n")
        cmd = [sys.executable, "app.py", "--headless", "--model", str(model), "--config", str(cfg)]
        cmd += ["--serve", f"127.0.0.1:{self.port}", "--metrics-port", str(self.mport)]
        env = dict(os.environ, **({"YOLO_RTSP_AUTH": auth} if auth else {}))
        self.log = log
        with open(log, "w") as fh:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT)
        self.url = f"rtsp://127.0.0.1:{self.port}/door_cam"

    def frames(self) -> float:
        try:
            page = urllib.request.urlopen(f"http://127.0.0.1:{self.mport}/metrics", timeout=5).read().decode()
        except OSError:
            return 0.0
        line = next(
            (ln for ln in page.splitlines() if ln.startswith('yolo_frames_processed_total{source="door cam"}')), ""
        )
        return float(line.rsplit(" ", 1)[1]) if line else 0.0

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


def test_served_stream_read_by_ffprobe_and_pyav_clients(detect_ir, rtsp_server, tmp_path):
    app = App(detect_ir, rtsp_server.url("x"), tmp_path / "app.log")
    try:
        assert wait_until(lambda: "serving door cam at" in app.log.read_text(), 90), app.log.read_text()[-2000:]
        assert mount_path("door cam") == "/door_cam"
        probe = ffprobe(app.url)
        print("ffprobe", app.url, probe.stdout)
        assert probe.returncode == 0, probe.stderr
        stream = json.loads(probe.stdout)["streams"][0]
        assert (stream["codec_name"], stream["width"], stream["height"]) == ("h264", 768, 432)
        # three clients at once: two PyAV readers and ffprobe; one shared encoder serves them all
        results: dict[str, list] = {}
        readers = [
            threading.Thread(target=lambda k=k: results.__setitem__(k, read_frames(app.url, 15))) for k in ("a", "b")
        ]
        for t in readers:
            t.start()
        probe2 = ffprobe(app.url)
        for t in readers:
            t.join(timeout=60)
        assert probe2.returncode == 0, probe2.stderr
        assert len(results["a"]) == len(results["b"]) == 15 and results["a"][0].shape == (432, 768, 3)
        raw = read_frames(rtsp_server.url("x"), 10)
        person = color_for(0)
        drawn = np.median([_near(f, person) for f in results["a"]])
        plain = np.median([_near(f, person) for f in raw])
        assert drawn > plain + 200, (drawn, plain)  # person boxes and labels in the class colour
        # every client left: inference goes on
        before = app.frames()
        assert wait_until(lambda: app.frames() >= before + 10, 30), "inference stalled after the clients left"
        assert app.proc.poll() is None
    finally:
        app.close()
    assert app.proc.returncode == 0 and "Traceback" not in app.log.read_text()


def test_auth_required_off_loopback_and_enforced(detect_ir, rtsp_server, tmp_path):
    with pytest.raises(RtspServerError, match="reachable from the network"):
        RtspServer("0.0.0.0", 0)  # refused before anything is bound (or GStreamer even loaded)
    app = App(detect_ir, rtsp_server.url("x"), tmp_path / "app.log", auth="viewer:s3cret-pw")
    try:
        assert wait_until(lambda: "serving door cam at" in app.log.read_text(), 90), app.log.read_text()[-2000:]
        denied = ffprobe(app.url)
        assert denied.returncode != 0 and "401" in denied.stderr, denied.stderr
        ok = ffprobe(app.url.replace("rtsp://", "rtsp://viewer:s3cret-pw@"))
        assert ok.returncode == 0 and '"h264"' in ok.stdout, ok.stderr
        wrong = ffprobe(app.url.replace("rtsp://", "rtsp://viewer:wrong@"))
        assert wrong.returncode != 0 and "401" in wrong.stderr
    finally:
        app.close()
    off = subprocess.run(
        [sys.executable, "app.py", "--headless", "--model", str(detect_ir), "--source", rtsp_server.url("x")]
        + ["--serve", f"0.0.0.0:{free_port()}"],
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if k != "YOLO_RTSP_AUTH"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert off.returncode == 2 and "YOLO_RTSP_AUTH" in off.stderr.strip().splitlines()[-1], off.stderr[-1000:]
