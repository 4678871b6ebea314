"""Which nodes of a YOLOv8 graph must stay in float: the head's decode, found by graph pattern.

Why: the end of the YOLOv8 head turns conv features into boxes, scores, mask coefficients and keypoints
(DFL softmax + fixed arange conv, sigmoid, anchor/stride arithmetic, concatenation of box coordinates
in pixels with scores in [0, 1]). Quantizing those tensors to 8 bits puts pixel coordinates up to 640
and probabilities near 0 on one scale: the INT8 model then "detects nothing" or jitters its boxes.

How others do it: Ultralytics (utils/export/openvino.py) ignores every op whose friendly name starts
with the head module's name prefix (`__module.model.22/`, found through the last Sigmoid) plus all
Sigmoids. That depends on PyTorch-frontend naming and on the head being module 22; the OpenVINO notebooks
list node names by hand for one model size.

What we do instead (names computed from structure, not from naming conventions): walk the graph
backwards from every Result. Each node reached is part of the decode, until the walk meets a
*feature boundary*: a Convolution (with its bias Add) that is one of the head's learned output convs.
The DFL convolution is the exception: it is a Convolution whose input comes (through
Reshape/Transpose) from a Softmax, so it is part of the decode and the walk continues through it.
ShapeOf nodes are included but not walked through (shape arithmetic for anchors). Constants and
Parameters are never listed. The result is `nncf.IgnoredScope(names=[...])`, which works for
detect/segment/pose and any YOLOv8 width/depth, because the pattern (head convs -> decode -> outputs)
is the same for all of them. For segment, output 1 (prototypes) comes straight out of a conv block, so
only its activation is listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import openvino as ov

SKIP_TYPES = {"Constant", "Parameter", "Result"}
PASS_THROUGH = {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Convert"}


@dataclass
class DecodeScope:
    names: list[str]
    types: dict[str, int] = field(default_factory=dict)
    boundary_convs: list[str] = field(default_factory=list)
    dfl_convs: list[str] = field(default_factory=list)

    def ignored_scope(self, extra_names: list[str] | None = None):
        import nncf

        return nncf.IgnoredScope(names=sorted(set(self.names) | set(extra_names or [])), validate=False)


def _producer(inp) -> ov.Node:
    return inp.get_source_output().get_node()


def _is_dfl_conv(node: ov.Node) -> bool:
    """A Convolution fed by a Softmax through layout-only ops is the DFL integral, not a learned layer."""
    cur = _producer(node.inputs()[0])
    for _ in range(6):
        t = cur.get_type_name()
        if t == "Softmax":
            return True
        if t not in PASS_THROUGH:
            return False
        cur = _producer(cur.inputs()[0])
    return False


def _is_conv_bias(node: ov.Node) -> bool:
    """Add(Convolution, Constant): the bias of a conv, which belongs to the conv (a fused pattern)."""
    if node.get_type_name() != "Add":
        return False
    kinds = sorted(_producer(i).get_type_name() for i in node.inputs())
    return kinds == ["Constant", "Convolution"] and not _is_dfl_conv(
        next(_producer(i) for i in node.inputs() if _producer(i).get_type_name() == "Convolution")
    )


def find_decode_scope(model: ov.Model) -> DecodeScope:
    """Nodes between the head's last learned convolutions and the outputs (see module docstring)."""
    names: list[str] = []
    types: dict[str, int] = {}
    boundary: list[str] = []
    dfl: list[str] = []
    seen: set[str] = set()
    stack = [_producer(r.inputs()[0]) for r in model.get_results()]
    while stack:
        node = stack.pop()
        name = node.get_friendly_name()
        if name in seen:
            continue
        seen.add(name)
        kind = node.get_type_name()
        if kind in SKIP_TYPES:
            continue
        if kind == "Convolution" and not _is_dfl_conv(node):
            boundary.append(name)
            continue
        if _is_conv_bias(node):
            boundary.append(name)
            continue
        if kind == "Convolution":
            dfl.append(name)
        names.append(name)
        types[kind] = types.get(kind, 0) + 1
        if kind == "ShapeOf":
            continue
        stack.extend(_producer(i) for i in node.inputs())
    return DecodeScope(sorted(names), types, sorted(boundary), sorted(dfl))


def decode_ignored_scope(model: ov.Model, extra_names: list[str] | None = None):
    return find_decode_scope(model).ignored_scope(extra_names)
