"""Runtime engine: OpenVINO YOLOv8/YOLO11 inference on video. Never imports torch or ultralytics."""

from .config import InferenceConfig
from .engine import AsyncEngine
from .errors import FrameError, InferenceError, ModelError, SourceError
from .model import ModelMeta, YoloModel
from .results import Results

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
