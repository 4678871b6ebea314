"""Bring your own model: custom YOLOv8 and YOLO11 checkpoints through quantize, validate and the app.

Two checkpoints are trained here, on a 3-class relabelling of coco128 ("walker", "vehicle", "pet";
tests/byo_models.py): a YOLOv8n fine-tuned from the reconstructed yolov8n.pt, and a YOLO11n trained from
the yolo11n.yaml shipped in Ultralytics. Both go through `yolovino-quantize build` at imgsz 160, `validate`
on the same labelled data, and `yolovino --headless` with their own names in the JSONL; the YOLOv8n one
also through accuracy control and `sensitivity`. Checkpoints the runtime cannot decode (classification,
OBB, end-to-end YOLO26/YOLOv10), built from Ultralytics' yamls with untrained weights, are refused in one
line with exit code 2: by the quantize step, and by the app when given Ultralytics' own IR export of them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import openvino as ov
import pytest
from byo_models import FACE_KPTS, FACE_NAMES, IMGSZ, NAMES, make_dataset, make_face_dataset, train

from yolovino.inference.model.ir import RT_INFO_KEY
from yolovino.quantize.report import BuildReport

REPO = Path(__file__).resolve().parents[1]
SUPPORTED = r"yolovino supports Ultralytics YOLOv8/YOLO11 detect, segment and pose models"
pytestmark = pytest.mark.slow


def run(args: list, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=REPO,
        env={**os.environ, "YOLO_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ir_names(xml: Path) -> dict[int, str]:
    meta = json.loads(ov.Core().read_model(xml).get_rt_info(RT_INFO_KEY).astype(str))
    return {int(k): v for k, v in meta["names"].items()}


@pytest.fixture(scope="module")
def byo_data(tmp_path_factory, require_asset) -> Path:
    return make_dataset(require_asset("datasets/coco128"), tmp_path_factory.mktemp("byo-data"))


@pytest.fixture(scope="module")
def byo_weights(tmp_path_factory, byo_data, detect_pt) -> dict[str, Path]:
    runs = tmp_path_factory.mktemp("byo-runs")
    return {
        "yolov8n": train(str(detect_pt), byo_data, runs, "yolov8n-byo"),  # transfer learning
        "yolo11n": train("yolo11n.yaml", byo_data, runs, "yolo11n-byo"),  # from scratch, no download
    }


@pytest.fixture(scope="module")
def byo_builds(tmp_path_factory, byo_data, byo_weights) -> dict[str, tuple[Path, subprocess.CompletedProcess]]:
    """PTQ builds of both, tiny calibration and validation. The YOLOv8n one with accuracy control as well;
    the YOLO11n one without --imgsz: the build takes the size it was trained at (IMGSZ), not 640."""
    out = tmp_path_factory.mktemp("byo-models")
    builds = {}
    for key, weights in byo_weights.items():
        if key == "yolov8n":
            opts = ["--imgsz", IMGSZ, "--mode", "both", "--ac-val-images", "8", "--ac-max-iterations", "1"]
        else:
            opts = []
        proc = run(
            ["-m", "yolovino.quantize", "build", "--weights", weights, "--name", f"{key}-byo", "--data", byo_data]
            + ["--val-data", byo_data, "--subset-size", "16", "--val-limit", "16", "--allow-overlap"]
            + ["--bench-seconds", "0", "--bootstrap", "100", "--out", out, *opts],
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        builds[key] = (out / f"{key}-byo", proc)
    return builds


@pytest.mark.parametrize("key", ["yolov8n", "yolo11n"])
def test_build_keeps_custom_names_and_imgsz(byo_builds, key):
    folder, proc = byo_builds[key]
    report = json.loads((folder / "report.json").read_text())
    variants = ["fp32", "int8", "int8-ac"] if key == "yolov8n" else ["fp32", "int8"]
    assert sorted(report["variants"]) == sorted(variants)
    assert report["task"] == "detect" and report["imgsz"] == IMGSZ
    assert report["names"] == {str(k): v for k, v in NAMES.items()}
    assert "classes (3): walker, vehicle, pet" in proc.stdout
    assert BuildReport.from_dict(report).names == NAMES  # what the UI's report tab reads back
    for v in variants:
        xml = folder / v / f"{key}-byo.xml"
        assert ir_names(xml) == NAMES, v
        model = ov.Core().read_model(xml)
        assert list(model.outputs[0].get_partial_shape()) == [1, 4 + 3, sum((IMGSZ // s) ** 2 for s in (8, 16, 32))]
        assert report["variants"][v]["metrics"]["images"] == 16
    if key == "yolov8n":  # fine-tuned from COCO weights: its 3 classes are really found, in FP32 and INT8
        for v in variants:
            assert report["variants"][v]["metrics"]["box_map50"] > 0.005, (v, report["variants"][v]["metrics"])
        assert report["variants"]["int8-ac"]["accuracy_control"]["validation_images"] == 8


@pytest.mark.parametrize("key", ["yolov8n", "yolo11n"])
def test_validate_on_custom_labels(byo_builds, byo_data, key):
    folder, _ = byo_builds[key]
    proc = run(
        ["-m", "yolovino.quantize", "validate", "--model", folder / "int8", "--data", byo_data]
        + ["--limit", "16", "--bootstrap", "0", "--json", "--allow-overlap"]  # train = val: built that way
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = json.loads(proc.stdout)
    assert m["task"] == "detect" and m["images"] == 16
    assert m["overlap"]["shared_images"] == 16 and m["overlap"]["allowed"], m["overlap"]  # and it says so
    built = json.loads((folder / "report.json").read_text())["variants"]["int8"]["metrics"]
    assert m["box_map"] == pytest.approx(built["box_map"], abs=1e-9)  # the same engine and protocol
    if key == "yolov8n":
        assert m["box_map50"] > 0.005, m


@pytest.mark.parametrize(("key", "conf"), [("yolov8n", "0.01"), ("yolo11n", "0.001")])
def test_headless_writes_custom_names(byo_builds, byo_data, tmp_path, key, conf):
    """Trained for 2 epochs on 24 images, the models are weak: a low --conf on their own training images
    makes sure there are detections, and every one of them must carry a custom name."""
    folder, _ = byo_builds[key]
    jsonl = tmp_path / "out.jsonl"
    proc = run(
        ["app.py", "--headless", "--model", folder / "int8", "--source", byo_data.parent / "images" / "val"]
        + ["--conf", conf, "--max-frames", "8", "--jsonl", jsonl]
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    frames = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(frames) == 8
    labels = [d["label"] for f in frames for d in f["detections"]]
    ids = {d["class_id"] for f in frames for d in f["detections"]}
    assert labels, "no detections at all"
    assert set(labels) <= set(NAMES.values()) and ids <= set(NAMES)
    assert all(NAMES[d["class_id"]] == d["label"] for f in frames for d in f["detections"])
    if key == "yolov8n":  # people are most of the instances; the fine-tuned model finds them
        assert "walker" in labels


def test_sensitivity_on_custom_model(byo_weights, byo_data, tmp_path):
    proc = run(
        ["-m", "yolovino.quantize", "sensitivity", "--weights", byo_weights["yolov8n"], "--name", "v8-byo"]
        + ["--data", byo_data, "--val-data", byo_data, "--subset-size", "8", "--allow-overlap"]
        + ["--val-images", "8", "--max-layers", "2", "--top-k", "2", "--out", tmp_path],
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "v8-byo" / "sensitivity.json").read_text())
    assert len(result["layers"]) == 2, result.keys()
    assert result["imgsz"] == [IMGSZ, IMGSZ]  # no --imgsz: the size the checkpoint was trained at


def test_custom_pose_model_with_5_keypoints(tmp_path_factory, require_asset, pose_pt):
    """A pose model with its own keypoint set (5 face points, class "head"): built and validated (OKS needs
    one sigma per keypoint: COCO's 17 would not broadcast), decoded, annotated and written with 5 points."""
    data = make_face_dataset(require_asset("datasets/coco-mini-pose"), tmp_path_factory.mktemp("face-data"))
    weights = train(str(pose_pt), data, tmp_path_factory.mktemp("face-runs"), "face", epochs=1)
    out = tmp_path_factory.mktemp("face-models")
    proc = run(
        ["-m", "yolovino.quantize", "build", "--weights", weights, "--name", "face", "--data", data]
        + ["--val-data", data, "--imgsz", IMGSZ, "--subset-size", "8", "--val-limit", "8", "--allow-overlap"]
        + ["--bench-seconds", "0", "--bootstrap", "50", "--out", out],
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "face" / "report.json").read_text())
    assert report["task"] == "pose" and report["names"] == {"0": "head"}
    for v in ("fp32", "int8"):  # fine-tuned from COCO pose weights: the face points are really found
        assert report["variants"][v]["metrics"]["pose_map"] > 0.01, report["variants"][v]["metrics"]
    from yolovino.inference.core.config import InferenceConfig
    from yolovino.inference.draw.annotate import Annotator
    from yolovino.inference.model.ir import YoloModel

    model = YoloModel.load(out / "face" / "int8", InferenceConfig(conf=0.1))
    assert model.names == FACE_NAMES and model.meta.kpt_shape == (FACE_KPTS, 3)
    import cv2

    frames = [cv2.imread(str(f)) for f in sorted((data.parent / "images" / "val").glob("*.jpg"))[:8]]
    frame, results = max(((f, model.predict(f)) for f in frames), key=lambda fr: len(fr[1]))
    assert len(results) and results.keypoints.shape[1:] == (FACE_KPTS, 3)
    assert {model.names[int(c)] for c in results.class_ids} == {"head"}
    drawn = Annotator()(frame.copy(), results)
    assert drawn.shape == frame.shape and (drawn != frame).any()


# --- checkpoints the runtime cannot decode ---------------------------------------------------------------


@pytest.fixture(scope="module")
def unsupported_pts(tmp_path_factory) -> dict[str, Path]:
    """Untrained checkpoints from the yamls shipped in Ultralytics (no download)."""
    os.environ["YOLO_OFFLINE"] = "1"
    from ultralytics import YOLO

    d = tmp_path_factory.mktemp("unsupported")
    out = {}
    for key, yaml in {
        "classify": "yolov8n-cls.yaml",
        "obb": "yolov8n-obb.yaml",
        "yolo26": "yolo26n.yaml",
        "yolov10": "yolov10n.yaml",
    }.items():
        YOLO(yaml).save(d / f"{key}.pt")
        out[key] = d / f"{key}.pt"
    return out


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("classify", r"task 'classify' is not supported"),
        ("obb", r"task 'obb' is not supported"),
        ("yolo26", r"end-to-end \(NMS-free, one-to-one\) Detect head"),
        ("yolov10", r"end-to-end \(NMS-free, one-to-one\) v10Detect head"),
    ],
)
def test_build_refuses_undecodable_checkpoint(unsupported_pts, byo_data, tmp_path, capsys, key, why):
    """Refused after reading the checkpoint, before the export: one line, exit 2, nothing written."""
    from yolovino.quantize.cli import main

    rc = main(
        ["build", "--weights", str(unsupported_pts[key]), "--data", str(byo_data), "--imgsz", "160"]
        + ["--bench-seconds", "0", "--out", str(tmp_path / "models")]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"error: {unsupported_pts[key]}: ")
    assert re.search(why + r".*; " + SUPPORTED, err), err
    assert not (tmp_path / "models" / key).exists()


@pytest.fixture(scope="module")
def ultralytics_exports(unsupported_pts) -> dict[str, Path]:
    """Ultralytics' own OpenVINO exports (metadata.yaml beside the IR) of the undecodable checkpoints; the
    YOLO26 one with nms=False, which exports its end-to-end head: (1, top-k, 6) boxes."""
    from ultralytics import YOLO

    out = {}
    for key, kw in {"classify": {}, "obb": {}, "yolo26": {"nms": False}}.items():
        out[key] = Path(YOLO(unsupported_pts[key]).export(format="openvino", imgsz=64, **kw))
    shape_only = out["yolo26"].with_name("yolo26-no-flag")  # the same IR without the metadata flag
    shape_only.mkdir()
    for f in out["yolo26"].iterdir():
        text = f.read_bytes()
        if f.name == "metadata.yaml":
            text = text.replace(b"end2end: true", b"end2end: false")
            assert b"end2end: false" in text
        (shape_only / f.name).write_bytes(text)
    out["yolo26-shape"] = shape_only
    return out


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("classify", r"task 'classify' is not supported"),
        ("obb", r"task 'obb' is not supported"),
        ("yolo26", r"an end-to-end \(NMS-free\) Detect export"),
        # at imgsz 64 there are 84 anchors, so top-k is 84 = 4 + 80 channels: the shape test must not be fooled
        ("yolo26-shape", r"an end-to-end \(NMS-free\) output \[1,84,6\]"),
    ],
)
def test_app_refuses_undecodable_ir(ultralytics_exports, byo_data, tmp_path, key, why):
    proc = run(
        ["app.py", "--headless", "--model", ultralytics_exports[key], "--source", byo_data.parent / "images" / "val"]
        + ["--max-frames", "2", "--jsonl", tmp_path / "out.jsonl"],
        timeout=120,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert re.fullmatch(r"yolovino: error: .*: " + why + r"; " + SUPPORTED + r".*", lines[-1]), lines[-1]
    assert not (tmp_path / "out.jsonl").exists() or not (tmp_path / "out.jsonl").read_text()
