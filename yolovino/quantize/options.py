"""Build and NNCF calibration settings: frozen dataclasses from the CLI down to PTQ, accuracy control and reports.

Kept free of heavy imports so that `yolovino-quantize --help` and argument errors stay instant.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from yolovino.quantize.errors import QuantizeError

PRESETS = ("mixed", "performance")
# head branches that can stay in float (quantize/scopes.py head_branches): box regression, class scores,
# segment mask coefficients, pose keypoints, segment prototypes
BRANCHES = ("box", "cls", "mask", "kpt", "proto")
# activation range estimators offered on the CLI ("default" = NNCF's choice for the preset);
# the comparison lives in bench/quantize_options.py
RANGE_ESTIMATORS = ("default", "minmax", "mean_minmax", "mean_quantile", "mean_no_outliers_minmax")


# Per-task defaults (what a command uses where its options say None), each chosen with
# bench/quantize_options.py, whose table gives every option's box and mask/keypoint change vs FP32 and vs
# NNCF's defaults with paired 95 % bootstrap intervals (the numbers are in the README):
# - pose: full BiasCorrection, chosen on coco-mini-pose's train split;
# - segment: NNCF's defaults. On disjoint data (calibrated on coco-val128's images, scored on coco128-seg,
#   2026-12-03) no option (full bias correction, 188 calibration images, SmoothQuant, accuracy control on the
#   worse of box and mask, the box branch in float; earlier: a 64-image subset, the mask or prototype branches
#   in float, and the held-out coco-val128 boxes) moved the box beyond noise, and the defaults are not below
#   FP32; the box branch in float gained +0.20 [+0.02, +0.40] mask for 0.92x the speed, too thin to earn it;
# - detect: NNCF's defaults.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {"pose": {"fast_bias_correction": False}}

# The reference build of each task (`yolovino-quantize build-default --task T`, bench/quantize_bench.py,
# bench/quantize_options.py), paths under the assets root (shared/DATA.md). Calibration and validation never
# share a picture (quantize/overlap.py, tests/test_overlap.py): segment's only polygons are coco128-seg, whose
# JPEGs are re-encoded copies of coco128's photos, so segment calibrates on coco-val128's (val2017, unlabelled
# use); pose calibrates on coco128's photos and validates on coco-mini-pose (val2017 persons with keypoints).
DEFAULT_BUILDS: dict[str, dict[str, str]] = {
    "detect": {
        "name": "yolov8n",
        "pt": "models/reconstructed/yolov8n.pt",
        "calib": "datasets/coco128/images/train2017",
        "val": "datasets/coco-val128/coco-val128.yaml",
    },
    "segment": {
        "name": "yolov8n-seg",
        "pt": "models/reconstructed/yolov8n-seg.pt",
        "calib": "datasets/coco-val128/images/val2017",
        "val": "datasets/coco128-seg/coco128-seg.yaml",
    },
    "pose": {
        "name": "yolov8n-pose",
        "pt": "models/reconstructed/yolov8n-pose.pt",
        "calib": "datasets/coco128/images/train2017",
        "val": "datasets/coco-mini-pose/coco-mini-pose.yaml",
    },
}


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
    float_branches: tuple[str, ...] = ()
    # SmoothQuant on the convolutions with this alpha (None = off). NNCF runs SmoothQuant only for
    # ModelType.TRANSFORMER, so this also sets that model type (which changes NNCF's quantizer placement too)
    smooth_quant: float | None = None

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise QuantizeError(f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        if self.range_estimator not in RANGE_ESTIMATORS:
            raise QuantizeError(
                f"range estimator must be one of {', '.join(RANGE_ESTIMATORS)}, got {self.range_estimator!r}"
            )
        if not isinstance(self.subset_size, int) or self.subset_size < 1:
            raise QuantizeError(f"subset size must be a positive integer, got {self.subset_size!r}")
        unknown = [b for b in self.float_branches if b not in BRANCHES]
        if unknown:
            raise QuantizeError(f"float branches must be among {', '.join(BRANCHES)}, got {', '.join(unknown)}")
        if self.smooth_quant is not None and not 0.0 <= self.smooth_quant <= 1.0:
            raise QuantizeError(f"SmoothQuant alpha must be in [0, 1], got {self.smooth_quant!r}")

    @classmethod
    def for_task(
        cls,
        task: str,
        *,
        fast_bias_correction: bool | None = None,
        float_branches: tuple[str, ...] | None = None,
        **kw: Any,
    ) -> QuantOptions:
        """Options with the task's defaults where the caller did not choose (None)."""
        defaults = TASK_DEFAULTS.get(task, {})
        if fast_bias_correction is None:
            fast_bias_correction = defaults.get("fast_bias_correction", True)
        if float_branches is None:
            float_branches = tuple(defaults.get("float_branches", ()))
        return cls(fast_bias_correction=fast_bias_correction, float_branches=float_branches, **kw)

    def nncf_kwargs(self, n_calib: int, accuracy_control: bool = False) -> dict[str, Any]:
        """Keyword arguments for nncf.quantize (or quantize_with_accuracy_control); the ignored scope is ptq.py's."""
        kw: dict[str, Any] = {
            "preset": preset_of(self.preset),
            "subset_size": min(self.subset_size, n_calib),
            "fast_bias_correction": self.fast_bias_correction,
        }
        advanced: dict[str, Any] = {}
        if self.range_estimator != "default":
            from nncf.quantization.range_estimator import RangeEstimatorParametersSet

            advanced["activations_range_estimator_params"] = getattr(
                RangeEstimatorParametersSet, self.range_estimator.upper()
            )
        if self.smooth_quant is not None:
            import nncf
            from nncf.quantization.advanced_parameters import AdvancedSmoothQuantParameters

            kw["model_type"] = nncf.ModelType.TRANSFORMER
            advanced["smooth_quant_alphas"] = AdvancedSmoothQuantParameters(convolution=self.smooth_quant, matmul=-1)
        if advanced:
            from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters

            params = AdvancedQuantizationParameters(**advanced)
            kw["advanced_quantization_parameters" if accuracy_control else "advanced_parameters"] = params
        return kw

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["float_branches"] = list(self.float_branches)
        return d


class QuantChoices(Protocol):
    """The quantization choices of a command (BuildSettings, or the sensitivity command's arguments)."""

    @property
    def preset(self) -> str: ...
    @property
    def subset_size(self) -> int: ...
    @property
    def fast_bias_correction(self) -> bool | None: ...
    @property
    def range_estimator(self) -> str: ...
    @property
    def float_branches(self) -> tuple[str, ...] | None: ...


def options_for(task: str, choices: QuantChoices) -> QuantOptions:
    """QuantOptions from a command's choices, the task's defaults where it made none (None)."""
    return QuantOptions.for_task(
        task,
        preset=choices.preset,
        subset_size=choices.subset_size,
        fast_bias_correction=choices.fast_bias_correction,
        range_estimator=choices.range_estimator,
        float_branches=choices.float_branches,
    )


@dataclass(frozen=True)
class BuildSettings:
    """Everything `yolovino-quantize build` takes; checks.check_build rejects bad values before any slow step.

    None for fast_bias_correction / float_branches means the task's default (TASK_DEFAULTS), known once the
    checkpoint is read.
    """

    weights: Path
    name: str | None = None
    imgsz: int | None = 640  # None: the size the checkpoint was trained at
    mode: str = "ptq"  # ptq, ac (accuracy control) or both
    data: Path | None = None  # dataset yaml: calibration from its train split, validation from val
    calib_images: Path | None = None  # a folder of calibration images instead of --data
    val_data: Path | None = None
    subset_size: int = 300
    preset: str = "mixed"
    fast_bias_correction: bool | None = None
    range_estimator: str = "default"
    float_branches: tuple[str, ...] | None = None
    max_drop: float = 0.01  # accuracy control: largest absolute drop of each task metric (mAP fraction)
    out: Path = Path("models")
    task: str | None = None
    val_limit: int | None = None
    ac_val_images: int = 64
    ac_max_iterations: int = 5
    bench_seconds: float = 5.0
    bootstrap: int = 1000  # resamples for the 95 % intervals (0 = no intervals)
    keep_fp32: tuple[str, ...] = field(default_factory=tuple)  # extra layers to leave in float
    allow_overlap: bool = False  # validate on images that are also calibration images (reports say so)

    @property
    def model_name(self) -> str:
        return self.name or Path(self.weights).stem

    @property
    def validation_data(self) -> Path | None:
        """--val-data, else the --data yaml's val split."""
        return self.val_data if self.val_data is not None else self.data

    def options_for(self, task: str) -> QuantOptions:
        return options_for(task, self)
