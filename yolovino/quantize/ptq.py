"""Post-training quantization (NNCF) of the raw FP32 YOLOv8 network, with the decode kept in float."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import openvino as ov

from yolovino.inference.model.ir import ModelMeta
from yolovino.quantize.errors import QuantizeError
from yolovino.quantize.export import attach_meta
from yolovino.quantize.options import QuantOptions
from yolovino.quantize.scopes import find_decode_scope, head_branches, is_int8


def quiet_nncf() -> None:
    """NNCF logs every step at INFO; our CLI prints its own progress."""
    logging.getLogger("nncf").setLevel(logging.WARNING)


def ignored_scope(model: ov.Model, meta: ModelMeta, options: QuantOptions, extra: list[str] | None = None):
    """What NNCF must leave in float: the head's decode (scopes.py), the head branches the options keep in
    float (`float_branches`), and `extra` layers (e.g. the most sensitive ones from sensitivity.py)."""
    names = list(extra or [])
    if options.float_branches:
        branches = head_branches(model, len(meta.names))
        for branch in options.float_branches:
            names += branches.get(branch, [])
    return find_decode_scope(model).ignored_scope(names)


def quantize_ptq(
    model: ov.Model,
    meta: ModelMeta,
    calib: list[np.ndarray],
    options: QuantOptions = QuantOptions(),
    *,
    extra_ignored: list[str] | None = None,
) -> ov.Model:
    """INT8 model (FakeQuantize on activations, int8 weights) from preprocessed calibration tensors."""
    import nncf

    if not calib:
        raise QuantizeError("no calibration images")
    quiet_nncf()
    scope = ignored_scope(model, meta, options, extra_ignored)
    try:
        q = nncf.quantize(model, nncf.Dataset(calib), ignored_scope=scope, **options.nncf_kwargs(len(calib)))
    except (RuntimeError, ValueError, nncf.ValidationError) as exc:
        raise QuantizeError(f"NNCF quantization failed: {str(exc).splitlines()[0][:200]}") from None
    attach_meta(q, replace(meta, precision="int8"))
    return q


def quantized_ops(model: ov.Model) -> set[str]:
    """Names of the ops running in INT8 (one rule for the whole package: scopes.is_int8)."""
    return {op.get_friendly_name() for op in model.get_ordered_ops() if is_int8(op)}


def count_fake_quantize(model: ov.Model) -> int:
    return sum(op.get_type_name() == "FakeQuantize" for op in model.get_ordered_ops())
