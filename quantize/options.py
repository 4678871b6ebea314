"""NNCF calibration settings: one frozen dataclass from the CLI down to PTQ, accuracy control and reports.

Kept free of heavy imports so that `python -m quantize --help` and argument errors stay instant.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import QuantizeError

PRESETS = ("mixed", "performance")
# activation range estimators offered on the CLI ("default" = NNCF's choice for the preset);
# the comparison lives in bench/quantize_options.py
RANGE_ESTIMATORS = ("default", "minmax", "mean_minmax", "mean_quantile", "mean_no_outliers_minmax")


# Per-task defaults, chosen on data disjoint from the validation set we report on
# (bench/quantize_options.py --tasks pose --val-data <coco-mini-pose train split>): full BiasCorrection
# lifts pose keypoint mAP50-95 from 43.87 to 44.51 there (FP32 44.57); for detect and segment it was no
# better than the fast variant on their validation sets, so they keep NNCF's fast bias correction.
TASK_DEFAULTS: dict[str, dict] = {"pose": {"fast_bias_correction": False}}


def preset_of(name: str):
    import nncf

    return nncf.QuantizationPreset.MIXED if name == "mixed" else nncf.QuantizationPreset.PERFORMANCE


@dataclass(frozen=True)
class QuantOptions:
    """The NNCF calibration settings we expose; one object from CLI to PTQ, accuracy control and reports."""

    preset: str = "mixed"
    subset_size: int = 300
    fast_bias_correction: bool = True
    range_estimator: str = "default"

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise QuantizeError(f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        if self.range_estimator not in RANGE_ESTIMATORS:
            raise QuantizeError(
                f"range estimator must be one of {', '.join(RANGE_ESTIMATORS)}, got {self.range_estimator!r}"
            )
        if not isinstance(self.subset_size, int) or self.subset_size < 1:
            raise QuantizeError(f"subset size must be a positive integer, got {self.subset_size!r}")

    @classmethod
    def for_task(cls, task: str, *, fast_bias_correction: bool | None = None, **kw) -> QuantOptions:
        """Options with the task's defaults where the caller did not choose (None)."""
        if fast_bias_correction is None:
            fast_bias_correction = TASK_DEFAULTS.get(task, {}).get("fast_bias_correction", True)
        return cls(fast_bias_correction=fast_bias_correction, **kw)

    def nncf_kwargs(self, n_calib: int, accuracy_control: bool = False) -> dict:
        """Keyword arguments for nncf.quantize (or quantize_with_accuracy_control)."""
        kw = {
            "preset": preset_of(self.preset),
            "subset_size": min(self.subset_size, n_calib),
            "fast_bias_correction": self.fast_bias_correction,
        }
        if self.range_estimator != "default":
            from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
            from nncf.quantization.range_estimator import RangeEstimatorParametersSet

            advanced = AdvancedQuantizationParameters(
                activations_range_estimator_params=getattr(RangeEstimatorParametersSet, self.range_estimator.upper())
            )
            kw["advanced_quantization_parameters" if accuracy_control else "advanced_parameters"] = advanced
        return kw

    def as_dict(self) -> dict:
        return asdict(self)
