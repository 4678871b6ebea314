"""GET /healthz goes unhealthy (503) when a camera freezes beyond its stall timeout or an infer request hangs,
and healthy (200) again once it recovers; GET /metrics is prometheus_client's page on the same server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from rtsp_control import free_port
from waiting import wait_until

from yolovino.inference import AsyncEngine, InferenceConfig, YoloModel
from yolovino.inference.outputs.base import NullSink
from yolovino.inference.pipeline import Pipeline
from yolovino.inference.service.health import HealthCheck
from yolovino.inference.service.metrics import Metrics
from yolovino.inference.sources import open_source

REPO = Path(__file__).resolve().parents[1]


def health(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


@pytest.mark.rtsp
@pytest.mark.slow
def test_frozen_camera_makes_the_app_unhealthy_then_healthy(detect_ir, rtsp_server, tmp_path):
    cfg = tmp_path / "cams.yaml"
    cam = rtsp_server.url("x")
    cfg.write_text(f"stall_timeout: 30\nsources:\n  - url: {cam}\n    name: door\n    stall_timeout: 3\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}/healthz"
    log = tmp_path / "app.log"
    cmd = [sys.executable, "app.py", "--headless", "--model", str(detect_ir), "--config", str(cfg)]
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd + ["--metrics-port", str(port)], cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
    seen = []
    try:
        # healthy, with the camera open and its results flowing
        flowing = wait_until(
            lambda: health(url)[1].get("sources", {}).get("door", {}).get("seconds_since_result", 99) < 1, 90
        )
        assert flowing and health(url)[0] == 200, log.read_text()[-2000:]
        seen.append(health(url))
        rtsp_server.signal(signal.SIGSTOP)  # the camera freezes: connection open, no data
        try:
            assert wait_until(lambda: health(url)[0] == 503, 30), health(url)
            seen.append(health(url))
        finally:
            rtsp_server.signal(signal.SIGCONT)
        assert wait_until(lambda: health(url)[0] == 200, 60), (health(url), log.read_text()[-2000:])
        seen.append(health(url))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    (ok, body_ok), (bad, body_bad), (again, _) = seen
    assert (ok, bad, again) == (200, 503, 200)
    assert body_ok["healthy"] is True and body_ok["sources"]["door"]["stalled"] is False
    assert body_bad["sources"]["door"]["stalled"] is True
    assert any(p.startswith("source door: no result for") and "timeout 3 s" in p for p in body_bad["problems"])
    print("healthz while frozen:", json.dumps(body_bad))


def test_hung_infer_request_detected_by_timeout(detect_ir, video_clip):
    """A request that never completes (its OpenVINO callback blocks on a gate: a real hang inside the
    runtime, not a stand-in engine) turns /healthz 503 after infer_timeout; releasing it turns it 200."""
    engine = AsyncEngine(YoloModel.load(detect_ir, InferenceConfig()))
    metrics = Metrics()
    src = open_source(str(video_clip), live=False)  # long enough to still be playing when the request hangs
    pipe = Pipeline(engine, [src], [NullSink()], metrics=metrics)
    check = HealthCheck(metrics, lambda: [engine], infer_timeout=1.5, default_stall_timeout=60)
    server = metrics.serve(0, health=check)
    gate, stop, frames = threading.Event(), threading.Event(), []
    worker = threading.Thread(target=lambda: frames.extend(1 for _ in pipe.run(stop)), daemon=True)
    worker.start()
    try:
        assert wait_until(lambda: len(frames) >= 3, 60)
        assert health(server.health_url)[0] == 200
        hooked: set[int] = set()

        def hook() -> bool:  # the requests are busy most of the time: take them as they come back idle
            for pool in list(engine._pools.values()):
                for request in list(pool.idle):
                    if id(request) not in hooked:
                        try:
                            request.set_callback(lambda *_: gate.wait(), None)
                            hooked.add(id(request))
                        except RuntimeError:  # started meanwhile
                            pass
            return bool(hooked)

        assert wait_until(hook, 10, interval=0.001), "no infer request came back idle"
        assert wait_until(lambda: health(server.health_url)[0] == 503, 30), health(server.health_url)
        status, body = health(server.health_url)
        assert any(p.startswith("inference: a request has been pending") for p in body["problems"]), body
        n = len(frames)
        gate.set()  # the runtime finishes the request
        assert wait_until(lambda: len(frames) > n + 3, 30)
        assert wait_until(lambda: health(server.health_url)[0] == 200, 10), health(server.health_url)
        page = urllib.request.urlopen(server.url, timeout=5).read().decode()
        assert "yolo_latency_seconds_bucket" in page and "process_cpu_seconds_total" in page
    finally:
        gate.set()
        stop.set()
        worker.join(timeout=30)
        server.close()
        engine.close()
