"""What the bench scripts share: the default model and clip, a free loopback port, the local RTSP server
(tests/rtsp_control.py, the same class the test fixtures use).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO, REPO / "tests"):  # the repo (inference/, quantize/) and the RTSP server control
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from rtsp_control import SYSTEM_PY, RtspServer, free_port, gst_available  # noqa: E402

__all__ = [
    "REPO",
    "SYSTEM_PY",
    "RtspServer",
    "default_clip",
    "default_model",
    "free_port",
    "gst_available",
    "video_only",
    "write_json",
]


def default_model(name: str = "yolov8n", script: str = "bench") -> Path:
    """models/<name>/int8, else fp32; exits with the command that builds one."""
    for precision in ("int8", "fp32"):
        folder = REPO / "models" / name / precision
        if any(folder.glob("*.xml")):
            return folder
    raise SystemExit(
        f"{script}: no model in models/{name}/{{int8,fp32}}: run `python -m quantize build-default` or pass --model"
    )


def default_clip(name: str = "one-by-one-person-detection.mp4") -> Path:
    from inference.assets import assets_root

    return assets_root() / "videos" / name


def video_only(clip: Path, folder: Path) -> Path:
    """A stream copy of the clip without audio (the test server serves H.264 video only)."""
    out = Path(folder) / f"{Path(clip).stem}-video.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-c", "copy", "-an", str(out)], check=True, timeout=120
    )
    return out


from inference.fileio import write_json  # noqa: E402  (results JSON, atomic: a killed run leaves the old one)
