"""Shared test fixtures: where the assets are, and ready-to-use paths/images for the common ones.

Assets (videos, reconstructed .pt checkpoints, datasets) live in ``../shared`` next to the repo root,
or wherever the env var ``YOLO_APP_ASSETS`` points. A missing asset skips the test locally and fails it
when ``CI=true``, so CI never passes by skipping everything.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Ultralytics (used only by quantize/ and reference tests) must never try the network.
os.environ["YOLO_OFFLINE"] = "1"
# The app's compiled-model cache goes to a folder of this test session, not the user's ~/.cache.
os.environ.setdefault("YOLO_APP_CACHE", tempfile.mkdtemp(prefix="yolo-app-cache-"))

REPO_ROOT = Path(__file__).resolve().parents[1]
# fixtures of the video tests (clips, the local RTSP server), available to every test module
pytest_plugins = ["fixtures_models"]


from yolovino.common.paths import assets_root as _assets_root  # noqa: E402  (after YOLO_OFFLINE is set)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _missing(what: str) -> None:
    msg = f"{what} is missing (assets root: {_assets_root()}; set YOLO_APP_ASSETS to change it)"
    if _in_ci():
        pytest.fail(msg + " -- required when CI=true", pytrace=False)
    pytest.skip(msg)


def require_asset(relpath: str | os.PathLike) -> Path:
    """Path of an asset under the assets root; skips the test if it is missing (fails under CI=true)."""
    path = _assets_root() / relpath
    if not path.exists():
        _missing(f"asset {relpath!s}")
    return path


@pytest.fixture(scope="session")
def assets_root() -> Path:
    return _assets_root()


@pytest.fixture(name="require_asset", scope="session")
def require_asset_fixture():
    """The ``require_asset`` function, for tests that want it as a fixture."""
    return require_asset


# --- files used as they are -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def video_clip() -> Path:
    return require_asset("videos/one-by-one-person-detection.mp4")


@pytest.fixture(scope="session")
def detect_pt() -> Path:
    return require_asset("models/reconstructed/yolov8n.pt")


@pytest.fixture(scope="session")
def seg_pt() -> Path:
    return require_asset("models/reconstructed/yolov8n-seg.pt")


@pytest.fixture(scope="session")
def pose_pt() -> Path:
    return require_asset("models/reconstructed/yolov8n-pose.pt")


# --- datasets: copied once per session, since Ultralytics writes label caches next to the labels ---


def _dataset_copy(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    src = require_asset(f"datasets/{name}")
    dst = tmp_path_factory.mktemp("datasets") / name
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.cache"))
    yaml = dst / f"{name}.yaml"
    if not yaml.exists():
        _missing(f"dataset yaml datasets/{name}/{name}.yaml")
    return yaml


@pytest.fixture(scope="session")
def coco_val128_yaml(tmp_path_factory) -> Path:
    return _dataset_copy(tmp_path_factory, "coco-val128")


@pytest.fixture(scope="session")
def coco128_yaml(tmp_path_factory) -> Path:
    return _dataset_copy(tmp_path_factory, "coco128")


@pytest.fixture(scope="session")
def coco128_seg_yaml(tmp_path_factory) -> Path:
    return _dataset_copy(tmp_path_factory, "coco128-seg")


@pytest.fixture(scope="session")
def coco_pose_yaml(tmp_path_factory) -> Path:
    return _dataset_copy(tmp_path_factory, "coco-mini-pose")


# --- images -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _bus_image_cached():
    import cv2

    # find_spec locates the package without importing it (importing ultralytics pulls in torch).
    spec = importlib.util.find_spec("ultralytics")
    path = Path(spec.origin).parent / "assets" / "bus.jpg" if spec and spec.origin else None
    if path is None or not path.exists():
        _missing("ultralytics/assets/bus.jpg (from the ultralytics package)")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, f"cv2 could not read {path}"
    return img


@pytest.fixture
def bus_image(_bus_image_cached):
    """ultralytics' bus.jpg as a BGR uint8 array (H, W, 3); a fresh copy per test."""
    return _bus_image_cached.copy()


# --- FP32 IRs exported once per session (quantize/ export, ~10 s each) ---------------------------------


def _export(tmp_path_factory, pt: Path, name: str) -> Path:
    from yolovino.quantize.export import export_fp32, save_ir

    model, _ = export_fp32(pt)
    return save_ir(model, tmp_path_factory.mktemp("ir") / name / "fp32", name)


@pytest.fixture(scope="session")
def detect_ir(tmp_path_factory, detect_pt) -> Path:
    """FP32 detect IR (.xml path) exported from the reconstructed yolov8n.pt."""
    return _export(tmp_path_factory, detect_pt, "yolov8n")


@pytest.fixture(scope="session")
def seg_ir(tmp_path_factory, seg_pt) -> Path:
    return _export(tmp_path_factory, seg_pt, "yolov8n-seg")


@pytest.fixture(scope="session")
def pose_ir(tmp_path_factory, pose_pt) -> Path:
    return _export(tmp_path_factory, pose_pt, "yolov8n-pose")


@pytest.fixture(scope="session")
def detect_int8_build(tmp_path_factory, detect_pt, coco128_yaml, coco_val128_yaml):
    """(folder, report) of a real quantize-step build of the reconstructed yolov8n: FP32 + INT8 IRs, small
    calibration (32 images) and validation (32); shared by the quantize and the install tests."""
    from yolovino.quantize.build import build
    from yolovino.quantize.options import BuildSettings

    out = tmp_path_factory.mktemp("models")
    report = build(
        BuildSettings(
            detect_pt,
            name="det",
            data=coco128_yaml,
            val_data=coco_val128_yaml,
            subset_size=32,
            val_limit=32,
            bench_seconds=1.0,
            out=out,
        )
    )
    return out / "det", report
