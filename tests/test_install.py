"""The runtime as an edge box gets it: `pip install yolovino` into a fresh venv, no extras.

It must run headless on a model folder that the quantize step built elsewhere and that was copied over,
without torch, Ultralytics, NNCF, Gradio or Ray; the commands that need an extra say which one, in one line.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from runtime_install import clean_env, install_runtime, installed_heavy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    return install_runtime(tmp_path_factory.mktemp("runtime-install"))


@pytest.fixture(scope="module")
def box(tmp_path_factory, detect_int8_build, person_clip, detect_pt):
    """A folder on the 'box': the INT8 model folder copied from the quantize step's output, a clip, and the
    .pt it came from (which the runtime cannot quantize)."""
    folder, _report = detect_int8_build
    root = tmp_path_factory.mktemp("box")
    shutil.copytree(folder / "int8", root / "model")
    shutil.copy2(person_clip, root / "clip.mp4")
    shutil.copy2(detect_pt, root / "yolov8n.pt")
    return root


def _run(venv, box, *args, timeout=180):
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        cwd=box,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(YOLO_APP_CACHE=str(box / "cache")),
    )


def test_runtime_install_has_no_heavy_dependencies(runtime):
    assert installed_heavy(runtime) == []
    for script in ("yolovino", "yolovino-quantize", "yolovino-fleet"):
        assert (runtime / "bin" / script).is_file(), f"console script {script} missing"


def test_runtime_runs_headless_on_a_copied_int8_model(runtime, box):
    proc = _run(
        runtime,
        box,
        "yolovino",
        "--headless",
        "--model",
        "model",
        "--source",
        "clip.mp4",
        "--save",
        "out.mp4",
        "--jsonl",
        "out.jsonl",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "first result after" in proc.stderr
    frames = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name,width,height,nb_read_frames", "-of", "json", str(box / "out.mp4")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    stream = json.loads(frames.stdout)["streams"][0]
    source = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
             "stream=nb_read_frames", "-of", "json", str(box / "clip.mp4")],
            capture_output=True, text=True, check=True,
        ).stdout
    )["streams"][0]  # fmt: skip
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("h264", 768, 432)
    assert int(stream["nb_read_frames"]) == int(source["nb_read_frames"])
    lines = [json.loads(x) for x in (box / "out.jsonl").read_text().splitlines()]
    assert len(lines) == int(source["nb_read_frames"])
    people = [d for line in lines for d in line["detections"] if d["label"] == "person" and d["score"] > 0.5]
    assert len(people) >= len(lines) // 2, "the INT8 model should see the person in most frames of the clip"


@pytest.mark.parametrize(
    ("argv", "extra"),
    [
        (["yolovino", "--model", "model"], "ui"),
        (["yolovino-quantize", "build", "--weights", "yolov8n.pt", "--calib-images", "."], "quantize"),
        (["yolovino-quantize", "validate", "--model", "model", "--data", "data.yaml"], "quantize"),
        (["yolovino-fleet", "status", "--address", "127.0.0.1:1"], "fleet"),
        (["yolovino", "--headless", "--model", "model", "--source", "clip.mp4", "--serve", "0"], "serve"),
    ],
    ids=["ui", "quantize-build", "quantize-validate", "fleet", "serve"],
)
def test_commands_that_need_an_extra_name_it(runtime, box, argv, extra):
    proc = _run(runtime, box, *argv, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert f"pip install 'yolovino[{extra}]'" in lines[-1], lines[-1]
