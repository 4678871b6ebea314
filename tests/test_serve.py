"""The built-in RTSP server (inference/rtsp_server.py) read by clients nobody here wrote: ffprobe and PyAV.

A live camera (the local GStreamer test server looping the clip) goes through the real pipeline; its annotated
stream is served by the app at rtsp://127.0.0.1:PORT/<name>. Several clients read at once and see the
drawings; clients coming and going do not disturb inference; off loopback, credentials are required.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time

import av
import numpy as np
import pytest
from waiting import wait_until

from inference import AsyncEngine, InferenceConfig, YoloModel
from inference.annotate import Annotator, color_for
from inference.pipeline import Pipeline
from inference.rtsp_server import RtspServer, RtspServerError, mount_path
from inference.sources import open_source

pytestmark = pytest.mark.rtsp
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


class Served:
    """camera -> pipeline -> built-in server, the pipeline on a background thread counting its frames."""

    def __init__(self, engine, camera_url: str, server: RtspServer):
        self.src = open_source(camera_url, open_timeout=5, read_timeout=2)
        self.sink = server.stream("door cam", fps=10, source_id=self.src.id)
        self.pipe = Pipeline(engine, [self.src], [self.sink], Annotator())
        self.frames, self.error = 0, None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for _ in self.pipe.run(self.stop):
                self.frames += 1
        except BaseException as exc:  # noqa: BLE001
            self.error = exc

    def close(self):
        self.stop.set()
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def engine(detect_ir):
    return AsyncEngine(YoloModel.load(detect_ir, InferenceConfig()))


def test_served_stream_read_by_ffprobe_and_pyav_clients(engine, rtsp_server):
    server = RtspServer("127.0.0.1", 0)
    run = Served(engine, rtsp_server.url("x"), server)
    try:
        assert wait_until(lambda: run.sink.size is not None, 30), f"no frame reached the server ({run.src.stats})"
        url = run.sink.url
        assert url == f"rtsp://127.0.0.1:{server.port}/door_cam" and mount_path("door cam") == "/door_cam"
        probe = ffprobe(url)
        print("ffprobe", url, probe.stdout)
        assert probe.returncode == 0, probe.stderr
        stream = json.loads(probe.stdout)["streams"][0]
        assert (stream["codec_name"], stream["width"], stream["height"]) == ("h264", 768, 432)
        # three clients at once: two PyAV readers and ffprobe; one shared encoder serves them all
        results: dict[str, list] = {}
        readers = [
            threading.Thread(target=lambda k=k: results.__setitem__(k, read_frames(url, 15))) for k in ("a", "b")
        ]
        for t in readers:
            t.start()
        assert wait_until(lambda: server.clients() >= 2, 20), "the PyAV clients never connected"
        probe2 = ffprobe(url)
        for t in readers:
            t.join(timeout=60)
        assert probe2.returncode == 0, probe2.stderr
        assert len(results["a"]) == len(results["b"]) == 15 and results["a"][0].shape == (432, 768, 3)
        raw = read_frames(rtsp_server.url("x"), 10)
        person = color_for(0)
        drawn = np.median([_near(f, person) for f in results["a"]])
        plain = np.median([_near(f, person) for f in raw])
        assert drawn > plain + 200, (drawn, plain)  # person boxes and labels in the class colour
        # every client left: inference goes on, and nothing is encoded for nobody
        assert wait_until(lambda: server.clients() == 0, 20)
        before, pushed = run.frames, run.sink.frames_pushed
        assert wait_until(lambda: run.frames >= before + 10, 20), "inference stalled after the clients left"
        assert run.sink.frames_pushed - pushed <= 3 and run.error is None
        print(f"medias built {run.sink.medias}, frames in {run.sink.frames_in}, pushed {run.sink.frames_pushed}")
    finally:
        run.close()
        server.close()


def test_auth_required_off_loopback_and_enforced(person_clip):
    with pytest.raises(RtspServerError, match="reachable from the network"):
        RtspServer("0.0.0.0", 0)  # refused before anything is bound
    server = RtspServer("127.0.0.1", 0, auth=("viewer", "s3cret-pw"))
    sink = server.stream("cam", fps=10)
    frames = [f.image for f in open_source(str(person_clip))]
    stop = threading.Event()

    def feed():
        i = 0
        while not stop.is_set():
            sink.write_image(frames[i % len(frames)])
            i += 1
            time.sleep(0.1)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        assert wait_until(lambda: sink.size is not None, 10)
        denied = ffprobe(sink.url)
        assert denied.returncode != 0 and "401" in denied.stderr, denied.stderr
        ok = ffprobe(sink.url.replace("rtsp://", "rtsp://viewer:s3cret-pw@"))
        assert ok.returncode == 0 and '"h264"' in ok.stdout, ok.stderr
        wrong = ffprobe(sink.url.replace("rtsp://", "rtsp://viewer:wrong@"))
        assert wrong.returncode != 0 and "401" in wrong.stderr
    finally:
        stop.set()
        feeder.join()
        server.close()
