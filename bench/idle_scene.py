"""A mostly idle camera for the cameras bench: the person clip's empty room, sensor noise, a passer-by now and then.

    .venv/bin/python -m bench.idle_scene out.mp4 [--seconds 60]     # or idle_scene(clip, out) from a bench

How it is made, from the real clip (one-by-one-person-detection.mp4, 768x432 at 10 fps):
* the background plate is the per-pixel median of its first 50 frames, the empty room before anyone comes in;
* every frame is the plate plus fresh Gaussian sensor noise (sigma 3 grey levels per channel, seeded), then
  H.264 (libx264, CRF 23, a keyframe every 2 s, as a camera sends it);
* a passer-by: the woman of frame 75 cut out of the clip (the pixels that differ from the plate by more than
  30 levels inside her box, cleaned by a morphological opening and closing), scaled to 60 % and walked from
  the left edge to the right along the floor in 4 s, every `every_s` seconds, first at `first_s` (default
  half of `every_s`): cameras_bench gives each idle camera group its own `first_s`, since passers-by on
  different cameras do not walk in step.
So the camera shows an empty scene with realistic noise most of the time and a real person a few seconds in
every `every_s`, which is what two thirds of a site's cameras do most of the day.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import av
import cv2
import numpy as np

EMPTY_FRAMES = 50  # frames 0..49 of the person clip show the empty room
PERSON_FRAME = 75  # she is in full view, walking to the table
NOISE_SIGMA = 3.0
WALK_S = 4.0


def _frames(clip: Path, n: int) -> list[np.ndarray]:
    out = []
    with av.open(str(clip)) as c:
        for f in c.decode(video=0):
            out.append(f.to_ndarray(format="bgr24"))
            if len(out) == n:
                break
    return out


def _sprite(plate: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The person of `frame` (pixels, mask) as her bounding box: what differs from the plate, cleaned."""
    diff = np.abs(frame.astype(np.int16) - plate.astype(np.int16)).max(axis=2)
    mask = (diff > 30).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    if n < 2:
        raise SystemExit("idle_scene: no person found in the clip's frame 75")
    k = 1 + int(stats[1:, cv2.CC_STAT_AREA].argmax())
    x, y, w, h = (int(v) for v in stats[k, :4])
    return frame[y : y + h, x : x + w].copy(), (labels[y : y + h, x : x + w] == k)


def idle_scene(
    clip: Path, out: Path, seconds: float = 60.0, every_s: float = 30.0, seed: int = 0, first_s: float | None = None
) -> Path:
    """Write the idle camera's clip (see the module docstring) to `out` (temp file, then renamed)."""
    frames = _frames(clip, PERSON_FRAME + 1)
    plate = np.median(np.stack(frames[:EMPTY_FRAMES]), axis=0).astype(np.uint8)
    pix, mask = _sprite(plate, frames[PERSON_FRAME])
    scale = 0.6
    pix = cv2.resize(pix, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(mask.astype(np.uint8), pix.shape[1::-1], interpolation=cv2.INTER_NEAREST).astype(bool)
    h, w = plate.shape[:2]
    sh, sw = mask.shape
    fps = 10
    rng = np.random.default_rng(seed)
    first = every_s / 2 if first_s is None else first_s
    tmp = out.with_name(out.name + ".tmp.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast", "g": str(2 * fps), "tune": "zerolatency"}
        for i in range(int(seconds * fps)):
            t = i / fps
            img = plate.astype(np.float32) + rng.normal(0, NOISE_SIGMA, plate.shape).astype(np.float32)
            phase = (t - first) % every_s  # passes start at first, first + every_s, ...
            if phase < WALK_S:
                x = int(-sw + (w + sw) * phase / WALK_S)
                y = h - sh - 4
                x0, x1 = max(x, 0), min(x + sw, w)
                if x1 > x0:
                    region = img[y : y + sh, x0:x1]
                    m = mask[:, x0 - x : x1 - x]
                    region[m] = pix[:, x0 - x : x1 - x][m]
            frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="bgr24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    tmp.replace(out)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--clip", type=Path, default=None)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--every", type=float, default=30.0, help="seconds between passers-by")
    args = ap.parse_args()
    from bench.benchlib import default_clip

    clip = args.clip or default_clip("one-by-one-person-detection.mp4")
    if not clip.exists():
        print(f"idle_scene: {clip} not found", file=sys.stderr)
        return 2
    print(idle_scene(clip, args.out, args.seconds, args.every))
    return 0


if __name__ == "__main__":
    sys.exit(main())
