"""One exception type for everything the runtime rejects, so callers catch one thing."""


class InferenceError(Exception):
    """Bad model, bad frame or bad source: the message says what to fix."""


class ModelError(InferenceError):
    """The IR is missing, unreadable, or not a YOLOv8/YOLO11 model written by quantize/."""


class FrameError(InferenceError):
    """A frame that is not a non-empty uint8 HxWx3 (or HxW / HxWx4, which we convert) array."""


class SourceError(InferenceError):
    """A video source that cannot be opened or read."""


class ConfigError(InferenceError):
    """A configuration (CLI, YAML or UI) that cannot work; the message names the key path. The CLI exits 2."""
