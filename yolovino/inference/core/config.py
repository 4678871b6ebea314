"""Runtime configuration, built once from the CLI or UI and passed down (no globals)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from yolovino.inference.core.errors import InferenceError


@dataclass(frozen=True)
class InferenceConfig:
    """How a model is run and how its raw outputs are filtered.

    conf/iou: score threshold and NMS IoU threshold (Ultralytics predict defaults).
    classes: keep only these class ids (None = all).
    rect: letterbox to the smallest stride-multiple rectangle that fits the frame (faster on 16:9)
          instead of the model's square size.
    hint: OpenVINO performance hint, THROUGHPUT for streams, LATENCY for one frame at a time.
    num_requests: async infer requests; 0 = engine.default_requests (2x OpenVINO's optimal under THROUGHPUT).
    max_det: cap on detections per frame.
    multi_label: one box may carry several classes (used for mAP validation, like Ultralytics val).
    device: OpenVINO device spec (CPU, GPU, NPU, AUTO, AUTO:GPU,CPU, MULTI:..., HETERO:...); see devices.py.
    cache_dir: OpenVINO's compiled-model cache folder (None = no cache): a later start imports the
               compiled graph instead of compiling it again.
    """

    conf: float = 0.25
    iou: float = 0.7
    classes: tuple[int, ...] | None = None
    rect: bool = True
    hint: str = "THROUGHPUT"
    num_requests: int = 0
    max_det: int = 300
    multi_label: bool = False
    device: str = "CPU"
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        for name in ("conf", "iou"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InferenceError(f"{name} must be between 0 and 1, got {value}")
        if self.hint.upper() not in ("THROUGHPUT", "LATENCY", "CUMULATIVE_THROUGHPUT"):
            raise InferenceError(f"hint must be THROUGHPUT or LATENCY, got {self.hint!r}")
        if self.num_requests < 0 or self.max_det < 1:
            raise InferenceError("num_requests must be >= 0 and max_det >= 1")

    def with_(self, **changes) -> InferenceConfig:
        return replace(self, **changes)

    def graph_key(self) -> tuple:
        """The settings that change the compiled graph (the others only filter its outputs)."""
        return tuple(getattr(self, name) for name in GRAPH_FIELDS)


# fields baked into a compiled model: letterbox shape, OpenVINO performance hint, device
GRAPH_FIELDS = ("rect", "hint", "device")
