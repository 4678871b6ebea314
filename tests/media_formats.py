"""Video formats real cameras and phones produce, made with ffmpeg from the sample clip; no pytest here.

Shared by tests/test_formats.py (a few frames each) and bench/formats_bench.py (more frames, same recipes).
Bit rates are set per frame near what cameras send (the sample clip is ~19 kbit a frame at 768x432; an
H.264 1080p camera ~160, an H.265 4K one ~320 at 25 fps), since decoding cost grows with the bit rate and
upscaled footage would otherwise be far cheaper to decode than a real camera's.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

X264 = ("-c:v", "libx264", "-preset", "veryfast", "-g", "10")
X265 = ("-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:keyint=10")
VFR = "setpts='if(lt(N,3),N*0.1,0.3+(N-3)*0.04)/TB'"  # 10 fps for 3 frames, then 25 fps


@dataclass(frozen=True)
class Format:
    args: tuple[str, ...]  # ffmpeg output arguments
    suffix: str
    hw: tuple[int, int]  # (height, width) of the upright frames a reader must deliver
    kbit_per_frame: int | None = None  # bit rate target (None: the encoder's default quality)


FORMATS: dict[str, Format] = {
    "h264": Format(("-c", "copy"), ".mp4", (432, 768)),  # the sample clip itself: the baseline
    "h265": Format(X265, ".mp4", (432, 768), 20),
    "mjpeg": Format(("-c:v", "mjpeg", "-q:v", "3"), ".avi", (432, 768)),
    "1080p": Format(("-vf", "scale=1920:1080", *X264), ".mp4", (1080, 1920), 160),
    "4k-h265": Format(("-vf", "scale=3840:2160", *X265), ".mp4", (2160, 3840), 320),
    "odd-641x359": Format(("-vf", "scale=641:359", *X264, "-pix_fmt", "yuv444p"), ".mp4", (359, 641)),
    "rotated-phone": Format(X264, ".mp4", (432, 768)),  # stored sideways + a display matrix (make_format)
    "vfr": Format(("-vf", VFR, "-vsync", "vfr", "-enc_time_base", "1:1000", *X264), ".mp4", (432, 768)),
    "with-audio": Format(("-map", "0:v", "-map", "1:a", *X264, "-c:a", "aac", "-shortest"), ".mp4", (432, 768)),
    "one-frame": Format(X264, ".mp4", (432, 768)),
    "h265-10bit": Format((*X265, "-pix_fmt", "yuv420p10le"), ".mp4", (432, 768), 20),
    "ffv1-16bit": Format(("-c:v", "ffv1", "-pix_fmt", "yuv444p16le"), ".mkv", (432, 768)),
}


def transcode(src: Path, dst: Path, *args: str, inputs: tuple[str, ...] = ()) -> Path:
    """ffmpeg -i SRC [more inputs] ARGS DST; raises RuntimeError with ffmpeg's message."""
    cmd = ["ffmpeg", "-v", "error", "-y", "-i", str(src), *inputs, *args, str(dst)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip()}")
    return dst


def make_format(name: str, clip: Path, folder: Path, frames: int, fps: float = 10.0, fmt: Format | None = None) -> Path:
    """The first `frames` frames of `clip` (one for "one-frame") as format `name` (or `fmt`), in `folder`."""
    fmt = fmt or FORMATS[name]
    out = folder / f"{name}{fmt.suffix}"
    count = ("-frames:v", "1" if name == "one-frame" else str(frames))
    rate = ("-b:v", f"{fmt.kbit_per_frame * fps:.0f}k") if fmt.kbit_per_frame else ()
    if name == "rotated-phone":
        # pixels stored turned a quarter clockwise, and a display matrix saying: turn a quarter back
        sideways = transcode(clip, folder / "sideways.mp4", *count, "-vf", "transpose=1", *fmt.args, "-an")
        return transcode(sideways, out, "-c", "copy", "-metadata:s:v:0", "rotate=90")
    if name == "with-audio":
        audio = ("-f", "lavfi", "-i", f"sine=frequency=440:duration={frames / fps + 1:g}")
        return transcode(clip, out, *count, *fmt.args, inputs=audio)
    return transcode(clip, out, *count, *fmt.args, *rate, "-an")
