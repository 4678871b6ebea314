"""Security properties of the app as shipped:

* the UI listens on 127.0.0.1 by default; a network address without a password is refused (exit 2) before
  anything is bound (gradio is not even imported);
* credentials in camera URLs (user:password@ and secret-looking query values) never appear in logs, errors,
  JSON lines or the metrics endpoint; the metrics endpoint listens on 127.0.0.1 only;
* uploads have a size limit and land in the app's own temp folder (removed at exit); upload names and
  source text typed in the page cannot reach files outside it.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from rtsp_control import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
PY = (
    str(REPO_ROOT / ".venv" / "bin" / "python") if (REPO_ROOT / ".venv" / "bin" / "python").exists() else sys.executable
)
SECRET_USER, SECRET_PW, SECRET_TOKEN = "camuser", "s3cr3tPW", "tok3nXYZ"
SECRETS = (SECRET_PW, SECRET_TOKEN, f"{SECRET_USER}:")


def _env(**extra) -> dict:
    env = dict(os.environ)
    env.pop("YOLO_APP_AUTH", None)
    env.pop("GRADIO_TEMP_DIR", None)
    env.update(YOLO_OFFLINE="1", PYTHONUNBUFFERED="1", GRADIO_ANALYTICS_ENABLED="False", **extra)
    return env


def run(args: list, timeout: float = 120, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, *map(str, args)],
        cwd=REPO_ROOT,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        errors="replace",
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def secret_url(port: int, path: str = "x") -> str:
    return f"rtsp://{SECRET_USER}:{SECRET_PW}@127.0.0.1:{port}/{path}?token={SECRET_TOKEN}"


def assert_no_secret(text: str, where: str) -> None:
    for s in SECRETS:
        assert s not in text, (
            f"credential {s!r} leaked in {where}:\n" + "\n".join(line for line in text.splitlines() if s in line)[:2000]
        )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, detect_ir) -> Path:
    """models/<name>/fp32 layout around the session's FP32 IR (what the UI catalog and app.py expect)."""
    import shutil

    root = tmp_path_factory.mktemp("sec-models")
    d = root / "yolov8n" / "fp32"
    d.mkdir(parents=True)
    for p in detect_ir.parent.iterdir():
        shutil.copy(p, d / p.name)
    return d


# --- the UI binds to loopback unless a password is set ----------------------------------------------------


def test_ui_defaults_to_loopback():
    from yolovino import app
    from yolovino.ui import app as ui_app

    assert app.build_parser().parse_args([]).host == "127.0.0.1"
    assert inspect.signature(ui_app.launch).parameters["host"].default == "127.0.0.1"
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        ui_app.check_bind(host, None)  # no error


PUBLIC_HOSTS = ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1"]


@pytest.mark.parametrize("host", PUBLIC_HOSTS)
def test_public_host_without_auth_is_refused_before_binding(host, model_dir):
    port = closed_port()
    code = (
        "import sys; from yolovino import app; rc = app.main(sys.argv[1:]); "
        "print('GRADIO_IMPORTED=%s' % ('gradio' in sys.modules)); sys.exit(rc)"
    )
    proc = run(["-c", code, "--host", host, "--port", port, "--model", model_dir], timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-2000:]
    assert "Traceback" not in out
    last = proc.stderr.strip().splitlines()[-1]
    assert re.match(r"^([\w.-]+: )?error: ", last) and "auth" in last.lower(), last
    assert "GRADIO_IMPORTED=False" in proc.stdout, "gradio was imported: the refusal came too late"


def test_public_host_refused_by_launch_itself(monkeypatch):
    """ui.launch (used by anything other than app.py) refuses too, before building or serving the page."""
    from yolovino.ui import app as ui_app

    def must_not_run(*a, **k):
        raise AssertionError("build_demo ran: the UI would have been served")

    monkeypatch.setattr(ui_app, "build_demo", must_not_run)
    for host in PUBLIC_HOSTS:
        with pytest.raises(ui_app.UIError, match="authentication"):
            ui_app.launch(host=host, port=closed_port())


def test_public_host_with_auth_is_accepted_and_bad_auth_refused(model_dir):
    from yolovino import app

    cfg = app.build_config(["--host", "0.0.0.0", "--auth", "admin:pw", "--model", str(model_dir)])
    assert cfg.ui.host == "0.0.0.0" and cfg.ui.auth == ("admin", "pw")
    proc = run(["app.py", "--host", "0.0.0.0", "--auth", "adminonly", "--model", model_dir])
    assert proc.returncode == 2 and "user:password" in proc.stderr.strip().splitlines()[-1], proc.stderr[-1000:]
    proc = run(
        [
            "-c",
            "import sys; from yolovino import app; print(app.build_config(sys.argv[1:]).ui.auth)",
            "--host",
            "0.0.0.0",
            "--model",
            model_dir,
        ],
        YOLO_APP_AUTH="env:pw",
    )
    assert proc.returncode == 0 and "('env', 'pw')" in proc.stdout, proc.stderr[-1000:]


# --- credentials in camera URLs never come out ---------------------------------------------------------------


def test_credentials_not_in_headless_output_closed_port(model_dir, tmp_path):
    """An unreachable camera URL with user:password and ?token=: the error and every log line are redacted."""
    url = secret_url(closed_port())
    jsonl = tmp_path / "e.jsonl"
    proc = run(
        ["app.py", "--headless", "--model", model_dir, "--source", url, "--jsonl", jsonl, "--log-level", "DEBUG"]
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-2000:]
    assert "***" in proc.stderr.strip().splitlines()[-1], "the error should name the (redacted) source"
    assert_no_secret(out, "headless output")
    if jsonl.exists():
        assert_no_secret(jsonl.read_text(), "JSON lines")


def test_credentials_not_in_headless_yaml_config_output(model_dir, tmp_path):
    cfg = tmp_path / "cams.yaml"
    cfg.write_text(f"sources:\n  - url: {secret_url(closed_port())}\n")
    proc = run(["app.py", "--headless", "--model", model_dir, "--config", cfg, "--log-level", "DEBUG"])
    assert proc.returncode == 2, (proc.stdout + proc.stderr)[-2000:]
    assert_no_secret(proc.stdout + proc.stderr, "headless output (YAML config)")


def test_credentials_not_in_headless_output_for_rtsp_output_url(model_dir, tmp_path, person_clip):
    """--output rtsp://user:pw@... to a server that is not there: the publisher's retries are logged redacted."""
    proc = run(
        [
            "app.py",
            "--headless",
            "--model",
            model_dir,
            "--source",
            person_clip,
            "--output",
            secret_url(closed_port(), "out"),
            "--log-level",
            "DEBUG",
        ]
    )
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out[-2000:]
    assert "***" in out, "expected the publisher's failure to be logged (redacted)"
    assert_no_secret(out, "headless output (--output)")


@pytest.mark.rtsp
@pytest.mark.slow
def test_credentials_not_in_logs_jsonl_or_metrics_live(model_dir, tmp_path, rtsp_server):
    """A live RTSP camera opened with credentials: logs, JSON lines and /metrics never show them, and the
    metrics endpoint listens on 127.0.0.1 only."""
    import psutil

    url = secret_url(rtsp_server.port)
    jsonl, mport = tmp_path / "live.jsonl", free_port()
    proc = subprocess.Popen(
        [
            PY,
            "app.py",
            "--headless",
            "--model",
            str(model_dir),
            "--source",
            url,
            "--jsonl",
            str(jsonl),
            "--metrics-port",
            str(mport),
            "--max-frames",
            "25",
            "--log-level",
            "DEBUG",
        ],
        cwd=REPO_ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    pages, listen = [], set()
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=2) as r:
                    pages.append(r.read().decode())
                for c in psutil.Process(proc.pid).net_connections(kind="tcp"):
                    if c.status == psutil.CONN_LISTEN:
                        listen.add(c.laddr.ip)
            except (OSError, psutil.Error):
                pass
            time.sleep(0.5)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out[-3000:]
    assert pages, "the metrics endpoint never answered"
    assert any("yolo_frames_processed_total" in p for p in pages)
    assert listen == {"127.0.0.1"}, f"listening on {listen}"
    lines = jsonl.read_text().splitlines()
    assert len(lines) >= 20
    assert_no_secret(out, "headless logs")
    assert_no_secret(jsonl.read_text(), "JSON lines")
    assert_no_secret("\n".join(pages), "metrics endpoint")
    assert "127.0.0.1" in json.loads(lines[0])["source_id"]  # still says which camera it is


def test_metrics_and_stats_redact_in_process():
    """The library pieces the CLI uses, directly: Metrics text and source stats of a credential URL."""
    from yolovino.inference.core.errors import SourceError
    from yolovino.inference.service.metrics import Metrics
    from yolovino.inference.sources import open_source

    url = secret_url(closed_port())
    with pytest.raises(SourceError) as info:
        open_source(url, open_timeout=3, read_timeout=2)
    assert_no_secret(str(info.value), "SourceError")
    src = open_source(url, start=False)
    assert_no_secret(repr(src) + src.id + src.display, "source repr/id")
    metrics = Metrics()
    metrics.register_source(src)
    server = metrics.serve(0)
    try:
        assert server.httpd.server_address[0] == "127.0.0.1"
        with urllib.request.urlopen(server.url, timeout=5) as r:
            page = r.read().decode()
    finally:
        server.close()
    assert "127.0.0.1" in page
    assert_no_secret(page + metrics.render(), "metrics text")


def test_credentials_not_in_ui_status_or_errors(model_dir, tmp_path):
    """The page's status lines and its 'Cannot open' error show the URL redacted (fixed in 122a3ed)."""
    from yolovino.common.allow import AllowList
    from yolovino.inference.core.config import InferenceConfig
    from yolovino.ui.context import UIContext, UserFacingError
    from yolovino.ui.session import Session

    ctx = UIContext(
        models_dir=model_dir.parents[1],
        samples_dir=None,
        default_source=None,
        config=InferenceConfig(),
        tmp_root=tmp_path / "ui",
        allow=AllowList.parse(["rtsp://127.0.0.1"]),
    )
    session = Session(ctx, "sec")
    texts = []
    try:
        for upd in session.stream(secret_url(closed_port())):
            texts.append(str(upd.status))
    except UserFacingError as exc:
        texts.append(str(exc))
    finally:
        session.close()
    assert texts
    assert_no_secret("\n".join(texts), "UI status/errors")


# --- uploads: size limit, temp folder, names that try to escape --------------------------------------------

UPLOAD_PROBE = r"""
import json, os, socket, sys, tempfile
from pathlib import Path
import requests
from yolovino import ui

s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
demo = ui.launch(host="127.0.0.1", port=port, models_dir=Path(sys.argv[1]), max_file_size="1mb",
                 prevent_thread_lock=True, quiet=True)
url = f"http://127.0.0.1:{port}/gradio_api/upload"
out = {"GRADIO_TEMP_DIR": os.environ.get("GRADIO_TEMP_DIR"), "server_name": demo.server_name}
for key, name, size in (("small", "small clip é.mp4", 1000), ("big", "big.mp4", 2 * 2**20),
                        ("traversal", "../../../../tmp/escape-probe-yolo.mp4", 100),
                        ("absolute", "/etc/escape-probe-yolo.mp4", 100)):
    r = requests.post(url, files={"files": (name, b"x" * size)}, timeout=60)
    out[key] = [r.status_code, r.json() if r.ok else r.text[:300]]
demo.close()
print("RESULT " + json.dumps(out))
"""


def test_upload_size_limit_and_temp_folder(tmp_path):
    """The real UI on 127.0.0.1 (in a child process): an upload over the limit is refused with 413; the
    others land under the app's own temp folder whatever name the client sends; the folder goes at exit."""
    from yolovino.ui import app as ui_app

    assert inspect.signature(ui_app.launch).parameters["max_file_size"].default == ui_app.DEFAULT_MAX_FILE
    assert ui_app._parse_size(ui_app.DEFAULT_MAX_FILE) <= 2 * 2**30, "default upload limit is missing or huge"
    models = tmp_path / "models"
    models.mkdir()
    proc = run(["-c", UPLOAD_PROBE, models], timeout=180)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert proc.returncode == 0 and line, (proc.stdout + proc.stderr)[-3000:]
    res = json.loads(line[len("RESULT ") :])
    assert res["server_name"] == "127.0.0.1"
    root = Path(res["GRADIO_TEMP_DIR"]).parent
    assert root.name.startswith("yolo-ui-"), res
    assert res["big"][0] == 413, res["big"]
    for key in ("small", "traversal", "absolute"):
        status, paths = res[key]
        assert status == 200, res[key]
        assert Path(paths[0]).resolve().is_relative_to(root.resolve()), f"{key}: {paths[0]} outside {root}"
    assert not Path("/tmp/escape-probe-yolo.mp4").exists() and not Path("/etc/escape-probe-yolo.mp4").exists()
    assert not root.exists(), f"{root} left behind after exit"


# names a browser could send for the uploaded file (gradio keeps the client's base name)
ESCAPE_NAMES = [
    "..%2F..%2Fescape.png",
    "..\\..\\escape.png",
    "...png",
    "-rf --no-preserve-root.png",
    "a.b.c.png",
    "x" * 200 + ".png",
    "é ü 空.png",
]


@pytest.mark.parametrize("name", ESCAPE_NAMES, ids=[f"name{i}" for i in range(len(ESCAPE_NAMES))])
def test_upload_outputs_stay_in_session_folder(name, model_dir, tmp_path, _bus_image_cached):
    import cv2

    from yolovino.inference.core.config import InferenceConfig
    from yolovino.ui.context import UIContext
    from yolovino.ui.session import Session

    upload_dir = tmp_path / "gradio" / "abc123"
    upload_dir.mkdir(parents=True)
    src = upload_dir / name
    ok, buf = cv2.imencode(".png", cv2.resize(_bus_image_cached, (320, 240)))
    src.write_bytes(buf.tobytes())
    ctx = UIContext(
        models_dir=model_dir.parents[1],
        samples_dir=None,
        default_source=None,
        config=InferenceConfig(),
        tmp_root=tmp_path / "ui-out",
    )
    session = Session(ctx, "sec")
    before = {p for p in tmp_path.rglob("*")}
    try:
        updates = list(session.process_upload(str(src)))
        out_dir = session.out_dir().resolve()
        files = updates[-1].files
        assert files
        for f in files:
            assert Path(f).resolve().parent == out_dir, f"{f} outside {out_dir}"
        new = {p for p in tmp_path.rglob("*")} - before
        assert all(p.resolve().is_relative_to(ctx.tmp_root.resolve()) for p in new), sorted(
            str(p) for p in new if not p.resolve().is_relative_to(ctx.tmp_root.resolve())
        )
    finally:
        session.close()


SOURCE_TEXTS = [
    "/etc/passwd",
    "../../../../etc/passwd",
    "file:///etc/passwd",
    "~/.ssh/id_rsa",
    "ftp://127.0.0.1/x.mp4",
    "/proc/self/environ",
]


@pytest.mark.parametrize("text", SOURCE_TEXTS)
def test_ui_source_box_cannot_read_server_files(text, tmp_path, video_clip):
    """The page's source box takes URLs and the sample clips by name, never an arbitrary server path."""
    from yolovino.inference.core.config import InferenceConfig
    from yolovino.ui.context import UIContext, UserFacingError

    ctx = UIContext(
        models_dir=tmp_path,
        samples_dir=video_clip.parent,
        default_source=video_clip,
        config=InferenceConfig(),
        tmp_root=tmp_path / "ui",
    )
    with pytest.raises(UserFacingError, match="Unknown source"):
        ctx.resolve_source(text)
    assert ctx.resolve_source(video_clip.name) == str(video_clip)
    assert ctx.resolve_source("../" + video_clip.name) == str(video_clip)  # only the name is used
