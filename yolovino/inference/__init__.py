"""Runtime engine: OpenVINO YOLOv8/YOLO11 inference on video. Never imports torch or ultralytics."""

from yolovino.inference.core.config import InferenceConfig
from yolovino.inference.core.errors import FrameError, InferenceError, ModelError, SourceError
from yolovino.inference.core.results import Results
from yolovino.inference.model.engine import AsyncEngine
from yolovino.inference.model.ir import ModelMeta, YoloModel

__all__ = [
    "AsyncEngine",
    "FrameError",
    "InferenceConfig",
    "InferenceError",
    "ModelError",
    "ModelMeta",
    "Results",
    "SourceError",
    "YoloModel",
]
