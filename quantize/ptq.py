"""Post-training quantization (NNCF) of the raw FP32 YOLOv8 network, with the decode kept in float."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import openvino as ov

from inference.model import ModelMeta

from .errors import QuantizeError
from .export import attach_meta
from .options import QuantOptions
from .scopes import find_decode_scope


def quiet_nncf() -> None:
    """NNCF logs every step at INFO; our CLI prints its own progress."""
    logging.getLogger("nncf").setLevel(logging.WARNING)


def quantize_ptq(
    model: ov.Model,
    meta: ModelMeta,
    calib: list[np.ndarray],
    options: QuantOptions = QuantOptions(),
    *,
    extra_ignored: list[str] | None = None,
) -> ov.Model:
    """INT8 model (FakeQuantize on activations, int8 weights) from preprocessed calibration tensors.

    The ignored scope is the head's decode found by graph walking (scopes.py) plus `extra_ignored`
    (e.g. the most sensitive layers from sensitivity.py).
    """
    import nncf

    if not calib:
        raise QuantizeError("no calibration images")
    quiet_nncf()
    scope = find_decode_scope(model).ignored_scope(extra_ignored)
    try:
        q = nncf.quantize(model, nncf.Dataset(calib), ignored_scope=scope, **options.nncf_kwargs(len(calib)))
    except (RuntimeError, ValueError, nncf.ValidationError) as exc:
        raise QuantizeError(f"NNCF quantization failed: {str(exc).splitlines()[0][:200]}") from None
    attach_meta(q, replace(meta, precision="int8"))
    return q


def _int8_weights(op: ov.Node) -> bool:
    """True when an input is a compressed int8 constant (Constant i8/u8 -> Convert -> [Subtract] -> Multiply)."""
    for inp in op.inputs()[1:]:
        node = inp.get_source_output().get_node()
        for _ in range(4):
            kind = node.get_type_name()
            if kind == "Constant":
                if node.get_element_type() in (ov.Type.i8, ov.Type.u8, ov.Type.i4, ov.Type.u4):
                    return True
                break
            if kind not in ("Convert", "Subtract", "Multiply", "Reshape"):
                break
            node = node.inputs()[0].get_source_output().get_node()
    return False


def quantized_ops(model: ov.Model) -> set[str]:
    """Names of compute ops running in INT8: an input read from a FakeQuantize, or int8 weights."""
    out = set()
    for op in model.get_ordered_ops():
        if op.get_type_name() in ("FakeQuantize", "Constant", "Result", "Parameter"):
            continue
        if any(i.get_source_output().get_node().get_type_name() == "FakeQuantize" for i in op.inputs()) or (
            op.get_type_name() in ("Convolution", "MatMul", "GroupConvolution") and _int8_weights(op)
        ):
            out.add(op.get_friendly_name())
    return out


def count_fake_quantize(model: ov.Model) -> int:
    return sum(op.get_type_name() == "FakeQuantize" for op in model.get_ordered_ops())
