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
WEIGHTED = {"Convolution", "GroupConvolution", "ConvolutionBackpropData", "MatMul"}
INT_TYPES = (ov.Type.i8, ov.Type.u8, ov.Type.i4, ov.Type.u4)


@dataclass
class DecodeScope:
    names: list[str]
    types: dict[str, int] = field(default_factory=dict)
    boundary_convs: list[str] = field(default_factory=list)
    dfl_convs: list[str] = field(default_factory=list)

    def ignored_scope(self, extra_names: list[str] | None = None):
        import nncf

        return nncf.IgnoredScope(names=sorted(set(self.names) | set(extra_names or [])), validate=False)


def producer(inp: ov.Input) -> ov.Node:
    """The node whose output feeds this input."""
    return inp.get_source_output().get_node()


def _is_dfl_conv(node: ov.Node) -> bool:
    """A Convolution fed by a Softmax through layout-only ops is the DFL integral, not a learned layer."""
    cur = producer(node.inputs()[0])
    for _ in range(6):
        t = cur.get_type_name()
        if t == "Softmax":
            return True
        if t not in PASS_THROUGH:
            return False
        cur = producer(cur.inputs()[0])
    return False


def _is_conv_bias(node: ov.Node) -> bool:
    """Add(Convolution, Constant): the bias of a conv, which belongs to the conv (a fused pattern)."""
    if node.get_type_name() != "Add":
        return False
    kinds = sorted(producer(i).get_type_name() for i in node.inputs())
    return kinds == ["Constant", "Convolution"] and not _is_dfl_conv(
        next(producer(i) for i in node.inputs() if producer(i).get_type_name() == "Convolution")
    )


def find_decode_scope(model: ov.Model) -> DecodeScope:
    """Nodes between the head's last learned convolutions and the outputs (see module docstring)."""
    names: list[str] = []
    types: dict[str, int] = {}
    boundary: list[str] = []
    dfl: list[str] = []
    seen: set[str] = set()
    stack = [producer(r.inputs()[0]) for r in model.get_results()]
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
        stack.extend(producer(i) for i in node.inputs())
    return DecodeScope(sorted(names), types, sorted(boundary), sorted(dfl))


# --- INT8 ops and head branches --------------------------------------------------------------------------


def _int8_weights(inp: ov.Input) -> bool:
    """A weight input that is a compressed int constant (Constant i8/u8/i4/u4 -> Convert -> [Subtract] -> Multiply)."""
    node = producer(inp)
    for _ in range(5):
        kind = node.get_type_name()
        if kind == "Constant":
            return node.get_element_type() in INT_TYPES
        if kind not in ("Convert", "Subtract", "Multiply", "Reshape"):
            return False
        node = producer(node.inputs()[0])
    return False


def is_int8(op: ov.Node) -> bool:
    """An op that computes in INT8: an input read from a FakeQuantize (activations or weights), or int8 weights."""
    if op.get_type_name() in ("FakeQuantize", "Constant", "Result", "Parameter"):
        return False
    if any(producer(i).get_type_name() == "FakeQuantize" for i in op.inputs()):
        return True
    return op.get_type_name() in WEIGHTED and any(_int8_weights(i) for i in op.inputs()[1:])


def _reach(model: ov.Model, marks: dict[str, str]) -> dict[str, set[str]]:
    """For every node: the marks of the marked nodes downstream of it (itself included)."""
    reach: dict[str, set[str]] = {}
    for op in reversed(model.get_ordered_ops()):
        found: set[str] = set()
        for out in op.outputs():
            for target in out.get_target_inputs():
                found |= reach.get(target.get_node().get_friendly_name(), set())
        name = op.get_friendly_name()
        if name in marks:
            found.add(marks[name])
        reach[name] = found
    return reach


def head_branches(model: ov.Model, nc: int) -> dict[str, list[str]]:
    """The learned layers that feed only one kind of head output, by kind (see BRANCHES).

    Each head output conv (a feature boundary of the decode scope) is labelled from structure, with the
    names of options.BRANCHES: `proto` when it does not reach the first output (segment prototypes), `box`
    when it has 4 x reg_max channels (reg_max = the DFL conv's input channels), `cls` when it has one channel
    per class, else the task's extra head (`mask` coefficients with two outputs, `kpt` keypoints with one).
    A branch is every weighted layer whose outputs reach output convs of that label only: the whole
    cv2/cv3/cv4 stacks and the Proto module, never the neck.
    """
    scope = find_decode_scope(model)
    ops = {op.get_friendly_name(): op for op in model.get_ordered_ops()}
    reg_max = ops[scope.dfl_convs[0]].get_input_partial_shape(0)[1].get_length() if scope.dfl_convs else 16
    results = {r.get_friendly_name(): f"out{i}" for i, r in enumerate(model.get_results())}
    to_results = _reach(model, results)
    labels: dict[str, str] = {}
    for name in scope.boundary_convs:
        channels = ops[name].get_output_partial_shape(0)[1].get_length()
        if "out0" not in to_results[name]:
            labels[name] = "proto"
        elif channels == 4 * reg_max:
            labels[name] = "box"
        elif channels == nc:
            labels[name] = "cls"
        else:
            labels[name] = "mask" if len(results) > 1 else "kpt"
    reach = _reach(model, labels)
    out: dict[str, list[str]] = {}
    for name, op in ops.items():
        if op.get_type_name() in WEIGHTED and len(reach[name]) == 1:
            out.setdefault(next(iter(reach[name])), []).append(name)
    return {k: sorted(v) for k, v in out.items()}
