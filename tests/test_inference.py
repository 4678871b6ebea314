"""The engine against Ultralytics on real images: same letterbox, same boxes, classes, masks and keypoints.

Ultralytics is only the reference here (tests may import it; inference/ never does).
"""

from __future__ import annotations

import cv2
import numpy as np
import openvino as ov
import pytest

from yolovino.inference import AsyncEngine, FrameError, InferenceConfig, InferenceError, ModelError, YoloModel
from yolovino.inference.core.geometry import Letterbox
from yolovino.inference.model.ir import build_graph

SHAPES = [(1080, 810), (432, 768), (480, 640), (720, 1280), (500, 333), (17, 900), (640, 640), (1, 1)]


@pytest.mark.parametrize("hw", SHAPES)
@pytest.mark.parametrize("rect", [False, True])
def test_letterbox_geometry_matches_ultralytics(hw, rect):
    from ultralytics.data.augment import LetterBox

    ref = LetterBox((640, 640), auto=rect, stride=32).get_params({"img": np.zeros((*hw, 3), np.uint8)})
    lb = Letterbox.fit(hw, (640, 640), 32, rect)
    assert (lb.top, lb.bottom, lb.left, lb.right) == (ref["top"], ref["bottom"], ref["left"], ref["right"])
    assert lb.resized_hw[::-1] == tuple(ref["new_unpad"])
    assert all(v % 32 == 0 for v in lb.input_hw) or not rect


def _identity_net(hw: tuple[int, int]) -> ov.Model:
    """A model whose output is its input, so the in-graph preprocessing can be read back."""
    param = ov.opset13.parameter([1, 3, *hw], ov.Type.f32)
    return ov.Model([ov.opset13.relu(param)], [param])


@pytest.mark.parametrize("rect", [False, True])
def test_in_graph_preprocessing_matches_ultralytics_letterbox(bus_image, rect):
    """uint8 BGR frame in, the graph's network input out == Ultralytics LetterBox + RGB + /255 on the host."""
    from ultralytics.data.augment import LetterBox

    # portrait, 16:9 down- and upscaled, a crop, and a frame smaller than the input (upscaled rows and columns)
    for frame in (
        bus_image,
        cv2.resize(bus_image, (768, 432)),
        cv2.resize(bus_image, (1920, 1080)),
        bus_image[:300, :700],
        bus_image[100:160, 50:150],
    ):
        lb = Letterbox.fit(frame.shape[:2], (640, 640), 32, rect)
        model = build_graph(_identity_net(lb.input_hw), lb)
        got = ov.Core().compile_model(model, "CPU")(frame[None])[0][0]  # (3, H, W)
        want = LetterBox((640, 640), auto=rect, stride=32)(image=frame)[..., ::-1].transpose(2, 0, 1) / 255.0
        assert got.shape == want.shape
        diff = np.abs(got - want)
        # OpenCV resizes uint8 with fixed-point weights and rounds; the graph resizes in float.
        assert diff.max() <= 2.5 / 255 and diff.mean() < 0.3 / 255, (diff.max() * 255, diff.mean() * 255)


@pytest.mark.parametrize("hw", [(432, 768), (1080, 1920), (612, 612), (500, 333), (17, 900), (1, 1)])
def test_in_graph_resize_is_opencv_bilinear_in_float(hw):
    """Without uint8 rounding on either side, the graph's gather+lerp resize is cv2.INTER_LINEAR exactly
    (float32 images make OpenCV use float weights), down- and upscaling, edges clamped, padding 114."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
    lb = Letterbox.fit(hw, (640, 640), 32, False)
    graph = build_graph(_identity_net(lb.input_hw), lb)
    got = ov.Core().compile_model(graph, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(frame[None])[0][0] * 255
    resized = cv2.resize(frame.astype(np.float32), lb.resized_hw[::-1], interpolation=cv2.INTER_LINEAR)
    want = cv2.copyMakeBorder(resized, lb.top, lb.bottom, lb.left, lb.right, cv2.BORDER_CONSTANT, value=(114,) * 3)
    assert np.abs(got - want[..., ::-1].transpose(2, 0, 1)).max() < 0.01


def _match(ours_boxes, ref_boxes):
    """Index into ref for each of ours by best IoU."""
    import torch
    from ultralytics.utils.metrics import box_iou

    iou = box_iou(torch.from_numpy(ours_boxes), torch.from_numpy(ref_boxes)).numpy()
    return iou.argmax(1), iou.max(1)


@pytest.mark.parametrize("task", ["detect", "segment", "pose"])
def test_results_equal_ultralytics_on_same_ir(task, request, bus_image):
    """Same IR, same image: Ultralytics' OpenVINO predict and ours give the same detections."""
    from ultralytics import YOLO

    ir = request.getfixturevalue({"detect": "detect_ir", "segment": "seg_ir", "pose": "pose_ir"}[task])
    zidane = cv2.imread(str(bus_image_path().parent / "zidane.jpg"))
    for image in (bus_image, zidane):
        ours = YoloModel.load(ir, InferenceConfig(rect=False, hint="LATENCY")).predict(image)
        ref = YOLO(ultralytics_view(ir), task=task).predict(
            image, imgsz=640, conf=0.25, iou=0.7, verbose=False, retina_masks=True
        )[0]
        ref_boxes = ref.boxes.xyxy.numpy()
        # Borderline detections (score within 0.02 of the threshold) may fall either side of it.
        strong = ours.scores > 0.27
        assert abs(len(ours) - len(ref_boxes)) <= int((np.abs(ref.boxes.conf.numpy() - 0.25) < 0.02).sum()) + int(
            (~strong).sum()
        )
        idx, iou = _match(ours.boxes[strong], ref_boxes)
        assert (iou > 0.97).all(), iou
        assert (ours.class_ids[strong] == ref.boxes.cls.numpy().astype(int)[idx]).all()
        np.testing.assert_allclose(ours.scores[strong], ref.boxes.conf.numpy()[idx], atol=0.02)
        if task == "segment":
            ref_masks = ref.masks.data.numpy() > 0.5
            for i, j in enumerate(idx):
                a, b = ours.masks[strong][i], ref_masks[j]
                assert a.shape == b.shape
                inter, union = (a & b).sum(), (a | b).sum()
                assert inter / max(union, 1) >= 0.95
        if task == "pose":
            ref_kpts = ref.keypoints.data.numpy()
            k_ours, k_ref = ours.keypoints[strong], ref_kpts[idx]
            visible = k_ref[..., 2] > 0.5
            assert np.abs(k_ours[..., :2] - k_ref[..., :2])[visible].max() < 4.0
            assert np.abs(k_ours[..., 2] - k_ref[..., 2]).max() < 0.05


def ultralytics_view(ir):
    """Our IR as an Ultralytics OpenVINO folder (it wants *_openvino_model/ with metadata.yaml)."""
    import shutil
    import tempfile
    from pathlib import Path

    import yaml

    meta = YoloModel.load(ir).meta
    folder = Path(tempfile.mkdtemp()) / f"{ir.stem}_openvino_model"
    folder.mkdir()
    for suffix in (".xml", ".bin"):
        shutil.copy(ir.with_suffix(suffix), folder / f"{ir.stem}{suffix}")
    info = {
        "task": meta.task,
        "names": meta.names,
        "stride": meta.stride,
        "imgsz": list(meta.imgsz),
        "batch": 1,
        "channels": 3,
    }
    if meta.kpt_shape:
        info["kpt_shape"] = list(meta.kpt_shape)
    (folder / "metadata.yaml").write_text(yaml.safe_dump(info))
    return str(folder)


def bus_image_path():
    import importlib.util
    from pathlib import Path

    return Path(importlib.util.find_spec("ultralytics").origin).parent / "assets" / "bus.jpg"


def test_rect_input_gives_the_same_detections_and_a_smaller_graph(detect_ir, video_clip):
    import av

    with av.open(str(video_clip)) as container:
        frames = [f.to_ndarray(format="bgr24") for i, f in zip(range(300), container.decode(video=0)) if i % 25 == 0]
    square = AsyncEngine(YoloModel.load(detect_ir, InferenceConfig(rect=False)))
    rect = AsyncEngine(YoloModel.load(detect_ir, InferenceConfig(rect=True)))
    got_sq = [r for _, r, _ in square.stream(frames)]
    got_rc = [r for _, r, _ in rect.stream(frames)]
    assert rect.model.prepare(frames[0].shape[:2]).letterbox.input_hw == (384, 640)
    matched = total = 0
    for a, b in zip(got_sq, got_rc):
        strong = a.scores > 0.4
        total += int(strong.sum())
        if strong.any() and len(b):
            _, iou = _match(a.boxes[strong], b.boxes)
            matched += int((iou > 0.85).sum())
    assert total > 0 and matched / total >= 0.9


def test_fixed_shape_export_falls_back_to_square_input(video_clip, caplog):
    """Ultralytics' own static OpenVINO export (the official INT8 one) bakes its anchor grid into constants,
    so it takes only the size it was exported at: with rect on (the default) the model uses that square input,
    says so once, and gives the same detections as with rect off."""
    import av
    from conftest import require_asset

    ir = require_asset("models/int8-sources/spcc-dev__ObjectDetection/yolov8n_int8_openvino_model")
    with av.open(str(video_clip)) as container:
        frames = [f.to_ndarray(format="bgr24") for i, f in zip(range(300), container.decode(video=0)) if i % 50 == 0]
    caplog.set_level("WARNING", logger="yolovino.inference.model.ir")
    rect = YoloModel.load(ir, InferenceConfig(rect=True))
    square = YoloModel.load(ir, InferenceConfig(rect=False))
    for frame in frames:
        a, b = rect.predict(frame), square.predict(frame)
        assert np.array_equal(a.class_ids, b.class_ids) and np.allclose(a.boxes, b.boxes, atol=0.5)
    assert rect.prepare(frames[0].shape[:2]).letterbox.input_hw == tuple(rect.meta.imgsz)  # square (320 here)
    assert any("person" == rect.names[int(c)] for f in frames for c in rect.predict(f).class_ids)
    warnings = [r for r in caplog.records if "fixed input shapes" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]


def test_async_engine_returns_in_submission_order_with_mixed_sizes(detect_ir, bus_image):
    engine = AsyncEngine(YoloModel.load(detect_ir))
    small = cv2.resize(bus_image, (320, 427))
    frames = [(bus_image if i % 3 else small, i) for i in range(10)]
    out = list(engine.stream(frames, with_userdata=True))
    assert [u for _, _, u in out] == list(range(10))
    for frame, results, i in out:
        assert results.frame_shape == frame.shape[:2]
        assert {"person", "bus"} <= set(results.labels)
        assert results.boxes[:, 2].max() <= frame.shape[1] and results.boxes[:, 3].max() <= frame.shape[0]


def test_engine_keeps_a_bounded_number_of_frame_sizes(detect_ir, bus_image):
    """A camera cycling through sizes: graphs are reused while they fit in max_sizes, the least recently
    used idle one is let go beyond (and rebuilt, with the same results, when its size comes back)."""
    engine = AsyncEngine(YoloModel.load(detect_ir), max_sizes=2)
    a, b, c = (480, 640), (320, 427), (400, 300)  # (height, width)
    out = []
    for hw in [a, b, a, c, a, b]:
        engine.submit(cv2.resize(bus_image, hw[::-1]))
        out.append(engine.get()[1])
    # c came when b was the least recently used: b went; b's return pushed c out
    assert engine.frame_sizes == [a, b] and len(engine.model._graphs.by_size) == 2
    assert out[1].labels == out[5].labels and np.allclose(out[1].boxes, out[5].boxes, atol=1e-3)
    # with requests in flight a busy graph is kept; the bound holds again once they are done
    frames = [cv2.resize(bus_image, hw[::-1]) for hw in [c, a, b, c, b, a] * 2]
    assert len(list(engine.stream(frames))) == len(frames) and len(engine.frame_sizes) <= 2


def test_config_changes_apply_to_the_next_frame(detect_ir, bus_image):
    engine = AsyncEngine(YoloModel.load(detect_ir))
    ((_, loose, _),) = engine.stream([bus_image])
    engine.set_config(engine.config.with_(conf=0.8, classes=(5,)))
    ((_, strict, _),) = engine.stream([bus_image])
    assert len(loose) > len(strict) >= 1 and set(strict.labels) == {"bus"}


@pytest.mark.parametrize(
    "frame, message",
    [
        (np.zeros((0, 0, 3), np.uint8), "empty"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (np.zeros((10, 10, 2), np.uint8), "HxWx3"),
        ("not an array", "numpy"),
    ],
)
def test_bad_frames_raise_one_clear_error(detect_ir, frame, message):
    with pytest.raises(FrameError, match=message):
        YoloModel.load(detect_ir).predict(frame)


def test_grayscale_and_bgra_frames_are_converted(detect_ir, bus_image):
    model = YoloModel.load(detect_ir)
    gray = model.predict(cv2.cvtColor(bus_image, cv2.COLOR_BGR2GRAY))
    bgra = model.predict(cv2.cvtColor(bus_image, cv2.COLOR_BGR2BGRA))
    assert "person" in gray.labels and "bus" in bgra.labels


def test_bad_models_raise_model_error(tmp_path, detect_ir):
    with pytest.raises(ModelError, match="not found"):
        YoloModel.load(tmp_path / "nope.xml")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="exactly one"):
        YoloModel.load(tmp_path / "empty")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "m.xml").write_text("<net>not really</net>")
    (broken / "m.bin").write_bytes(b"")
    with pytest.raises(ModelError, match="cannot read"):
        YoloModel.load(broken)
    nobin = tmp_path / "nobin"
    nobin.mkdir()
    (nobin / "m.xml").write_text(detect_ir.read_text())
    with pytest.raises(ModelError, match="missing"):
        YoloModel.load(nobin)
    # A real IR that is not YOLO: no metadata.
    plain = tmp_path / "plain"
    ov.save_model(_identity_net((64, 64)), plain / "p.xml")
    with pytest.raises(ModelError, match="no YOLO metadata"):
        YoloModel.load(plain)
    assert issubclass(ModelError, InferenceError)


@pytest.mark.parametrize("kwargs", [{"conf": -0.1}, {"iou": 1.5}, {"hint": "FAST"}, {"max_det": 0}])
def test_bad_config_values_are_refused(kwargs):
    with pytest.raises(InferenceError):
        InferenceConfig(**kwargs)


def test_results_to_dict_is_json_ready(seg_ir, pose_ir, bus_image):
    import json

    for ir in (seg_ir, pose_ir):
        results = YoloModel.load(ir).predict(bus_image)
        d = json.loads(json.dumps(results.to_dict()))
        assert len(d["detections"]) == len(results) > 0
        assert ("mask_area" in d["detections"][0]) == (results.masks is not None)
        assert ("keypoints" in d["detections"][0]) == (results.keypoints is not None)
        assert len(results[results.scores > 0.5]) == int((results.scores > 0.5).sum())


@pytest.mark.parametrize("nc", [1, 80])
@pytest.mark.parametrize("density", ["sparse", "dense"])
def test_score_filter_keeps_argmax_class_and_score(nc, density):
    """select() takes the max first and the argmax only above conf; it must keep exactly the rows, classes
    (first maximum on ties) and scores of the plain argmax formulation, on the transposed output layout."""
    from yolovino.inference.postprocess.nms import select

    rng = np.random.default_rng(nc)
    out = rng.random((4 + nc, 2000), dtype=np.float32)
    out[:4] *= 600
    out[4:] = out[4:] ** (1 if density == "dense" else 40)
    out[4:, 7] = 0.8  # a tie across every class: the first class must win
    pred = out.T  # the engine's view: (N, 4 + nc), not contiguous
    boxes, scores, ids, _ = select(pred, nc, 0.25, 1.1, 10_000)  # iou 1.1: NMS keeps every candidate
    cls = np.ascontiguousarray(pred[:, 4:])
    want_ids = cls.argmax(1)
    want_scores = cls[np.arange(len(cls)), want_ids]
    rows = np.nonzero(want_scores > 0.25)[0]
    got = sorted(zip(scores.tolist(), ids.tolist()))
    assert got == sorted(zip(want_scores[rows].tolist(), want_ids[rows].astype(int).tolist()))
    assert len(got) > (1000 if density == "dense" else 0)
    assert 0 in ids[np.isclose(scores, 0.8)]
