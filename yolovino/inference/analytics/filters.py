"""Per-class object filters, applied to the detections before tracking (a source's `analytics: filters:`).

    filters:
      person: {min_area: 0.002, max_ratio: 1.2, min_score: 0.5}   # a person is taller than wide
      car: {min_area: 1500}                                        # pixels: parked cars far away are noise
      "*": {max_area: 0.5}                                         # every class: nothing fills half the frame

Why before tracking: a box that is no object (a reflection scored 0.45, a whole-frame "train" for a moment,
a tiny far-away car) would otherwise start a track, take an ID and become events; filtered out, the tracker
never sees it (Frigate's per-object min_area / max_area / min_ratio / max_ratio / min_score). Areas at most
1 are fractions of the frame, larger ones pixels; the ratio is width / height.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

from yolovino.inference.core.classes import class_ids
from yolovino.inference.core.results import Results

ALL = "*"  # the key of a filter for every class (a class's own filter applies on top of it)


class ObjectFilter(BaseModel):
    """Bounds a detection of one class must meet to be tracked (each optional).

    min_area, max_area: box area, a fraction of the frame (<= 1) or pixels (> 1); min_ratio, max_ratio: width
    / height; min_score: detection score (over the model's own threshold)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    min_area: Annotated[float, Strict()] | None = Field(default=None, ge=0.0)
    max_area: Annotated[float, Strict()] | None = Field(default=None, gt=0.0)
    min_ratio: Annotated[float, Strict()] | None = Field(default=None, gt=0.0)
    max_ratio: Annotated[float, Strict()] | None = Field(default=None, gt=0.0)
    min_score: Annotated[float, Strict()] | None = Field(default=None, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> ObjectFilter:
        for lo, hi in (("min_area", "max_area"), ("min_ratio", "max_ratio")):
            a, b = getattr(self, lo), getattr(self, hi)
            if a is not None and b is not None and a > b:
                raise ValueError(f"{lo} {a:g} is above {hi} {b:g}")
        return self

    def keep(self, boxes: np.ndarray, scores: np.ndarray, frame_area: float) -> np.ndarray:
        """(N,) bool: which of the (N, 4) xyxy boxes meet every bound."""
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        ok = np.ones(len(boxes), bool)
        area = w * h
        if self.min_area is not None:
            ok &= area >= (self.min_area * frame_area if self.min_area <= 1 else self.min_area)
        if self.max_area is not None:
            ok &= area <= (self.max_area * frame_area if self.max_area <= 1 else self.max_area)
        if self.min_ratio is not None or self.max_ratio is not None:
            ratio = w / np.maximum(h, 1e-6)
            if self.min_ratio is not None:
                ok &= ratio >= self.min_ratio
            if self.max_ratio is not None:
                ok &= ratio <= self.max_ratio
        if self.min_score is not None:
            ok &= scores >= self.min_score
        return ok


def resolve_filters(
    filters: dict[str, ObjectFilter], names: dict[int, str], where: str = "analytics.filters"
) -> dict[int | None, ObjectFilter]:
    """Class names or ids -> the model's ids ("*" -> None: every class); ConfigError on an unknown class."""
    out: dict[int | None, ObjectFilter] = {}
    for key, spec in filters.items():
        ids = None if key == ALL else class_ids((key,), names, f"{where}.{key}")
        out[None if ids is None else ids[0]] = spec
    return out


def apply_filters(results: Results, filters: dict[int | None, ObjectFilter]) -> Results:
    """The detections that meet their class's filter and the "*" one (all of them when none applies)."""
    if not filters or not len(results):
        return results
    h, w = results.frame_shape
    keep = np.ones(len(results), bool)
    for cls, spec in filters.items():
        rows = np.arange(len(results)) if cls is None else np.flatnonzero(results.class_ids == cls)
        if len(rows):
            keep[rows] &= spec.keep(results.boxes[rows], results.scores[rows], float(w * h))
    return results if keep.all() else results[keep]
