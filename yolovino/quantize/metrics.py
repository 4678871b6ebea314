"""Accuracy figures of a validation run: COCO mAP per IoU type, and paired differences with their intervals.

Base types of quantize/: this module imports nothing of the package and no heavy library, so the build report
(report.py) and the UI catalogue can read them without OpenVINO, NNCF or faster-coco-eval.
All values are fractions (0..1); texts for people are in mAP points (x100).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# mAP50-95 and mAP50 per IoU type, in display order
METRIC_KEYS = ("box_map", "box_map50", "mask_map", "mask_map50", "pose_map", "pose_map50")
LABELS = {
    "box_map": "box mAP50-95",
    "box_map50": "box mAP50",
    "mask_map": "mask mAP50-95",
    "mask_map50": "mask mAP50",
    "pose_map": "pose mAP50-95",
    "pose_map50": "pose mAP50",
}
# the mAP50-95 metrics each task is judged on (accuracy control watches all of them)
TASK_METRICS = {"detect": ("box_map",), "segment": ("box_map", "mask_map"), "pose": ("box_map", "pose_map")}


@dataclass(frozen=True)
class Interval:
    """A 95 % bootstrap interval (fractions; BCa, see bootstrap.py)."""

    lo: float
    hi: float

    def holds(self, value: float) -> bool:
        return self.lo <= value <= self.hi

    @property
    def width(self) -> float:
        return self.hi - self.lo

    def text(self, signed: bool = False) -> str:
        f = "+.2f" if signed else ".2f"
        return f"[{self.lo * 100:{f}}, {self.hi * 100:{f}}]"


@dataclass(frozen=True)
class Difference:
    """`other - reference` on the same images (fractions) and its paired-bootstrap interval.

    "Within noise" when the interval holds 0: these images cannot tell the two models apart on this metric.
    """

    metric: str
    delta: float
    interval: Interval

    @property
    def within_noise(self) -> bool:
        return self.interval.holds(0.0)

    def text(self) -> str:
        verdict = "within noise" if self.within_noise else ("better" if self.delta > 0 else "worse")
        return f"{self.delta * 100:+.2f} {self.interval.text(signed=True)} ({verdict})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "delta": self.delta,
            "lo": self.interval.lo,
            "hi": self.interval.hi,
            "within_noise": self.within_noise,
        }

    @classmethod
    def from_dict(cls, metric: str, d: dict[str, Any]) -> Difference:
        return cls(metric, float(d["delta"]), Interval(float(d["lo"]), float(d["hi"])))


@dataclass
class Metrics:
    """mAP50-95 / mAP50 per IoU type (fractions, 0..1), their bootstrap intervals when computed, run facts.

    `evaluation` (not serialised) keeps the per-image COCO matches of the run for paired bootstraps
    (quantize/bootstrap.py); it is None for metrics read back from a report.
    """

    task: str
    images: int
    box_map: float = 0.0
    box_map50: float = 0.0
    mask_map: float | None = None
    mask_map50: float | None = None
    pose_map: float | None = None
    pose_map50: float | None = None
    seconds: float = 0.0
    intervals: dict[str, Interval] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    evaluation: Any = field(default=None, repr=False, compare=False)

    @property
    def primary(self) -> float:
        """The task's headline metric: mask mAP for segment, pose mAP for pose, box mAP otherwise."""
        value = {"segment": self.mask_map, "pose": self.pose_map}.get(self.task)
        return self.box_map if value is None else value

    def values(self) -> dict[str, float]:
        """The metrics this run has (None ones left out), in METRIC_KEYS order."""
        return {k: v for k in METRIC_KEYS if (v := getattr(self, k)) is not None}

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"task": self.task, "images": self.images}
        d.update({k: getattr(self, k) for k in METRIC_KEYS})
        d["seconds"] = self.seconds
        d["primary"] = self.primary
        if self.intervals:
            d["intervals"] = {k: [iv.lo, iv.hi] for k, iv in self.intervals.items()}
        d["extra"] = self.extra
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Metrics:
        """Read back `to_dict` output (older reports without intervals too; unknown keys are ignored)."""
        m = cls(task=str(d["task"]), images=int(d.get("images", 0)), seconds=float(d.get("seconds") or 0.0))
        for k in METRIC_KEYS:
            if d.get(k) is not None:
                setattr(m, k, float(d[k]))
        m.intervals = {k: Interval(float(lo), float(hi)) for k, (lo, hi) in (d.get("intervals") or {}).items()}
        m.extra = dict(d.get("extra") or {})
        return m

    def line(self) -> str:
        parts = []
        for kind in ("box", "mask", "pose"):
            v, v50 = getattr(self, f"{kind}_map"), getattr(self, f"{kind}_map50")
            if v is None:
                continue
            iv = self.intervals.get(f"{kind}_map")
            ci = f" [{iv.lo:.4f}, {iv.hi:.4f}]" if iv else ""
            parts.append(f"{kind} mAP50-95 {v:.4f}{ci} mAP50 {v50:.4f}")
        return " | ".join(parts) + f"  ({self.images} images, {self.seconds:.1f}s)"
