"""The Gradio UI in real headless Chromium (Playwright, Debian /usr/bin/chromium), served by `ui.launch`.

One app is started in a subprocess on a free 127.0.0.1 port with a temporary models folder holding FP32
detect and pose IRs (exported once per session by conftest). The browser gets a fake camera that plays
a y4m made from the shared clip, so the webcam path is exercised too. Screenshots go to artifacts/ui/.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.ui, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "artifacts" / "ui"
CHROME_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
FPS_RE = re.compile(r"FPS:\s*([\d.]+)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ui_models_dir(tmp_path_factory, detect_ir, pose_ir) -> Path:
    """models/<name>/fp32 -> the exported IR folders (real dirs per model, so a test can add a report)."""
    root = tmp_path_factory.mktemp("ui-models")
    for xml in (detect_ir, pose_ir):
        name = xml.parent.parent.name
        (root / name).mkdir()
        (root / name / "fp32").symlink_to(xml.parent, target_is_directory=True)
    # TEST DATA, not a measurement: a report.json/png for the Models-tab test to render.
    from yolovino.quantize.metrics import Difference, Interval, Metrics
    from yolovino.quantize.report import BuildReport, Throughput, Variant

    fp32, int8 = Metrics("detect", 8, box_map=0.123), Metrics("detect", 8, box_map=0.111)
    diff = Difference("box_map", -0.012, Interval(-0.03, 0.004))
    report = BuildReport("TEST DATA", "detect")
    report.variants["fp32"] = Variant("fp32/yolov8n.xml", metrics=fp32, throughput=Throughput(45.6))
    report.variants["int8"] = Variant(
        "int8/yolov8n.xml", metrics=int8, throughput=Throughput(78.9), vs_fp32={"box_map": diff}
    )
    (root / "yolov8n" / "report.json").write_text(json.dumps(report.to_dict()))
    import cv2

    png = np.full((120, 360, 3), 255, np.uint8)
    cv2.putText(png, "TEST DATA report.png", (10, 65), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 200), 2)
    cv2.imwrite(str(root / "yolov8n" / "report.png"), png)
    return root


def wait_for_ui(proc: subprocess.Popen, port: int, log) -> str:
    """The app's URL once it answers 200; a process that exits or stays silent for 90 s fails the test with
    the end of its log."""
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return url
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            pytest.fail(f"UI did not start (rc={proc.poll()}):\n{Path(log.name).read_text()[-3000:]}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def app_url(ui_models_dir, video_clip, tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (/usr/bin/chromium)")
    port = _free_port()
    code = (
        "import sys; from pathlib import Path; from yolovino.ui import launch; "
        "launch(host='127.0.0.1', port=int(sys.argv[1]), auth=None, models_dir=Path(sys.argv[2]), "
        "default_source=Path(sys.argv[3]), quiet=True)"
    )
    log = (tmp_path_factory.mktemp("ui-log") / "server.log").open("w")
    tmpdir = tmp_path_factory.mktemp("ui-tmpdir")  # the app's temp root goes here: checked at the end
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "TMPDIR": str(tmpdir)}
    env.pop("GRADIO_TEMP_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(port), str(ui_models_dir), str(video_clip)],
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    yield wait_for_ui(proc, port, log)
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    text = Path(log.name).read_text()
    assert "Traceback" not in text or "UI handler failed" in text, text[-3000:]
    assert proc.returncode == 0, f"rc={proc.returncode} after SIGTERM\n{text[-2000:]}"
    left = [p.name for p in tmpdir.glob("yolo-ui-*")]
    assert not left, f"temp outputs left after exit: {left}"


@pytest.fixture(scope="module")
def fake_camera(video_clip, tmp_path_factory) -> Path:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is needed to make the fake camera's y4m")
    y4m = tmp_path_factory.mktemp("cam") / "clip.y4m"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-ss", "10", "-i", str(video_clip), "-t", "3", "-pix_fmt", "yuv420p", str(y4m)],
        check=True,
        timeout=60,
    )
    return y4m


@pytest.fixture(scope="module")
def browser(fake_camera):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[*CHROME_ARGS, f"--use-file-for-fake-video-capture={fake_camera}"],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser, app_url):
    context = browser.new_context(permissions=["camera"], viewport={"width": 1280, "height": 1000})
    pg = context.new_page()
    external: list[str] = []
    pg.on(
        "request",
        lambda r: external.append(r.url) if not r.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None,
    )
    pg.goto(app_url, wait_until="domcontentloaded")
    pg.wait_for_selector("#start", timeout=30_000)
    yield pg
    context.close()
    assert not external, f"the page made external requests: {external}"


# --- helpers ------------------------------------------------------------------------------------------


def _output_src(pg) -> str | None:
    img = pg.query_selector("#output img")
    return img.get_attribute("src") if img else None


def _decode(src: str) -> np.ndarray:
    import cv2

    assert src.startswith("data:image/"), src[:80]
    data = base64.b64decode(src.split(",", 1)[1])
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None, "output image is not a decodable JPEG"
    return img


def _wait_frames(pg, n: int = 3, timeout: float = 40.0) -> list[str]:
    """Wait until the output image has shown `n` different frames; returns their srcs."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        src = _output_src(pg)
        if src and (not seen or src != seen[-1]):
            seen.append(src)
            if len(seen) >= n:
                return seen
        pg.wait_for_timeout(200)
    pytest.fail(f"only {len(seen)} distinct output frames in {timeout}s; status: {pg.inner_text('#status')!r}")


def _fps(pg) -> float:
    m = FPS_RE.search(pg.inner_text("#stats"))
    return float(m.group(1)) if m else 0.0


def _wait_text(pg, selector: str, pattern: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = pg.inner_text(selector)
        if re.search(pattern, text):
            return text
        pg.wait_for_timeout(200)
    pytest.fail(f"{selector} never matched {pattern!r}; last text: {text!r}")


def _pick(pg, dropdown: str, option: str) -> None:
    pg.click(f"{dropdown} input")
    pg.get_by_role("option", name=option, exact=True).click()


# --- tests --------------------------------------------------------------------------------------------


def test_sample_clip_streams_annotated_frames(page):
    page.get_by_text("one-by-one-person-detection.mp4", exact=True).last.click()  # the one-click example
    assert page.input_value("#source textarea, #source input") == "one-by-one-person-detection.mp4"
    page.click("#start")
    srcs = _wait_frames(page, n=4)
    img = _decode(srcs[-1])
    assert img.shape[0] > 100 and img.shape[1] > 100
    assert img.std() > 10, "output frame is blank"
    assert np.abs(_decode(srcs[0]).astype(int) - img.astype(int)).mean() > 0.5, "frames do not change"
    _wait_text(page, "#stats", r"FPS:\s*[1-9]")
    assert _fps(page) > 0
    assert "(detect)" in page.inner_text("#stats")
    # people walk in from ~6 s into the clip; wait for a person row itself (a stray detection of another
    # class on the empty room may come first)
    _wait_text(page, "#detections", r"\bperson\b", timeout=120)
    page.screenshot(path=str(ARTIFACTS / "live-detect.png"), full_page=True)
    # raising the confidence threshold applies to the running stream (no restart)
    box = page.locator("#conf input[type=number]")
    box.fill("0.99")
    box.press("Enter")
    _wait_text(page, "#stats", r"detections: 0 ", timeout=15)
    for _ in range(8):
        page.wait_for_timeout(250)
        assert "detections: 0 " in page.inner_text("#stats")
    page.click("#stop")
    _wait_text(page, "#status", r"Stopped|End of")


def test_switch_model_while_streaming_and_second_tab(page, browser, app_url):
    page.click("#start")
    _wait_frames(page, n=2)
    assert "yolov8n FP32 (detect)" in page.inner_text("#stats")
    # a second tab (own session) streams with its own model choice at the same time
    other = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    other.goto(app_url, wait_until="domcontentloaded")
    other.wait_for_selector("#start", timeout=30_000)
    other.click("#start")
    _wait_frames(other, n=2)
    # switching the first tab's model takes effect live, without a restart
    _pick(page, "#model", "yolov8n-pose")
    _wait_text(page, "#task", "pose")
    _wait_text(page, "#stats", r"yolov8n-pose FP32 \(pose\)")
    _wait_frames(page, n=2)
    assert _fps(page) > 0
    assert "(detect)" in other.inner_text("#stats"), "the other tab's model changed too"
    _wait_frames(other, n=2)
    page.screenshot(path=str(ARTIFACTS / "live-pose.png"), full_page=True)
    page.click("#stop")
    other.click("#stop")
    _wait_text(page, "#status", r"Stopped|End of")
    _wait_text(other, "#status", r"Stopped|End of")
    other.context.close()


def test_bad_upload_shows_readable_error(page, tmp_path):
    bad = tmp_path / "not-a-video.mp4"
    bad.write_text("this is a text file, not a video\n" * 20)
    page.get_by_role("tab", name="Upload").click()
    page.set_input_files("#upload input[type=file]", str(bad))
    _wait_text(page, "#upload", "not-a-video.mp4")  # the upload finished
    page.click("#process")
    text = _wait_text(page, "#status", r"not a readable video")
    assert "Traceback" not in page.content()
    assert "not-a-video.mp4" in text
    page.screenshot(path=str(ARTIFACTS / "bad-upload.png"), full_page=True)
    # the app keeps serving: a good run still works afterwards
    page.get_by_role("tab", name="Clip / URL").click()
    page.click("#start")
    _wait_frames(page, n=2)
    page.click("#stop")


def test_upload_video_gives_annotated_mp4_and_jsonl(page, video_clip, tmp_path):
    clip = tmp_path / "short.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(video_clip),
            "-t",
            "1.5",
            "-an",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            str(clip),
        ],
        check=True,
        timeout=60,
    )
    page.get_by_role("tab", name="Upload").click()
    page.set_input_files("#upload input[type=file]", str(clip))
    _wait_text(page, "#upload", "short.mp4")  # the upload finished
    page.click("#process")
    _wait_text(page, "#status", r"Done: \d+ frames", timeout=60)
    files = page.inner_text("#downloads").replace("\n", "")
    assert "short-annotated.mp4" in files and "short.jsonl" in files, files
    page.screenshot(path=str(ARTIFACTS / "upload-done.png"), full_page=True)


def test_webcam_frames_come_back_annotated(page):
    page.get_by_role("tab", name="Webcam").click()
    page.get_by_text("Click to Access Webcam").click()
    page.locator("#webcam button.capture-button").click()  # "Record": start streaming frames
    srcs = _wait_frames(page, n=3, timeout=40)
    assert _decode(srcs[-1]).std() > 10
    _wait_text(page, "#status", "Webcam")
    assert _fps(page) > 0
    page.screenshot(path=str(ARTIFACTS / "webcam.png"), full_page=True)


def test_models_tab_renders_report(page):
    page.get_by_role("tab", name="Models").click()
    _wait_text(page, "#report-status", r"yolov8n.*detect")
    _wait_text(page, "#report-status", r"INT8 vs FP32, box mAP50-95: -1.20 \[-3.00, \+0.40\] \(within noise\)")
    table = _wait_text(page, "#report-table", r"within noise")
    assert "12.30" in table and "78.9" in table and "-1.20 [-3.00, +0.40]" in table
    assert page.query_selector("#report-png img") is not None
    page.screenshot(path=str(ARTIFACTS / "models-tab.png"), full_page=True)


def test_refresh_finds_a_model_built_after_start(page, ui_models_dir):
    """A model built while the app runs shows up after Refresh (no restart)."""
    late = ui_models_dir / "yolov8n-late"
    (late).mkdir()
    (late / "fp32").symlink_to((ui_models_dir / "yolov8n" / "fp32").resolve(), target_is_directory=True)
    try:
        page.click("#refresh")
        _wait_text(page, "#status", r"Found 3 model\(s\).*yolov8n-late")
        _pick(page, "#model", "yolov8n-late")
        _wait_text(page, "#task", "detect")
    finally:
        (late / "fp32").unlink()
        late.rmdir()
