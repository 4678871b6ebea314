"""What the bench scripts share: the default model and clip, a free loopback port, the local RTSP server
(tests/rtsp_control.py, the same class the test fixtures use).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
from tests.rtsp_control import SYSTEM_PY, RtspServer, free_port, gst_available  # noqa: E402

__all__ = [
    "ASSETS",
    "TASKS",
    "ensure_models",
    "machine_info",
    "machine_line",
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
        f"{script}: no model in models/{name}/{{int8,fp32}}: run `yolovino-quantize build-default` or pass --model"
    )


def default_clip(name: str = "one-by-one-person-detection.mp4") -> Path:
    from yolovino.common.paths import assets_root

    return assets_root() / "videos" / name


def video_only(clip: Path, folder: Path) -> Path:
    """A stream copy of the clip without audio (the test server serves H.264 video only)."""
    out = Path(folder) / f"{Path(clip).stem}-video.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-c", "copy", "-an", str(out)], check=True, timeout=120
    )
    return out


from yolovino.inference.core.fileio import write_json  # noqa: E402  (results JSON, atomic: a killed run leaves the old one)


def source_counts(sources) -> dict[str, tuple[int, int]]:
    """Frames read and dropped (keep-latest) so far, per source id: a measured window's start and end."""
    return {s.id: (s.stats.frames_read, s.stats.frames_dropped) for s in sources}


def _assets() -> Path:
    from yolovino.common.paths import assets_root

    return assets_root()


ASSETS = _assets()
# task -> (model name, checkpoint, calibration images, validation yaml, calibration yaml for the peer export)
TASKS = {
    "detect": (
        "yolov8n",
        "yolov8n.pt",
        "datasets/coco128/images/train2017",
        "datasets/coco-val128/coco-val128.yaml",
        "datasets/coco128/coco128.yaml",
    ),
    "segment": (
        "yolov8n-seg",
        "yolov8n-seg.pt",
        "datasets/coco-val128/images/val2017",
        "datasets/coco128-seg/coco128-seg.yaml",
        "datasets/coco128-seg/coco128-seg.yaml",
    ),
    "pose": (
        "yolov8n-pose",
        "yolov8n-pose.pt",
        "datasets/coco128/images/train2017",
        "datasets/coco-mini-pose/coco-mini-pose.yaml",
        "datasets/coco-mini-pose/coco-mini-pose.yaml",
    ),
}


def ensure_models(task: str) -> Path:
    name, pt, calib, val, _ = TASKS[task]
    root = REPO / "models" / name
    if not (any((root / "fp32").glob("*.xml")) and any((root / "int8").glob("*.xml"))):
        print(f"[{task}] building {root} with yolovino-quantize build", file=sys.stderr, flush=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "yolovino.quantize",
                "build",
                "--weights",
                str(ASSETS / "models/reconstructed" / pt),
                "--calib-images",
                str(ASSETS / calib),
                "--val-data",
                str(ASSETS / val),
                "--mode",
                "ptq",
                "--subset-size",
                "128",
                "--val-limit",
                "32",
                "--bench-seconds",
                "0",
            ],
            cwd=REPO,
            check=True,
        )
    return root


def machine_info() -> dict:
    """What the numbers were measured on: CPU model, the ISA extensions that change inference speed, cores,
    and what OpenVINO's CPU plugin says of itself (speed differs 2-3x between the CPUs these boxes get)."""
    import openvino as ov

    model, flags = "unknown", set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_bf16", "amx_int8")
    core = ov.Core()
    return {
        "cpu": model,
        "isa": [f for f in wanted if f in flags],
        "cores": os.cpu_count(),
        "openvino": ov.__version__,
        "ov_cpu_capabilities": list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
    }


def machine_line(info: dict | None = None) -> str:
    info = info or machine_info()
    return (
        f"machine: {info['cpu']} x{info['cores']}, ISA {' '.join(info['isa']) or '-'}, "
        f"OpenVINO {info['openvino']} ({' '.join(info['ov_cpu_capabilities'])})"
        + (f", ONEDNN_MAX_CPU_ISA={info['onednn_max_cpu_isa']}" if info["onednn_max_cpu_isa"] else "")
    )
