"""No accuracy figure from calibration images (issue 29): calibration and validation images compared by
content (SHA-256 of the bytes, a difference hash of the picture) on the real image folders; an overlap is
refused in one line (exit 2) before any export, unless --allow-overlap, and then every report says so
beside the figures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from yolovino.quantize.calibration import list_images, load_dataset_yaml
from yolovino.quantize.errors import QuantizeError
from yolovino.quantize.overlap import HASHES_FILE, ImageSet, compare, recorded_calibration


@pytest.fixture(scope="module")
def coco128(require_asset) -> Path:
    return require_asset("datasets/coco128/coco128.yaml")


@pytest.fixture(scope="module")
def coco_val128(require_asset) -> Path:
    return require_asset("datasets/coco-val128/coco-val128.yaml")


def _set(yaml: Path, split: str) -> ImageSet:
    return ImageSet.of(f"{yaml} ({split})", load_dataset_yaml(yaml, split).images)


def test_coco128_train_vs_its_val_is_refused(coco128):
    calib, val = _set(coco128, "train"), _set(coco128, "val")  # the yaml names the same folder twice
    assert len(calib.hashes) == 128
    with pytest.raises(QuantizeError) as err:
        compare(calib, val)
    line = str(err.value)
    assert "\n" not in line and "share 128 of the 128 validation images" in line and "--allow-overlap" in line
    assert f"{coco128} (train)" in line and f"{coco128} (val)" in line  # both sets named


def test_coco128_vs_coco_val128_is_accepted(coco128, coco_val128):
    overlap = compare(_set(coco128, "train"), _set(coco_val128, "val"))
    assert overlap.shared_images == 0 and overlap.warning() is None
    assert (overlap.calibration_images, overlap.validation_images) == (128, 128)


def test_a_renamed_copy_is_found(tmp_path, coco128, coco_val128):
    """Same bytes under another name in another folder: found (a name check would miss it)."""
    val = tmp_path / "val"
    shutil.copytree(Path(coco_val128).parent / "images" / "val2017", val)
    one = list_images(Path(coco128).parent / "images" / "train2017")[17]
    shutil.copy(one, val / "000000999999.jpg")
    with pytest.raises(QuantizeError, match=r"share 1 of the 129 validation images"):
        compare(_set(coco128, "train"), ImageSet.of(str(val), list_images(val)))
    assert compare(_set(coco128, "train"), ImageSet.of(str(val), list_images(val)), allow=True).shared_images == 1


def test_a_re_encoded_copy_is_found(require_asset, coco128, coco_val128):
    """coco128-seg holds re-encoded JPEGs of coco128's photos: no file bytes in common, the same pictures."""
    seg = require_asset("datasets/coco128-seg/coco128-seg.yaml")
    calib, seg_val = _set(coco128, "train"), _set(seg, "val")
    assert not calib.hashes.keys() & seg_val.hashes.keys()
    with pytest.raises(QuantizeError, match="share 128 of the 128 validation images"):
        compare(calib, seg_val)
    assert compare(_set(coco_val128, "val"), seg_val).shared_images == 0  # what the segment bench does


def test_the_same_name_with_other_content_is_not_an_overlap(tmp_path, coco128):
    calib = tmp_path / "calib"
    calib.mkdir()
    first, second = list_images(Path(coco128).parent / "images" / "train2017")[:2]
    shutil.copy(first, calib / "x.jpg")
    val = tmp_path / "val"
    val.mkdir()
    shutil.copy(second, val / "x.jpg")
    assert compare(ImageSet.of("c", list_images(calib)), ImageSet.of("v", list_images(val))).shared_images == 0


def test_the_recorded_calibration_reads_back(tmp_path, coco128):
    calib = _set(coco128, "train")
    (tmp_path / "det" / "int8").mkdir(parents=True)
    calib.write(tmp_path / "det" / HASHES_FILE)
    back = recorded_calibration(tmp_path / "det" / "int8")
    assert back is not None and back.hashes == calib.hashes and back.name == calib.name
    assert back.digest == calib.digest
    assert recorded_calibration(tmp_path / "elsewhere") is None


def _one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_build_refuses_before_export(tmp_path, capsys, coco128, detect_pt):
    from yolovino.quantize.cli import main

    out = tmp_path / "models"
    rc = main(["build", "--weights", str(detect_pt), "--data", str(coco128), "--out", str(out)])
    line = _one_error_line(capsys)
    assert rc == 2 and "share 128 of the 128 validation images" in line, line
    assert not out.exists() or not any(out.iterdir())  # nothing exported, nothing staged
    print(line)  # the refusal as a user sees it (pytest -s)


def test_sensitivity_refuses_before_export(tmp_path, capsys, coco128, detect_pt):
    from yolovino.quantize.cli import main

    rc = main(["sensitivity", "--weights", str(detect_pt), "--data", str(coco128), "--out", str(tmp_path / "m")])
    assert rc == 2 and "share 128 of the 128 validation images" in _one_error_line(capsys)
    assert not (tmp_path / "m").exists()


def test_validate_compares_with_the_calibration_its_build_recorded(tmp_path, capsys, coco128, coco_val128):
    from yolovino.quantize.cli import main, validate_overlap

    model = tmp_path / "det" / "int8"
    model.mkdir(parents=True)
    _set(coco128, "train").write(tmp_path / "det" / HASHES_FILE)
    rc = main(["validate", "--model", str(model), "--data", str(coco128)])
    assert rc == 2 and "share 128 of the 128 validation images" in _one_error_line(capsys)
    assert validate_overlap(model, coco128, 8, allow=True).shared_images == 8  # --limit: the images scored
    assert validate_overlap(model, coco_val128, None, allow=False).shared_images == 0
    assert validate_overlap(tmp_path / "foreign", coco128, None, allow=False) is None  # nothing recorded


def test_allow_overlap_marks_the_report(tmp_path, coco128):
    """A build with --allow-overlap: report.json, the printed summary and report.png's title say so."""
    from yolovino.quantize.report import BuildReport, Calibration, Validation, load_report, summary_lines, write_report

    overlap = compare(_set(coco128, "train"), _set(coco128, "val"), allow=True)
    report = BuildReport(
        name="det",
        task="detect",
        calibration=Calibration(f"{coco128} (train)", 128),
        validation=Validation(str(coco128), "val", 128),
        overlap=overlap,
    )
    write_report(tmp_path, report)
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk["overlap"]["shared_images"] == 128 and on_disk["overlap"]["allowed"] is True
    assert on_disk["overlap"]["calibration"] == f"{coco128} (train)"
    assert on_disk["overlap"]["validation"] == f"{coco128} (val)"
    assert load_report(tmp_path / "report.json").overlap == overlap
    lines = summary_lines(report)
    assert any(line.startswith("WARNING: 128 of the 128 validation images are calibration images") for line in lines)
    assert any(line.startswith("calibration: ") for line in lines)
    assert any(line.startswith("validation: ") and "shares 128" in line for line in lines)
    assert (tmp_path / "report.png").stat().st_size > 0
    # a disjoint build names both sets and says nothing is shared
    report.overlap = compare(_set(coco128, "train"), ImageSet.of("v", []), allow=False)
    assert not any(line.startswith("WARNING") for line in summary_lines(report))


def test_quantize_bench_refuses_before_the_first_build(monkeypatch, tmp_path, capsys):
    """The bench checks every task's data first; its own TASKS are disjoint (segment: calibrated on
    coco-val128's images, scored on coco128-seg), so here segment is pointed at coco128's images."""
    import importlib

    qb = importlib.import_module("bench.quantize_bench")  # (not followed by mypy: bench imports tests' helpers)

    for task in qb.TASKS:  # the shipped choices pass
        qb.data_overlap(qb.assets() / qb.TASKS[task]["calib"], qb.validation_yaml(task, tmp_path / task))
    monkeypatch.setitem(qb.TASKS, "segment", {**qb.TASKS["segment"], "calib": "datasets/coco128/images/train2017"})
    assert qb.main(["--tasks", "detect,segment", "--out", str(tmp_path / "out")]) == 2
    line = _one_error_line(capsys)
    assert line.startswith("error: segment: calibration images") and "share 128 of the 128" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("task", ["detect", "segment", "pose"])
def test_default_builds_calibrate_on_images_they_never_score(task, require_asset):
    """`build-default --task T` (and the benches, which share options.DEFAULT_BUILDS): calibration from a folder
    of images, validation on labelled images that are other pictures (segment: coco-val128's photos, since
    coco128-seg's are coco128's re-encoded)."""
    from yolovino.quantize.cli import default_build_settings
    from yolovino.quantize.options import DEFAULT_BUILDS

    for key in ("pt", "calib", "val"):
        require_asset(DEFAULT_BUILDS[task][key])
    s = default_build_settings(task)
    assert s.data is None and s.calib_images is not None and s.validation_data == s.val_data
    calib = ImageSet.of(str(s.calib_images), list_images(s.calib_images))
    overlap = compare(calib, _set(s.val_data, "val"))
    assert overlap.shared_images == 0 and overlap.calibration_images >= 128 and overlap.validation_images >= 32
    if task == "segment":  # what it avoids: coco128's photos are coco128-seg's
        coco128 = require_asset("datasets/coco128/images/train2017")
        assert compare(ImageSet.of("coco128", list_images(coco128)), _set(s.val_data, "val"), True).shared_images == 128


def test_build_default_names_a_missing_asset_in_one_line(tmp_path, monkeypatch, capsys):
    from yolovino.quantize.cli import main

    monkeypatch.setenv("YOLO_APP_ASSETS", str(tmp_path))
    monkeypatch.setenv("YOLO_APP_MODELS", str(tmp_path / "models"))
    assert main(["build-default", "--task", "segment"]) == 2
    line = _one_error_line(capsys)
    assert "yolov8n-seg.pt is missing" in line and str(tmp_path) in line, line
    with pytest.raises(SystemExit) as stop:  # argparse usage errors: one line, exit 2 (cli.Parser)
        main(["build-default", "--task", "obb"])
    assert stop.value.code == 2 and "--task" in _one_error_line(capsys)
