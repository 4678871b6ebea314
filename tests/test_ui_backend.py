"""The UI's backend without a browser: model catalog, report tables, input checks and their messages."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from yolovino.common.allow import AllowList
from yolovino.inference.core.config import InferenceConfig
from yolovino.inference.core.errors import InferenceError, ModelError
from yolovino.ui.catalog import discover, report_table
from yolovino.ui.context import UIContext, UserFacingError
from yolovino.ui.session import Session, SessionStore
from yolovino.ui.uploads import check_upload
from yolovino.ui.view import class_ids_for, detections_table


def _models_dir(root: Path, detect_ir: Path) -> Path:
    (root / "yolov8n").mkdir(parents=True)
    (root / "yolov8n" / "fp32").symlink_to(detect_ir.parent, target_is_directory=True)
    return root


def _ctx(models_dir: Path, tmp_path: Path, clip: Path | None = None, **kw) -> UIContext:
    # the operator's allow-list of stream sources: the local test servers and the made-up camera below
    kw.setdefault("allow", AllowList.parse(["*://127.0.0.1", "rtsp://cam"]))
    return UIContext(
        models_dir=models_dir,
        samples_dir=clip.parent if clip else None,
        default_source=clip,
        config=InferenceConfig(),
        tmp_root=tmp_path / "ui-tmp",
        **kw,
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: connections are refused


# --- catalog --------------------------------------------------------------------------------------------


def test_catalog_finds_models_and_reports_broken_folders(tmp_path, detect_ir):
    root = _models_dir(tmp_path / "models", detect_ir)
    broken = root / "broken" / "int8"
    broken.mkdir(parents=True)
    (broken / "broken.xml").write_text("<not an IR/>")
    (broken / "broken.bin").write_bytes(b"\0")
    (root / "empty").mkdir()
    cat = discover(root)
    assert cat.names == ["yolov8n"]
    entry = cat.get("yolov8n")
    assert entry.task == "detect" and entry.precisions == ["FP32"] and len(entry.names) == 80
    assert entry.names[0] == "person"
    assert entry.variants["FP32"].xml.name == "yolov8n.xml"
    assert entry.report_json is None and entry.report_png is None
    assert cat.default_model() == "yolov8n"
    assert len(cat.problems) == 1 and "broken" in cat.problems[0]
    with pytest.raises(ModelError, match="no INT8 variant"):
        cat.variant("yolov8n", "INT8")


def test_catalog_of_missing_or_empty_folder(tmp_path):
    for folder in (tmp_path / "nope", tmp_path):
        cat = discover(folder)
        assert cat.names == [] and cat.default_model() is None
        with pytest.raises(ModelError, match="No models found.*quantize build-default"):
            cat.get("yolov8n")


def _test_report():
    """TEST DATA, not measurements: a build report with intervals, as quantize/build.py writes it."""
    from yolovino.quantize.metrics import Difference, Interval, Metrics
    from yolovino.quantize.report import BuildReport, Throughput, Variant

    fp32 = Metrics("segment", 128, box_map=0.4216, mask_map=0.3376, box_map50=0.58, mask_map50=0.52)
    fp32.intervals = {"box_map": Interval(0.396, 0.4835), "mask_map": Interval(0.3194, 0.4014)}
    int8 = Metrics("segment", 128, box_map=0.4141, mask_map=0.3352, box_map50=0.57, mask_map50=0.51)
    return BuildReport(
        "seg",
        "segment",
        variants={
            "fp32": Variant("fp32/seg.xml", 13.6, metrics=fp32, throughput=Throughput(20.0)),
            "int8": Variant(
                "int8/seg.xml",
                3.9,
                metrics=int8,
                throughput=Throughput(45.5),
                vs_fp32={
                    "box_map": Difference("box_map", -0.0075, Interval(-0.015, -0.001)),
                    "mask_map": Difference("mask_map", -0.0024, Interval(-0.009, 0.005)),
                },
            ),
        },
    )


def test_report_table_shows_intervals(tmp_path):
    """The Models tab's table: each mAP with its interval, the change vs FP32 with its paired interval."""
    from yolovino.ui.catalog import report_notes, report_verdicts

    path = tmp_path / "report.json"
    path.write_text(json.dumps(_test_report().to_dict()))
    headers, rows = report_table(path)
    assert headers[:4] == ["variant", "box mAP50-95", "box mAP50-95 95% CI", "box vs FP32 [95% CI]"]
    assert "mask vs FP32 [95% CI]" in headers and headers[-2:] == ["frames/s", "size MB"]
    fp32, int8 = (dict(zip(headers, r)) for r in rows)
    assert (
        fp32["variant"] == "FP32"
        and fp32["box mAP50-95"] == "42.16"
        and fp32["box mAP50-95 95% CI"] == "[39.60, 48.35]"
    )
    assert int8["box vs FP32 [95% CI]"] == "-0.75 [-1.50, -0.10] (worse)"
    assert int8["mask vs FP32 [95% CI]"] == "-0.24 [-0.90, +0.50] (within noise)"
    assert int8["frames/s"] == 45.5 and int8["size MB"] == 3.9
    assert report_verdicts(path) == [
        "INT8 vs FP32, box mAP50-95: -0.75 [-1.50, -0.10] (worse) points",
        "INT8 vs FP32, mask mAP50-95: -0.24 [-0.90, +0.50] (within noise) points",
    ]
    assert report_notes(path)[0].startswith("task: segment")


def test_report_table_reads_an_older_report(tmp_path):
    """report.json from before intervals: the table still shows what it has."""
    path = tmp_path / "report.json"
    old = {"name": "det", "task": "detect", "variants": {"int8": {"path": "int8/det.xml", "size_mb": 3.2}}}
    old["variants"]["int8"]["metrics"] = {"task": "detect", "images": 128, "box_map": 0.4321, "primary": 0.4321}
    old["variants"]["int8"]["throughput"] = {"fps": 61.04, "frames": 300, "seconds": 5.0, "method": "AsyncEngine"}
    path.write_text(json.dumps(old))
    headers, rows = report_table(path)
    assert rows == [["INT8", "43.21", "", "", 61.0, 3.2]]


def test_report_table_unreadable_or_missing(tmp_path):
    assert report_table(None) == (["field", "value"], [])
    bad = tmp_path / "report.json"
    bad.write_text("{oops")
    headers, rows = report_table(bad)
    assert rows[0][0] == "error" and "unreadable report.json" in rows[0][1]
    bad.write_text('{"variants": {"fp32": {"mAP": 0.5}}}')  # JSON, but not a build report
    assert report_table(bad) == (["field", "value"], [["error", "not a build report (needs task and variants)"]])


# --- uploads --------------------------------------------------------------------------------------------


def test_bad_uploads_give_readable_messages(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_text("just text\n" * 100)
    with pytest.raises(UserFacingError, match=r"fake.mp4 is not a readable video"):
        check_upload(fake, 10 * 2**20)
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(UserFacingError, match=r"unsupported file type \.txt"):
        check_upload(txt, 10 * 2**20)
    with pytest.raises(UserFacingError, match="is empty"):
        (tmp_path / "empty.mp4").write_bytes(b"")
        check_upload(tmp_path / "empty.mp4", 10 * 2**20)
    with pytest.raises(UserFacingError, match=r"fake.mp4 is 1000 B; the limit is 500 B"):
        check_upload(fake, 500)
    with pytest.raises(UserFacingError, match="Upload a video or image"):
        check_upload(None, 2**20)
    jpg = tmp_path / "fake.jpg"
    jpg.write_text("not a jpeg")
    with pytest.raises(UserFacingError, match="not a readable image"):
        check_upload(jpg, 2**20)


def test_bad_upload_through_session(tmp_path, detect_ir):
    session = Session(_ctx(_models_dir(tmp_path / "models", detect_ir), tmp_path))
    fake = tmp_path / "clip.mp4"
    fake.write_bytes(b"\x00\x01garbage" * 500)
    with pytest.raises(UserFacingError, match="clip.mp4 is not a readable video"):
        list(session.process_upload(str(fake)))


def test_upload_video_writes_annotated_mp4_and_jsonl(tmp_path, detect_ir, video_clip):
    clip = tmp_path / "short.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-ss",
            "10",
            "-i",
            str(video_clip),
            "-t",
            "1",
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
    session = Session(_ctx(_models_dir(tmp_path / "models", detect_ir), tmp_path))
    calls = []
    updates = list(session.process_upload(str(clip), progress=lambda frac, desc=None: calls.append(frac)))
    last = updates[-1]
    assert last.status.startswith("Done:"), last.status
    mp4, jsonl = (Path(p) for p in last.files)
    assert mp4.suffix == ".mp4" and mp4.stat().st_size > 1000
    lines = jsonl.read_text().splitlines()
    n = int(last.status.split()[1])
    assert len(lines) == n > 5
    assert any(json.loads(line).get("detections") for line in lines), "no person found in 1 s of people"
    assert calls and calls[-1] == pytest.approx(1.0)
    assert mp4.parent.is_relative_to(tmp_path / "ui-tmp")
    session.close()
    assert not mp4.exists(), "session outputs are removed when the session ends"


def test_upload_image(tmp_path, detect_ir, bus_image):
    import cv2

    img = tmp_path / "bus.jpg"
    cv2.imwrite(str(img), bus_image)
    session = Session(_ctx(_models_dir(tmp_path / "models", detect_ir), tmp_path))
    last = list(session.process_upload(str(img)))[-1]
    assert last.status.startswith("Done:") and last.table and last.table[0][0] in ("bus", "person")
    assert [Path(p).suffix for p in last.files] == [".png", ".jsonl"]


# --- sources ----------------------------------------------------------------------------------------------


def test_unreachable_url_message(tmp_path, detect_ir):
    session = Session(_ctx(_models_dir(tmp_path / "models", detect_ir), tmp_path))
    port = _closed_port()
    for url in (f"rtsp://127.0.0.1:{port}/cam", f"http://127.0.0.1:{port}/video.mp4"):
        t0 = time.monotonic()
        with pytest.raises(UserFacingError, match=rf"Cannot open .*127\.0\.0\.1:{port}"):
            list(session.stream(url))
        assert time.monotonic() - t0 < 30  # refused at once; a generous bound for a busy box


@pytest.mark.rtsp
def test_rtsp_url_streams_with_password_redacted(tmp_path, detect_ir, rtsp_server):
    session = Session(_ctx(_models_dir(tmp_path / "models", detect_ir), tmp_path))
    frames, texts = 0, []
    for upd in session.stream(rtsp_server.url("x", auth="viewer:s3cret")):
        texts += [t for t in (upd.status, upd.stats) if t]
        frames += upd.image is not None
        if frames >= 3:
            session.stop()
    assert frames >= 3
    assert not any("s3cret" in t for t in texts), texts
    assert any("rtsp://***:***@127.0.0.1" in t for t in texts), texts


def test_sources_are_urls_or_sample_names_only(tmp_path, video_clip):
    ctx = _ctx(tmp_path, tmp_path, video_clip)
    assert ctx.resolve_source(video_clip.name) == str(video_clip)
    assert ctx.resolve_source(" rtsp://cam/1 ") == "rtsp://cam/1"
    assert ctx.samples()[0] == video_clip.name
    for bad in ("/etc/passwd", "../../etc/passwd", "nothing.mp4", ""):
        with pytest.raises(UserFacingError):
            ctx.resolve_source(bad)


def test_sample_clip_streams_and_model_switch_applies_live(tmp_path, detect_ir, pose_ir, video_clip):
    root = _models_dir(tmp_path / "models", detect_ir)
    (root / "yolov8n-pose").mkdir()
    (root / "yolov8n-pose" / "fp32").symlink_to(pose_ir.parent, target_is_directory=True)
    session = Session(_ctx(root, tmp_path, video_clip))
    stats = []
    for upd in session.stream(video_clip.name):
        if upd.stats:
            stats.append(upd.stats)
            assert upd.image.ndim == 3 and upd.image.dtype == np.uint8
        if len(stats) == 3:
            session.select("yolov8n-pose", None)
        if len(stats) == 6:
            session.set_thresholds(0.3, 0.6, None, False)  # square letterbox: graph rebuilt, stream goes on
        if len(stats) >= 9:
            session.stop()
    assert "(detect)" in stats[0] and "(pose)" in stats[-1]
    assert session.config.rect is False and session.version == 3  # model choice, pose, rect
    assert float(stats[-1].split()[1]) > 0


def test_missing_models_message(tmp_path, video_clip):
    session = Session(_ctx(tmp_path / "no-models", tmp_path, video_clip))
    with pytest.raises(InferenceError, match="No models found.*quantize build-default"):
        list(session.stream(video_clip.name))
    with pytest.raises(InferenceError, match="No models found"):
        session.webcam_frame(np.zeros((48, 64, 3), np.uint8))


# --- sessions and helpers ------------------------------------------------------------------------------


def test_sessions_are_independent(tmp_path, detect_ir):
    store = SessionStore(_ctx(_models_dir(tmp_path / "models", detect_ir), tmp_path))
    a, b = store.get("a"), store.get("b")
    assert store.get("a") is a and a is not b
    a.set_thresholds(0.6, 0.5, (0,), True)
    assert b.config.conf == 0.25 and b.config.classes is None
    assert a.config.conf == 0.6 and a.config.classes == (0,)
    store.drop("a")
    assert len(store) == 1


def test_webcam_frame_through_pipeline(tmp_path, detect_ir, bus_image):
    session = Session(_ctx(_models_dir(tmp_path / "models", detect_ir), tmp_path))
    upd = session.webcam_frame(np.ascontiguousarray(bus_image[..., ::-1]))
    assert upd.image.shape == bus_image.shape and "(detect)" in upd.stats
    labels = {row[0] for row in upd.table}
    assert "bus" in labels or "person" in labels
    session.set_thresholds(0.99, 0.7, None, True)  # live threshold change: nothing left
    assert session.webcam_frame(np.ascontiguousarray(bus_image[..., ::-1])).table == []


def test_helpers():
    names = {0: "person", 1: "bicycle", 2: "car"}
    assert class_ids_for(["car", "person"], names) == (0, 2)
    assert class_ids_for([], names) is None
    assert detections_table(None) == []


def test_launch_refuses_public_host_without_auth():
    from yolovino.ui.app import UIError, check_bind, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0")
    with pytest.raises(UIError, match="without authentication"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", ("user", "pw"))
    check_bind("127.0.0.1", None)


def test_build_demo_without_models(tmp_path):
    from yolovino.ui import build_demo

    demo = build_demo(tmp_path / "none", default_source=None, tmp_root=tmp_path / "t")
    assert demo.ui_store is not None and len(demo.ui_store) == 0


def test_ui_imports_and_builds_without_torch_or_ultralytics(tmp_path):
    """The UI is runtime code: importing it and building the page must not need torch/ultralytics/nncf."""
    import sys
    import textwrap

    code = textwrap.dedent("""
        import importlib.abc, sys
        BLOCKED = {"torch", "torchvision", "ultralytics", "nncf"}
        class Blocker(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"blocked by test: {name}", name=name)
        sys.meta_path.insert(0, Blocker())
        from pathlib import Path
        import yolovino.ui.app, yolovino.ui.catalog, yolovino.ui.context
        import yolovino.ui.session, yolovino.ui.uploads, yolovino.ui.view
        from yolovino import ui
        ui.build_demo(Path(sys.argv[1]), tmp_root=Path(sys.argv[1]) / "t")
        leaked = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
        assert not leaked, leaked
    """)
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_catalog_is_cached_until_the_models_folder_changes(tmp_path, detect_ir):
    ctx = _ctx(_models_dir(tmp_path / "models", detect_ir), tmp_path)
    first = ctx.catalog()
    assert ctx.catalog() is first  # no re-read per webcam frame
    (tmp_path / "models" / "yolov8n" / "report.json").write_text('{"note": "TEST DATA"}')
    second = ctx.catalog()
    assert second is not first and second.get("yolov8n").report_json is not None
