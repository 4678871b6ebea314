"""What the analytics benches share: the sample clips' ground truth (counted by eye), the
analytics set-up of each clip, one detection pass per clip, and replaying its detections through the
analytics stage at any detect-every-Nth stride (exactly what StridedEngine + Analytics do in the pipeline,
without running the detector again).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from yolovino.inference import AsyncEngine, InferenceConfig, YoloModel
from yolovino.inference.analytics.config import parse_analytics, resolve_classes
from yolovino.inference.analytics.stage import Analytics
from yolovino.inference.core.events import EventKind
from yolovino.inference.core.results import Frame, Results
from yolovino.inference.sources import SourceStats, open_source

# Counted from contact sheets (tracker_compare.py --sheets); see tests/test_analytics_clips.py for who is who.
PEOPLE_INTERVALS = [(55, 215), (225, 460), (500, 715), (740, 880), (920, 1210), (1230, 1380)]  # person clip
TRUTH = {
    "one-by-one-person-detection.mp4": {"people": 6, "zone_entries": 6},
    "car-detection.mp4": {"tracks": 4, "in": 2, "out": 2},
}
SETUP: dict[str, dict] = {  # the analytics each clip is measured with (the same as the tests')
    "one-by-one-person-detection.mp4": {
        "zones": [
            {
                "name": "table",
                "points": [[0.45, 0.8], [0.7, 0.8], [0.7, 0.96], [0.45, 0.96]],
                "classes": ["person"],
                "dwell_s": 5,
            }
        ]
    },
    "car-detection.mp4": {"lines": [{"name": "middle", "points": [[0.0, 0.5], [1.0, 0.5]], "anchor": "center"}]},
}


class Cam:
    def __init__(self, sid: str, fps: float):
        self.id, self.fps, self.stats = sid, fps, SourceStats()


@dataclass
class Detections:
    clip: str
    fps: float
    frames: list[tuple[int, float, Results]]  # index, pts, results
    seconds: float  # the detection pass (decode + infer), for the saving of skipped frames


def detect_clip(model_path: Path, clip: Path) -> Detections:
    """Every frame of the clip through the detector (default thresholds), results kept."""
    model = YoloModel.load(model_path, InferenceConfig())
    src = open_source(str(clip), live=False)
    fps = src.fps or 25.0
    frames = []
    t0 = time.perf_counter()
    with AsyncEngine(model) as engine:
        for _, res, f in engine.stream(((f.image, f) for f in src), with_userdata=True):
            frames.append((f.index, f.pts if f.pts is not None else f.index / fps, res))
    return Detections(clip.name, fps, frames, time.perf_counter() - t0)


def replay(dets: Detections, stride: int = 1, tracker: dict | str | None = None, setup: dict | None = None, keep=None):
    """The clip's detections through the analytics stage, the detector "skipping" all but every stride-th
    frame; returns (events incl. the final ones, snapshot of the source). `keep`: a list that receives
    (frame index, results with track IDs) per frame."""
    raw: dict = dict(setup if setup is not None else SETUP[dets.clip])
    if tracker is not None:
        raw["tracker"] = tracker
    names = dets.frames[0][2].names
    analytics = Analytics(resolve_classes(parse_analytics(raw), names))
    cam = Cam("clip", dets.fps)
    image = np.zeros((*dets.frames[0][2].frame_shape, 3), np.uint8)
    events = []
    for k, (index, pts, res) in enumerate(dets.frames):
        if k % stride:
            res = Results.empty(names, res.frame_shape)
            res.carried = True
        out, info = analytics.process(cam, Frame(image, index, "clip", pts, 0.0), res)
        events += info.events if info else []
        if keep is not None:
            keep.append((index, out))
    events += analytics.close()
    return events, analytics.snapshot()["clip"]


def score(dets: Detections, events, snap) -> dict:
    """The clip's counts against the truth."""
    ended = [e for e in events if e.kind == EventKind.ENDED]
    if dets.clip.startswith("one-by-one"):
        people = len({e.track_id for e in ended if e.label == "person"})
        zone = snap["regions"][0]
        out = {"people": people, "zone_entries": sum(zone.entries.values())}
    else:
        line = snap["regions"][0]
        out = {
            "tracks": len({e.track_id for e in ended}),
            "in": sum(line.crossed_in.values()),
            "out": sum(line.crossed_out.values()),
        }
    truth = TRUTH[dets.clip]
    out["correct"] = all(out[k] == v for k, v in truth.items())
    return out


def idf1_person_clip(dets: Detections, tracked) -> tuple[float, int]:
    """IDF1 and ID switches (motmetrics) of tracked boxes on the person clip. Truth: the detector's person
    boxes (one person is in view at a time), with the identity of the person whose interval (counted by
    eye, PEOPLE_INTERVALS) holds the frame. It scores the tracker's identities, not the detector."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    for (index, _, res), (_, out) in zip(dets.frames, tracked):
        person = (res.class_ids == 0) & (res.scores >= 0.25)
        who = next((i for i, (a, b) in enumerate(PEOPLE_INTERVALS) if a <= index <= b), None)
        gt = res.boxes[person] if who is not None else np.zeros((0, 4), np.float32)
        ids = out.track_ids if out.track_ids is not None else np.zeros(0, np.int64)
        hyp = out.boxes[ids >= 0]
        dist = 1.0 - iou(gt, hyp)  # motmetrics' own iou_matrix calls np.asfarray, gone in NumPy 2
        dist[dist > 0.5] = np.nan  # a hypothesis under 0.5 IoU does not match
        acc.update([who] * len(gt), list(ids[ids >= 0]), dist)
    summary = mm.metrics.create().compute(acc, metrics=["idf1", "num_switches"], name="person-clip")
    return float(summary["idf1"].iloc[0]), int(summary["num_switches"].iloc[0])


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of xyxy boxes."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)
