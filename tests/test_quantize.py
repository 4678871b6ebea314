"""quantize/: CLI errors, decode ignored scope, an end-to-end PTQ build, atomic output folders.

Heavy objects are shared: FP32 exports are module-scoped, and one small PTQ build (32 calibration images,
32 validation images) serves the build, runtime and atomicity tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable


def run_cli(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    return subprocess.run(
        [PY, "-m", "yolovino.quantize", *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- CLI error cases: exit 2, one `error:` line, never a traceback --------------------------------------


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, coco128_yaml):
    d = tmp_path_factory.mktemp("bad")
    (d / "notes.pt").write_text("this is not a checkpoint\n")
    (d / "missing-paths.yaml").write_text("train: images/nope\nval: images/nope\nnames: {0: a}\n")
    (d / "empty").mkdir()
    (d / "junk").mkdir()
    (d / "junk" / "a.jpg").write_text("not an image")
    (d / "junk" / "b.png").write_bytes(b"\x89PNG broken")
    return d


CASES = [  # (id, args with placeholders, expected fragment of the error line)
    ("missing-pt", ["build", "--weights", "{d}/nope.pt", "--data", "{coco128}"], "not found"),
    ("text-file-pt", ["build", "--weights", "{d}/notes.pt", "--data", "{coco128}"], "not a loadable YOLO checkpoint"),
    ("yaml-bad-paths", ["build", "--weights", "{detect}", "--data", "{d}/missing-paths.yaml"], "does not exist"),
    ("yaml-missing", ["build", "--weights", "{detect}", "--data", "{d}/nope.yaml"], "not found"),
    ("empty-folder", ["build", "--weights", "{detect}", "--calib-images", "{d}/empty"], "no images"),
    ("unreadable-folder", ["build", "--weights", "{detect}", "--calib-images", "{d}/junk"], "could be read"),
    (
        "task-flag-mismatch",
        ["build", "--weights", "{detect}", "--data", "{coco128}", "--task", "segment"],
        "is a detect model",
    ),
    ("pose-on-detect-data", ["build", "--weights", "{pose}", "--data", "{coco128}"], "pose model needs a pose dataset"),
    (
        "max-drop-range",
        ["build", "--weights", "{detect}", "--data", "{coco128}", "--mode", "ac", "--max-drop", "5"],
        "max-drop",
    ),
    (
        "max-drop-zero",
        ["build", "--weights", "{detect}", "--data", "{coco128}", "--mode", "ac", "--max-drop", "0"],
        "max-drop",
    ),
    ("imgsz-not-32", ["build", "--weights", "{detect}", "--data", "{coco128}", "--imgsz", "500"], "multiple of 32"),
    ("no-calibration-data", ["build", "--weights", "{detect}"], "calibration data needed"),
    ("validate-missing-model", ["validate", "--model", "{d}/no-model", "--data", "{coco128}"], "not found"),
    ("unknown-option", ["build", "--weights", "{detect}", "--bogus"], "unrecognized arguments"),
    (
        "bad-range-estimator",
        ["build", "--weights", "{detect}", "--data", "{coco128}", "--range-estimator", "median"],
        "invalid choice",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_cli_errors_are_one_line(case, bad_inputs, coco128_yaml, detect_pt, pose_pt):
    _, args, fragment = case
    subst = {"d": bad_inputs, "coco128": coco128_yaml, "detect": detect_pt, "pose": pose_pt}
    proc = run_cli(*[a.format(**subst) for a in args])
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert fragment in lines[0], lines[0]


def test_cli_help_lists_commands():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for cmd in ("build", "build-default", "validate", "sensitivity"):
        assert cmd in proc.stdout
    proc = run_cli("build", "--help")
    assert proc.returncode == 0 and "--max-drop" in proc.stdout and "--calib-images" in proc.stdout


# --- decode ignored scope (export only, no quantization) ----------------------------------------------------


@pytest.fixture(scope="module")
def fp32_models(detect_pt, seg_pt, pose_pt):
    from yolovino.quantize.export import export_fp32

    return {task: export_fp32(pt, 640) for task, pt in (("detect", detect_pt), ("segment", seg_pt), ("pose", pose_pt))}


EXPECTED_BOUNDARY = {"detect": 6, "segment": 10, "pose": 9}  # box+cls convs x3 levels (+ mask coeffs x3 + proto)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["detect", "segment", "pose"])
def test_decode_scope_found_by_pattern(fp32_models, task):
    from yolovino.quantize.scopes import find_decode_scope

    model, meta = fp32_models[task]
    assert meta.task == task
    scope = find_decode_scope(model)
    ops = {op.get_friendly_name(): op for op in model.get_ordered_ops()}
    kinds = [ops[n].get_type_name() for n in scope.names]
    # the decode: DFL softmax + its fixed conv, class sigmoid, anchor/stride arithmetic, concatenation
    assert kinds.count("Softmax") == 1 and kinds.count("Convolution") == 1 and len(scope.dfl_convs) == 1
    assert "Sigmoid" in kinds and "Concat" in kinds and "Multiply" in kinds
    if task == "pose":  # keypoint decode: visibility sigmoid and (x * 2 + anchor - 0.5) * stride
        assert kinds.count("Sigmoid") == 2 and kinds.count("Multiply") >= 6
    # no learned layer is ignored: the walk stops at the head's output convs
    assert len(scope.boundary_convs) == EXPECTED_BOUNDARY[task]
    n_conv = sum(op.get_type_name() == "Convolution" for op in ops.values())
    assert n_conv - 1 > 50  # everything but the DFL conv stays quantizable
    # every output is produced inside the scope
    for result in model.get_results():
        assert result.input_value(0).get_node().get_friendly_name() in scope.names


# --- end-to-end PTQ build -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(detect_int8_build):
    return detect_int8_build


@pytest.mark.slow
def test_build_writes_irs_and_report(built):
    folder, report = built
    for rel in ("fp32/det.xml", "fp32/det.bin", "int8/det.xml", "int8/det.bin", "report.json", "report.png"):
        assert (folder / rel).is_file(), rel
    on_disk = json.loads((folder / "report.json").read_text())
    assert on_disk["task"] == "detect" and on_disk["imgsz"] == 640
    assert on_disk["calibration"]["images"] == 32
    assert on_disk["ignored_scope"]["nodes"] > 0
    for key in ("fp32", "int8"):
        v = on_disk["variants"][key]
        assert v["metrics"]["images"] == 32 and 0 < v["metrics"]["box_map"] < 1
        assert v["throughput"]["fps"] > 0 and "AsyncEngine" in v["throughput"]["method"]
    assert on_disk["variants"]["int8"]["fake_quantize_nodes"] > 50
    assert on_disk["variants"]["int8"]["size_mb"] < on_disk["variants"]["fp32"]["size_mb"] / 2
    # INT8 stays close to FP32 on the same 32 held-out images (observed: within ~1 point)
    assert on_disk["variants"]["int8"]["drop_vs_fp32"] < 0.03
    assert not list(folder.parent.glob(".det-*"))  # no staging leftovers


@pytest.mark.slow
def test_build_report_has_intervals(built):
    """Each mAP carries its 95 % bootstrap interval and INT8 its paired difference to FP32; the typed report
    reads back what the build returned."""
    from yolovino.quantize.report import load_report

    folder, report = built
    on_disk = load_report(folder / "report.json")
    assert on_disk.variants["int8"].vs_fp32 == report.variants["int8"].vs_fp32
    fp32, int8 = on_disk.variants["fp32"].metrics, on_disk.variants["int8"].metrics
    for m in (fp32, int8):
        iv = m.intervals["box_map"]
        assert iv.lo < m.box_map < iv.hi and iv.width > 0.005  # 32 images: far from certain
    diff = on_disk.variants["int8"].vs_fp32["box_map"]
    assert diff.delta == pytest.approx(int8.box_map - fp32.box_map)
    assert diff.interval.lo <= diff.delta <= diff.interval.hi
    assert diff.interval.width < fp32.intervals["box_map"].width  # pairing removes what the images share
    assert on_disk.validation.bootstrap["resamples"] == 1000


@pytest.mark.slow
def test_int8_runs_in_the_app_runtime(built, bus_image):
    from yolovino.inference import InferenceConfig, YoloModel

    model = YoloModel.load(built[0] / "int8", InferenceConfig(conf=0.25))
    assert model.meta.precision == "int8" and model.meta.task == "detect"
    res = model.predict(bus_image)
    labels = res.labels
    assert labels.count("person") >= 3 and "bus" in labels, labels
    bus = res[np.array([lbl == "bus" for lbl in labels])]
    assert bus.scores.max() > 0.6
    x1, y1, x2, y2 = bus.boxes[bus.scores.argmax()]
    assert x2 - x1 > 0.7 * bus_image.shape[1]  # the bus spans the frame: boxes decoded in float


@pytest.mark.slow
def test_validate_cli_on_built_model(built, coco_val128_yaml):
    proc = run_cli("validate", "--model", built[0] / "int8", "--data", coco_val128_yaml, "--limit", "8", "--json")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    assert metrics["images"] == 8 and metrics["box_map"] > 0.2


@pytest.mark.slow
def test_failed_build_leaves_previous_model_intact(built, monkeypatch, detect_pt, coco128_yaml):
    import yolovino.quantize.ptq as ptq_module
    from yolovino.quantize.build import build
    from yolovino.quantize.options import BuildSettings

    folder = built[0]
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    def boom(*a, **k):
        raise KeyboardInterrupt  # as if the user hit Ctrl-C in the middle of quantization

    monkeypatch.setattr(ptq_module, "quantize_ptq", boom)
    with pytest.raises(KeyboardInterrupt):
        build(
            BuildSettings(
                detect_pt,
                name="det",
                data=coco128_yaml,  # train = val: allowed, this test is about the staged folder
                subset_size=4,
                bench_seconds=0,
                out=folder.parent,
                allow_overlap=True,
            )
        )
    after = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert after == before
    assert not list(folder.parent.glob(".det-*"))


def test_calibration_tensor_matches_runtime_graph(bus_image):
    """Host preprocessing for calibration == the in-graph letterbox/RGB//255 of the runtime."""
    import openvino as ov
    import openvino.opset13 as ops

    from yolovino.inference.core.geometry import Letterbox
    from yolovino.inference.model.ir import build_graph
    from yolovino.quantize.calibration import preprocess

    x, lb = preprocess(bus_image, (640, 640))
    assert (
        x.shape == (1, 3, 640, 640)
        and x.dtype == np.float32
        and lb == Letterbox.fit(bus_image.shape[:2], (640, 640), 32, False)
    )
    param = ops.parameter([1, 3, 640, 640], np.float32)
    identity = ov.Model([ops.result(ops.multiply(param, np.float32(1.0)))], [param])
    compiled = ov.Core().compile_model(build_graph(identity, lb), "CPU")
    graph_x = compiled(bus_image[None])[0]
    assert np.abs(graph_x - x).max() < 2.5 / 255  # bilinear rounding only (host resize works in uint8)
    assert np.abs(graph_x - x).mean() < 0.5 / 255


@pytest.mark.slow
def test_accuracy_control_small(fp32_models, coco128_yaml, coco_val128_yaml):
    """quantize_with_accuracy_control wiring: our validation_fn on the raw model, reverted layers reported."""
    from yolovino.quantize.accuracy_control import quantize_ac
    from yolovino.quantize.calibration import ImageSource
    from yolovino.quantize.options import QuantOptions
    from yolovino.quantize.ptq import count_fake_quantize, quantize_ptq, quantized_ops

    model, meta = fp32_models["detect"]
    calib = ImageSource.from_args(coco128_yaml).tensors(meta.imgsz, meta.stride, limit=16)
    ptq = quantize_ptq(model, meta, calib, QuantOptions(subset_size=16))
    res = quantize_ac(
        model,
        meta,
        calib,
        coco_val128_yaml,
        max_drop=0.001,
        options=QuantOptions(subset_size=16),
        val_images=8,
        max_iterations=1,
        ptq_model=ptq,
    )
    assert count_fake_quantize(res.model) > 0
    assert json.loads(res.model.get_rt_info(["yolo_app", "meta"]).astype(str))["precision"] == "int8-ac"
    assert set(res.reverted) <= quantized_ops(ptq)
    assert res.reverted_source


def test_quant_options_reach_nncf(fp32_models, coco128_yaml):
    """Preset / range estimator / subset size are validated up front and change what NNCF computes."""
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    from yolovino.quantize.calibration import ImageSource
    from yolovino.quantize.errors import QuantizeError
    from yolovino.quantize.options import QuantOptions
    from yolovino.quantize.ptq import quantize_ptq

    kw = QuantOptions(range_estimator="mean_minmax", subset_size=500).nncf_kwargs(8)
    assert kw["subset_size"] == 8
    assert kw["advanced_parameters"].activations_range_estimator_params == RangeEstimatorParametersSet.MEAN_MINMAX
    assert "advanced_quantization_parameters" in QuantOptions(range_estimator="minmax").nncf_kwargs(
        8, accuracy_control=True
    )
    assert "advanced_parameters" not in QuantOptions().nncf_kwargs(8)
    # SmoothQuant on the convolutions: NNCF runs it only for ModelType.TRANSFORMER, with the range estimator kept
    import nncf

    kw = QuantOptions(smooth_quant=0.05, range_estimator="minmax").nncf_kwargs(8)
    assert kw["model_type"] == nncf.ModelType.TRANSFORMER
    assert kw["advanced_parameters"].smooth_quant_alphas.convolution == 0.05
    assert kw["advanced_parameters"].smooth_quant_alphas.matmul == -1
    assert kw["advanced_parameters"].activations_range_estimator_params == RangeEstimatorParametersSet.MINMAX
    assert "model_type" not in QuantOptions().nncf_kwargs(8)
    # per-task defaults (chosen on a split disjoint from the reported one), overridable
    assert QuantOptions.for_task("pose").fast_bias_correction is False
    assert QuantOptions.for_task("detect").fast_bias_correction is True
    assert QuantOptions.for_task("pose", fast_bias_correction=True).fast_bias_correction is True
    for bad in ({"range_estimator": "median"}, {"preset": "fast"}, {"subset_size": 0}, {"smooth_quant": 1.5}):
        with pytest.raises(QuantizeError):
            QuantOptions(**bad)

    model, meta = fp32_models["detect"]
    calib = ImageSource.from_args(coco128_yaml).tensors(meta.imgsz, meta.stride, limit=8)

    def activation_ranges(options: QuantOptions) -> np.ndarray:
        q = quantize_ptq(model, meta, calib, options)
        highs = [
            op.input_value(2).get_node().get_data().max()
            for op in q.get_ordered_ops()
            if op.get_type_name() == "FakeQuantize" and op.input_value(0).get_node().get_type_name() != "Constant"
        ]
        return np.array(highs, dtype=np.float64)

    minmax = activation_ranges(QuantOptions(subset_size=8, range_estimator="minmax"))
    mean_minmax = activation_ranges(QuantOptions(subset_size=8, range_estimator="mean_minmax"))
    assert len(minmax) == len(mean_minmax) > 20
    # the largest value over the batch bounds the mean of the per-image largest values, and differs from it
    assert np.all(minmax >= mean_minmax - 1e-4) and np.any(minmax > mean_minmax + 1e-3)


@pytest.mark.slow
def test_float_branches_stay_in_float(fp32_models, coco128_yaml):
    """Head branches found by structure; the ones QuantOptions keeps in float get no INT8 op, the others do."""
    from yolovino.quantize.calibration import ImageSource
    from yolovino.quantize.options import QuantOptions
    from yolovino.quantize.ptq import quantize_ptq, quantized_ops
    from yolovino.quantize.scopes import head_branches

    pose, pose_meta = fp32_models["pose"]
    assert {k: len(v) for k, v in head_branches(pose, len(pose_meta.names)).items()} == {"box": 9, "cls": 9, "kpt": 9}
    model, meta = fp32_models["segment"]
    branches = head_branches(model, len(meta.names))
    assert {k: len(v) for k, v in branches.items()} == {"box": 9, "cls": 9, "mask": 9, "proto": 4}
    assert all(".cv4." in n for n in branches["mask"]) and all(".proto." in n for n in branches["proto"])
    calib = ImageSource.from_args(coco128_yaml).tensors(meta.imgsz, meta.stride, limit=4)
    int8 = quantized_ops(
        quantize_ptq(model, meta, calib, QuantOptions(subset_size=4, float_branches=("mask", "proto")))
    )
    assert not int8 & set(branches["mask"] + branches["proto"])
    assert set(branches["box"] + branches["cls"]) <= int8
