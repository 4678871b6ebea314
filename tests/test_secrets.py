"""No secret on a command line: camera, publishing and RTSP-server passwords come from the environment
(`${VAR}` in URLs, YOLO_RTSP_AUTH), and no process on the machine (the app, or any child it starts) shows
them in /proc/*/cmdline. The web page opens only network sources on the operator's allow-list."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import av
import pytest
from rtsp_control import free_port
from waiting import wait_until

from yolovino.common.allow import AllowList

REPO = Path(__file__).resolve().parents[1]
CAM_PW, PUB_PW, SERVE_PW = "camPW-7f3a", "pubPW-91bd", "servePW-c2e8"


def all_cmdlines() -> dict[int, str]:
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                out[int(d.name)] = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                pass  # the process ended meanwhile
    return out


def _frames(url: str, n: int) -> int:
    """Frames decoded from a stream (up to n); 0 while it is not there yet (server answers 404/5xx)."""
    opts = {"rtsp_transport": "tcp", "analyzeduration": "500000", "probesize": "65536"}
    got = 0
    try:
        with av.open(url, options=opts, timeout=(10, 5)) as c:
            for _ in c.decode(video=0):
                got += 1
                if got >= n:
                    break
    except av.error.FFmpegError:
        pass
    return got


@pytest.mark.rtsp
@pytest.mark.slow
def test_no_secret_in_any_process_cmdline(detect_ir, rtsp_server, tmp_path):
    import psutil

    serve_port = free_port()
    env = dict(os.environ, CAM_PW=CAM_PW, PUB_PW=PUB_PW, YOLO_RTSP_AUTH=f"viewer:{SERVE_PW}", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "app.py", "--headless", "--model", str(detect_ir), "--log-level", "DEBUG"]
    cmd += ["--source", f"rtsp://cam:${{CAM_PW}}@127.0.0.1:{rtsp_server.port}/x"]
    cmd += ["--output", f"rtsp://pub:${{PUB_PW}}@127.0.0.1:{rtsp_server.port}/out"]
    cmd += ["--serve", f"127.0.0.1:{serve_port}", "--record", str(tmp_path / "rec")]
    cmd += ["--jsonl", str(tmp_path / "e.jsonl")]
    log = tmp_path / "app.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        # everything running: the camera read, the publisher delivering, the built-in server serving
        published = wait_until(lambda: _frames(rtsp_server.url("out-live"), 5) == 5, 90, interval=0.5)
        assert published, log.read_text()[-2000:]
        served = f"rtsp://viewer:{SERVE_PW}@127.0.0.1:{serve_port}/{_served_name(rtsp_server.port)}"
        assert wait_until(lambda: _frames(served, 5) == 5, 60, interval=0.5), log.read_text()[-2000:]
        assert proc.poll() is None
        cmdlines = all_cmdlines()
        children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.pid in cmdlines and "${CAM_PW}" in cmdlines[proc.pid]  # the app's own argv names the variable
    leaks = {pid: line for pid, line in cmdlines.items() for s in (CAM_PW, PUB_PW, SERVE_PW) if s in line}
    assert not leaks, f"secrets in command lines: {leaks}"
    print(f"{len(cmdlines)} command lines checked, the app's children: {children}")
    text = log.read_text()
    assert proc.returncode == 0 and "Traceback" not in text, text[-2000:]
    for s in (CAM_PW, PUB_PW, SERVE_PW):
        assert s not in text and s not in (tmp_path / "e.jsonl").read_text()


def _served_name(port: int) -> str:
    """The served path of a camera without a name: its redacted URL, made a path."""
    from yolovino.inference.core.redact import redact
    from yolovino.inference.outputs.rtsp_server import mount_path

    return mount_path(redact(f"rtsp://cam:x@127.0.0.1:{port}/x"))[1:]


def test_allow_list_patterns():
    allow = AllowList.parse(["rtsp://10.1.0.0/16", "rtsps://*.cams.example", "http://127.0.0.1:8080"])
    assert allow.allows("rtsp://user:pw@10.1.2.3:554/stream")
    assert not allow.allows("rtsp://10.2.0.1/stream") and not allow.allows("http://10.1.2.3/x")
    assert allow.allows("rtsps://door.cams.example/live") and not allow.allows("rtsp://door.cams.example/live")
    assert allow.allows("http://127.0.0.1:8080/a.mp4") and not allow.allows("http://127.0.0.1:9100/metrics")
    assert not AllowList().allows("rtsp://127.0.0.1/x")
    for bad in ("10.0.0.0/8", "ftp://host", "rtsp://10.0.0.0/99", "rtsp://"):
        with pytest.raises(ValueError):
            AllowList.parse([bad])


def test_ui_refuses_urls_off_the_allow_list(tmp_path):
    from yolovino.inference.core.config import InferenceConfig
    from yolovino.ui.context import UIContext, UserFacingError

    def ctx(allow: AllowList) -> UIContext:
        return UIContext(tmp_path, None, None, InferenceConfig(), tmp_path / "ui", allow=allow)

    with pytest.raises(UserFacingError, match="allow-list.*none set"):
        ctx(AllowList()).resolve_source("rtsp://127.0.0.1:8554/x")
    allowed = ctx(AllowList.parse(["rtsp://192.168.7.0/24"]))
    assert allowed.resolve_source("rtsp://192.168.7.9/x") == "rtsp://192.168.7.9/x"
    for url in ("rtsp://192.168.8.9/x", "http://192.168.7.9/x", "http://169.254.169.254/latest/meta-data"):
        with pytest.raises(UserFacingError, match=r"allow-list of stream sources \(rtsp://192\.168\.7\.0/24\)"):
            allowed.resolve_source(url)


def test_cli_allow_source_from_env_and_bad_pattern(detect_ir):
    from yolovino import app

    cfg = app.build_config(["--model", str(detect_ir), "--allow-source", "rtsp://10.0.0.0/8"])
    assert cfg.ui is not None and cfg.ui.allow_sources is not None and cfg.ui.allow_sources.allows("rtsp://10.9.9.9/")
    proc = subprocess.run(
        [sys.executable, "app.py", "--model", str(detect_ir)],
        cwd=REPO,
        env=dict(os.environ, YOLO_APP_ALLOW_SOURCES="rtsp://10.0.0.0/8,ftp://nope"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "--allow-source: 'ftp://nope'" in proc.stderr.strip().splitlines()[-1]
