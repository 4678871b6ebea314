"""Live reload against a running app and a real RTSP camera server: SIGHUP applies an edited config.

Four cameras (the local GStreamer server's looping stream, read with `live: false` so every decoded frame
is delivered and a lost one would show as a gap in its frame indexes). The edit removes one camera (its
mp4 is finalised while the app keeps running), adds a fifth and changes the thresholds of another (it
restarts). Frame counters: each untouched camera's JSON lines carry every frame index from 0 without a gap
or a restart across the reload, and its source dropped none.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from rtsp_control import RtspServer, free_port
from waiting import wait_until

REPO = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.rtsp, pytest.mark.slow]


@pytest.fixture
def small_camera(person_clip, tmp_path, rtsp_server):
    """The local RTSP server looping a 384x216 copy of the clip (4 cameras on 2 shared cores keep up)."""
    clip = tmp_path / "small.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(person_clip), "-vf", "scale=384:216", "-c:v", "libx264"]
        + ["-preset", "ultrafast", "-bf", "0", "-g", "10", "-an", str(clip)],
        check=True,
        timeout=60,
    )
    rtsp_server.stop()  # the fixture's checks (packages present) passed; serve the small clip instead
    server = RtspServer(clip).start()
    yield server
    server.stop()


def _config(path: Path, url: str, out: Path, cams: dict[str, dict]) -> None:
    lines = ["metrics: {host: 127.0.0.1, port: 0}", "sources:"]
    for name, extra in cams.items():
        lines += [f"  - url: {url}", f"    name: {name}", "    live: false", f"    jsonl: {out / name}.jsonl"]
        lines += [f"    {k}: {v}" for k, v in extra.items()]
    path.write_text("\n".join(lines) + "\n")


def _indexes(path: Path) -> list[int]:
    return [json.loads(line)["frame_index"] for line in path.read_text().splitlines()] if path.exists() else []


def _metric(text: str, name: str, source: str) -> float:
    line = next(ln for ln in text.splitlines() if ln.startswith(f'{name}{{source="{source}"}}'))
    return float(line.rsplit(" ", 1)[1])


def test_sighup_adds_removes_restarts_and_keeps_the_others(detect_ir, small_camera, tmp_path):
    url, out, cfg = small_camera.url("x"), tmp_path / "out", tmp_path / "cams.yaml"
    out.mkdir()
    cams = {"cam0": {}, "cam1": {}, "cam2": {"conf": 0.25}, "cam3": {"save": out / "cam3.mp4"}}
    _config(cfg, url, out, cams)
    mport = free_port()
    log = tmp_path / "app.log"
    cmd = [sys.executable, "app.py", "--headless", "--model", str(detect_ir), "--config", str(cfg)]
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd + ["--metrics-port", str(mport)], cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
    try:
        started = wait_until(lambda: all(len(_indexes(out / f"{c}.jsonl")) >= 10 for c in cams), 120)
        assert started, log.read_text()[-3000:]
        del cams["cam3"]
        cams["cam2"] = {"conf": 0.5}
        cams["cam4"] = {}
        _config(cfg, url, out, cams)
        before = {c: len(_indexes(out / f"{c}.jsonl")) for c in ("cam0", "cam1")}
        proc.send_signal(signal.SIGHUP)
        applied = wait_until(lambda: "reload: added cam4" in log.read_text(), 60)
        assert applied, log.read_text()[-3000:]
        # the removed camera's mp4 is finalised while the app runs on
        assert (out / "cam3.mp4").exists() and proc.poll() is None
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"]
            + [str(out / "cam3.mp4")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert probe.returncode == 0 and int(probe.stdout.strip()) >= 10, probe
        grown = wait_until(
            lambda: (
                len(_indexes(out / "cam4.jsonl")) >= 10
                and all(len(_indexes(out / f"{c}.jsonl")) >= before[c] + 20 for c in before)
            ),
            90,
        )
        assert grown, log.read_text()[-3000:]
        page = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10).read().decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    text = log.read_text()
    assert proc.returncode == 0 and "Traceback" not in text, text[-3000:]
    line = next(ln for ln in text.splitlines() if "reload: added" in ln)
    assert "removed cam3" in line and "changed cam2" in line and "kept cam0, cam1" in line, line
    counters = {}
    for cam in ("cam0", "cam1"):
        idx = _indexes(out / f"{cam}.jsonl")
        counters[cam] = (len(idx), before[cam], idx[-1])
        assert idx == list(range(len(idx))), f"{cam}: a frame was lost or the source restarted"
        assert _metric(page, "yolo_frames_dropped_total", cam) == 0
        assert _metric(page, "yolo_frames_processed_total", cam) >= before[cam] + 20
    cam2 = _indexes(out / "cam2.jsonl")
    restarts = [i for i, (a, b) in enumerate(zip(cam2, cam2[1:])) if b <= a]
    assert len(restarts) == 1, "cam2 (thresholds changed) restarts once"
    assert 'source="cam3"' not in page, "a removed source leaves the metrics page"
    print("frame counters (lines, lines at reload, last index):", counters, "| reload:", line.split(": ", 2)[-1])
