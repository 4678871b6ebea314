"""Load a YOLOv8/YOLO11 IR written by quantize/, put the letterbox into the graph, compile once per frame size.

The IR carries its own metadata (task, class names, stride, image size, keypoint shape) in rt_info, so
the runtime needs no side files and no torch. Ultralytics' own OpenVINO exports (metadata.yaml beside
the IR) load too, which lets the benchmarks run peers' models through our engine.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
from openvino.preprocess import ColorFormat, PrePostProcessor

from yolovino.inference.core.config import InferenceConfig
from yolovino.inference.core.errors import FrameError, ModelError
from yolovino.inference.core.geometry import Letterbox
from yolovino.inference.core.results import Frame, Results
from yolovino.inference.model.devices import check_device
from yolovino.inference.postprocess import SUPPORTED, TASKS, Task, make_task

log = logging.getLogger(__name__)

RT_INFO_KEY = ["yolo_app", "meta"]
PAD_VALUE = 114.0


@dataclass(frozen=True)
class ModelMeta:
    task: str
    names: dict[int, str]
    imgsz: tuple[int, int]
    stride: int = 32
    kpt_shape: tuple[int, int] | None = None
    precision: str = "fp32"
    source: str = ""

    def to_json(self) -> str:
        d = asdict(self)
        d["names"] = {str(k): v for k, v in self.names.items()}
        return json.dumps(d)

    @classmethod
    def from_dict(cls, d: dict) -> ModelMeta:
        imgsz = d.get("imgsz", 640)
        imgsz = (int(imgsz), int(imgsz)) if isinstance(imgsz, (int, float)) else tuple(int(v) for v in imgsz)
        kpt = d.get("kpt_shape")
        return cls(
            task=str(d["task"]),
            names={int(k): str(v) for k, v in dict(d["names"]).items()},
            imgsz=imgsz,
            stride=int(d.get("stride", 32)),
            kpt_shape=(int(kpt[0]), int(kpt[1])) if kpt else None,
            precision=str(d.get("precision", "fp32")),
            source=str(d.get("source", "")),
        )


@dataclass
class Prepared:
    """A model compiled for one frame size: the graph takes that size as uint8 BGR NHWC."""

    compiled: ov.CompiledModel
    letterbox: Letterbox


def find_xml(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        xmls = sorted(path.glob("*.xml"))
        if len(xmls) != 1:
            raise ModelError(f"{path}: expected exactly one .xml model in the folder, found {len(xmls)}")
        path = xmls[0]
    if not path.is_file():
        raise ModelError(f"{path}: model not found (build one with `yolovino-quantize`)")
    if path.suffix != ".xml":
        raise ModelError(f"{path}: not an OpenVINO IR (.xml)")
    if not path.with_suffix(".bin").is_file():
        raise ModelError(f"{path}: weights file {path.with_suffix('.bin').name} is missing")
    return path


def read_meta(model: ov.Model, xml: Path) -> ModelMeta:
    try:
        if model.has_rt_info(RT_INFO_KEY):
            return ModelMeta.from_dict(json.loads(model.get_rt_info(RT_INFO_KEY).astype(str)))
        side = xml.parent / "metadata.yaml"  # an Ultralytics export
        if side.is_file():
            import yaml

            d = yaml.safe_load(side.read_text())
            if isinstance(d, dict) and d.get("end2end"):  # top-k boxes out of a one-to-one head, not anchors
                raise ModelError(f"{xml}: an end-to-end (NMS-free) {d.get('head', '')} export; {SUPPORTED}")
            return ModelMeta.from_dict({**d, "source": "ultralytics-export"})
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{xml}: unreadable YOLO metadata ({exc})") from None
    raise ModelError(f"{xml}: no YOLO metadata in the IR; is this a model written by `yolovino-quantize`?")


class _Graphs:
    """Compiled graphs per frame size, shared by the YoloModels that differ only in output filtering."""

    def __init__(self) -> None:
        self.by_size: dict[tuple[int, int], Prepared] = {}
        self.lock = threading.Lock()
        self.fixed_shape = False  # the network cannot take a rectangular input (found on first use)


class YoloModel:
    """What a YOLO network means (task, names, decoding) plus compiled graphs cached per frame size.

    A YoloModel is immutable apart from its graph cache: `reconfigured(config)` gives one with other
    settings, sharing the compiled graphs when only thresholds or class filters differ.
    """

    def __init__(
        self,
        network: ov.Model,
        meta: ModelMeta,
        config: InferenceConfig,
        core: ov.Core,
        path: Path,
        *,
        graphs: _Graphs | None = None,
    ):
        self.meta, self.core, self.path = meta, core, path
        # CPU is always there: listing the devices loads every plugin, and OpenVINO's NPU plugin crashes a
        # process in which GStreamer's RTSP server (rtsp_server.py) has started
        if config.device.upper() != "CPU":
            config = config.with_(device=check_device(config.device, list(core.available_devices)))
        self.config = config
        self._network = network
        nc = len(meta.names)
        if meta.task not in TASKS:
            raise ModelError(f"{path}: task {meta.task!r} is not supported; {SUPPORTED}")
        self.task: Task = make_task(meta.task, nc=nc, kpt_shape=meta.kpt_shape)
        self._check_outputs(nc)
        self._graphs = graphs or _Graphs()

    @classmethod
    def load(cls, path: str | Path, config: InferenceConfig | None = None, core: ov.Core | None = None) -> YoloModel:
        xml = find_xml(path)
        core = core or ov.Core()
        config = config or InferenceConfig()
        if config.cache_dir:
            Path(config.cache_dir).mkdir(parents=True, exist_ok=True)
            core.set_property({"CACHE_DIR": str(config.cache_dir)})
        try:
            model = core.read_model(xml)
        except RuntimeError as exc:
            raise ModelError(f"{xml}: OpenVINO cannot read this model ({str(exc).splitlines()[0][:200]})") from None
        return cls(model, read_meta(model, xml), config, core, xml)

    def _check_outputs(self, nc: int) -> None:
        outs = self._network.outputs
        extra = {"segment": 32, "pose": int(np.prod(self.meta.kpt_shape or (17, 3)))}.get(self.meta.task, 0)
        want = 4 + nc + extra
        if len(outs) < self.task.num_outputs or len(self._network.inputs) != 1:
            raise ModelError(f"{self.path}: {len(outs)} outputs, a {self.meta.task} model has {self.task.num_outputs}")
        shape = outs[0].get_partial_shape()
        # An end-to-end head gives (1, top-k, xyxy + score + class [+ extra]); ours is (1, 4 + nc + extra,
        # anchors), and a stride-32 grid never has 6 + extra anchors (always a multiple of 21). Checked
        # first: with few anchors top-k can equal 4 + nc (80 classes at imgsz 64: 84 anchors).
        if shape.rank.is_static and shape.rank.get_length() == 3 and shape[2].is_static:
            if shape[2].get_length() == 6 + extra:
                raise ModelError(f"{self.path}: an end-to-end (NMS-free) output {shape}; {SUPPORTED}")
        ch = shape[1]
        if ch.is_static and ch.get_length() != want:
            raise ModelError(
                f"{self.path}: output has {ch.get_length()} channels, a {self.meta.task} model with {nc} classes "
                f"has {want}; {SUPPORTED}"
            )

    @property
    def names(self) -> dict[int, str]:
        return self.meta.names

    @property
    def network(self) -> ov.Model:
        """The network as read from the IR (no preprocessing); treat it as read-only."""
        return self._network

    def reconfigured(self, config: InferenceConfig) -> YoloModel:
        """The same network with other settings. Thresholds and class filters share this model's compiled
        graphs; a change of a graph setting (rect, hint, device) starts an empty graph cache."""
        same = config.graph_key() == self.config.graph_key()
        return YoloModel(self._network, self.meta, config, self.core, self.path, graphs=self._graphs if same else None)

    def prepare(self, frame_hw: tuple[int, int]) -> Prepared:
        """The compiled graph for this frame size, built on first use and cached."""
        key = (int(frame_hw[0]), int(frame_hw[1]))
        with self._graphs.lock:
            prepared = self._graphs.by_size.get(key)
            if prepared is None:
                prepared = self._prepare(key)
                self._graphs.by_size[key] = prepared
            return prepared

    def _prepare(self, key: tuple[int, int]) -> Prepared:
        rect = self.config.rect and not self._graphs.fixed_shape
        lb = Letterbox.fit(key, self.meta.imgsz, self.meta.stride, rect)
        square = Letterbox.fit(key, self.meta.imgsz, self.meta.stride, False)
        try:
            return Prepared(self._compile(build_graph(self._network, lb)), lb)
        except (RuntimeError, ModelError) as exc:
            if lb.input_hw == square.input_hw:
                if isinstance(exc, ModelError):
                    raise
                raise ModelError(
                    f"{self.path}: cannot build the input graph ({str(exc).splitlines()[0][:200]})"
                ) from None
        # Ultralytics' static exports bake the anchor grid into constants: such a network only takes the
        # size it was exported at, so rectangular input is off for it (said once per model)
        self._graphs.fixed_shape = True
        log.warning(
            "%s: the network has fixed input shapes (e.g. an Ultralytics export); using the square %dx%d input "
            "instead of %dx%d",
            self.path,
            *square.input_hw,
            *lb.input_hw,
        )
        return Prepared(self._compile(build_graph(self._network, square)), square)

    def forget(self, frame_hw: tuple[int, int]) -> None:
        """Drop the compiled graph for this frame size (it is rebuilt if the size comes back)."""
        with self._graphs.lock:
            self._graphs.by_size.pop((int(frame_hw[0]), int(frame_hw[1])), None)

    def _compile(self, model: ov.Model) -> ov.CompiledModel:
        props = {"PERFORMANCE_HINT": self.config.hint.upper()}
        try:
            return self.core.compile_model(model, self.config.device, props)
        except RuntimeError as exc:
            raise ModelError(
                f"{self.path}: compile failed on {self.config.device} ({str(exc).splitlines()[0][:200]})"
            ) from None

    def decode(self, outputs: list[np.ndarray], letterbox: Letterbox, config: InferenceConfig | None = None) -> Results:
        return self.task.decode(outputs, letterbox, self.meta.names, config or self.config)

    def predict(self, frame: np.ndarray) -> Results:
        """One frame, synchronously (for images and tests; streams go through AsyncEngine)."""
        frame = check_frame(frame)
        prepared = self.prepare(frame.shape[:2])
        request = prepared.compiled.create_infer_request()
        request.infer({0: frame[None]}, share_inputs=True)
        outputs = [request.get_output_tensor(i).data for i in range(self.task.num_outputs)]
        return self.decode(outputs, prepared.letterbox)


def build_graph(base: ov.Model, lb: Letterbox) -> ov.Model:
    """Clone the network for this frame size: uint8 BGR NHWC in; letterbox, RGB, /255 and NCHW in the graph.

    The bilinear resize is two separable passes of Gather + lerp rather than one Interpolate node, which
    `benchmark_app -pc` showed to be the costliest preprocessing layer (the README's speed section has the
    numbers). Rows go first on the uint8 NHWC frame, where a source row is one contiguous copy and a
    downscale drops rows before any float work; columns then on float NCHW.
    """
    model = base.clone()
    model.reshape({model.inputs[0]: ov.PartialShape([1, 3, *lb.input_hw])})
    ppp = PrePostProcessor(model)
    inp = ppp.input()
    inp.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(ColorFormat.BGR).set_shape(
        [1, *lb.frame_hw, 3]
    )
    inp.model().set_layout(ov.Layout("NCHW"))
    pre = inp.preprocess()
    pre.custom(lambda node: _resize_axis(node, lb.frame_hw[0], lb.resized_hw[0], axis=1))  # -> f32 NHWC
    pre.convert_layout(ov.Layout("NCHW"))
    pre.custom(lambda node: _pad(_resize_axis(node, lb.frame_hw[1], lb.resized_hw[1], axis=3), lb))
    pre.convert_color(ColorFormat.RGB)
    pre.scale(255.0)
    return ppp.build()


def linear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices (i0, i1) and weights w of each output pixel for a half-pixel bilinear resize with
    edge clamping, as cv2.INTER_LINEAR (and so Ultralytics' letterbox) computes them."""
    src = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (src - i0).astype(np.float32)


def _resize_axis(node: ov.Output, n_in: int, n_out: int, axis: int) -> ov.Output:
    """Linear resize along one axis of a rank-4 tensor: out = a + (b - a) * w, a/b gathered source lines; f32."""
    if n_in == n_out:
        return ops.convert(node, ov.Type.f32).output(0)
    i0, i1, w = linear_taps(n_in, n_out)
    a, b = (ops.convert(ops.gather(node, ops.constant(i), ops.constant(np.int64(axis))), ov.Type.f32) for i in (i0, i1))
    shape = [1, 1, 1, 1]
    shape[axis] = n_out
    return ops.add(a, ops.multiply(ops.subtract(b, a), ops.constant(w.reshape(shape)))).output(0)


def _pad(node: ov.Output, lb: Letterbox) -> ov.Output:
    """Constant 114 border around the resized NCHW image."""
    if not (lb.top or lb.bottom or lb.left or lb.right):
        return node
    return ops.pad(
        node,
        np.array([0, 0, lb.top, lb.left], np.int64),
        np.array([0, 0, lb.bottom, lb.right], np.int64),
        "constant",
        np.array(PAD_VALUE, np.float32),
    ).output(0)


def check_frame(frame: np.ndarray | Frame) -> np.ndarray:
    """uint8 HxWx3 BGR as the graph wants; grayscale and BGRA are converted, anything else is refused. A
    core Frame gives its BGR image (converted now if the source left it to first use)."""
    if isinstance(frame, Frame):
        frame = frame.image
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.size == 0:
        raise FrameError("empty frame")
    if frame.dtype != np.uint8:
        raise FrameError(f"frame must be uint8, got {frame.dtype}")
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] in (1, 4)):
        import cv2

        code = cv2.COLOR_BGRA2BGR if frame.ndim == 3 and frame.shape[2] == 4 else cv2.COLOR_GRAY2BGR
        return cv2.cvtColor(frame, code)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise FrameError(f"frame must be HxWx3 BGR, got shape {frame.shape}")
    return frame if frame.flags.c_contiguous else np.ascontiguousarray(frame)
