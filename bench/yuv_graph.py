"""What feeding the decoder's YUV planes to the graph would save against the BGR copy we make today.

    .venv/bin/python -m bench.yuv_graph [--model models/yolov8n/int8] [--clip ...] [--frames 150] [--rounds 4]

Today a frame the detector runs on is converted to BGR by FFmpeg's swscale (`Frame.image`) and the graph
(model/ir.py build_graph) letterboxes it and swaps it to RGB. The alternative the cameras-per-box issue
asked about: hand the graph the decoder's I420 picture (one copy of its three planes, no colour maths) and
let OpenVINO's PrePostProcessor convert I420 -> RGB inside the graph, before the same letterbox. Both paths
run on the same decoded frames, one infer request each (synchronous, so the process CPU per frame is the
path's whole cost), alternating over the rounds so that load from elsewhere hits both alike. Also printed:
the conversion alone (I420 -> BGR by swscale, and the plane copy the I420 path needs), and how far the two
graphs' class scores differ (the two colour conversions round differently). Writes bench/results/yuv_graph.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import av
import numpy as np
import openvino as ov
from openvino.preprocess import ColorFormat, PrePostProcessor

from bench.benchlib import REPO, default_clip, default_model, machine_info, machine_line, write_json
from yolovino.inference import InferenceConfig, YoloModel
from yolovino.inference.core.geometry import Letterbox
from yolovino.inference.model import ir


def i420_graph(base: ov.Model, lb: Letterbox) -> ov.Model:
    """build_graph's letterbox with an I420 (single plane, H*3/2 x W) input converted to RGB first."""
    model = base.clone()
    model.reshape({model.inputs[0]: ov.PartialShape([1, 3, *lb.input_hw])})
    ppp = PrePostProcessor(model)
    inp = ppp.input()
    tensor = inp.tensor().set_element_type(ov.Type.u8).set_color_format(ColorFormat.I420_SINGLE_PLANE)
    tensor.set_layout(ov.Layout("NHWC")).set_shape([1, *lb.frame_hw, 1])  # H is the picture's; the tensor's is 3/2 H
    inp.model().set_layout(ov.Layout("NCHW"))
    pre = inp.preprocess()
    pre.convert_color(ColorFormat.RGB)
    pre.custom(lambda node: ir._resize_axis(node, lb.frame_hw[0], lb.resized_hw[0], axis=1))
    pre.convert_layout(ov.Layout("NCHW"))
    pre.custom(lambda node: ir._pad(ir._resize_axis(node, lb.frame_hw[1], lb.resized_hw[1], axis=3), lb))
    pre.scale(255.0)
    return ppp.build()


def cpu_ms(fn, frames: list) -> float:
    t0 = time.process_time()
    for f in frames:
        fn(f)
    return (time.process_time() - t0) / len(frames) * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--clip", type=Path, default=None)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "yuv_graph.json")
    args = ap.parse_args()
    clip = args.clip or default_clip()
    model_path = args.model or default_model(script="yuv_graph")
    if not clip.is_file() or args.frames < 1 or args.rounds < 1:
        print(f"yuv_graph: needs a clip ({clip}), --frames >= 1 and --rounds >= 1", file=sys.stderr)
        return 2
    model = YoloModel.load(model_path, InferenceConfig())
    frames = []
    with av.open(str(clip)) as c:
        for f in c.decode(video=0):
            if f.format.name != "yuv420p":
                print(f"yuv_graph: {clip} decodes to {f.format.name}, the I420 path takes yuv420p", file=sys.stderr)
                return 2
            frames.append(f)
            if len(frames) == args.frames:
                break
    hw = (frames[0].height, frames[0].width)
    lb = Letterbox.fit(hw, model.meta.imgsz, model.meta.stride, True)
    props = {"PERFORMANCE_HINT": "LATENCY"}
    bgr_req = model.core.compile_model(ir.build_graph(model.network, lb), "CPU", props).create_infer_request()
    yuv_req = model.core.compile_model(i420_graph(model.network, lb), "CPU", props).create_infer_request()

    def bgr(f) -> np.ndarray:
        bgr_req.infer({0: f.to_ndarray(format="bgr24")[None]}, share_inputs=True)
        return bgr_req.get_output_tensor(0).data

    def yuv(f) -> np.ndarray:
        yuv_req.infer({0: f.to_ndarray()[None, :, :, None]}, share_inputs=True)  # yuv420p: Y over U over V
        return yuv_req.get_output_tensor(0).data

    diff = max(float(np.abs(bgr(f)[0, 4:].max(0) - yuv(f)[0, 4:].max(0)).max()) for f in frames[:20])
    runs: dict[str, list[float]] = {"bgr": [], "i420": []}
    for k in range(args.rounds):
        order = [("bgr", bgr), ("i420", yuv)]
        for name, fn in order if k % 2 == 0 else order[::-1]:
            runs[name].append(cpu_ms(fn, frames))
            print(f"[round {k + 1}/{args.rounds}] {name}: {runs[name][-1]:.2f} ms", file=sys.stderr, flush=True)
    convert = {
        "swscale_i420_to_bgr": cpu_ms(lambda f: f.to_ndarray(format="bgr24"), frames),
        "i420_plane_copy": cpu_ms(lambda f: f.to_ndarray(), frames),
    }
    med = {k: float(np.median(v)) for k, v in runs.items()}
    print("\n" + machine_line())
    print(f"{model_path}, {clip.name} {hw[1]}x{hw[0]}, input {lb.input_hw[1]}x{lb.input_hw[0]}, {len(frames)} frames")
    print(f"{'path':>6}{'CPU ms/frame (median)':>23}{'rounds':>30}")
    for name, vals in runs.items():
        print(f"{name:>6}{med[name]:23.2f}{'  ' + ' '.join(f'{v:.2f}' for v in vals):>30}")
    print(f"i420 / bgr: {med['i420'] / med['bgr']:.3f}")
    print(
        f"conversion alone: swscale I420 -> BGR {convert['swscale_i420_to_bgr']:.3f} ms, "
        f"I420 plane copy {convert['i420_plane_copy']:.3f} ms; largest class-score difference {diff:.4f}"
    )
    write_json(
        args.out,
        {
            "model": str(model_path),
            "clip": clip.name,
            "machine": machine_info(),
            "frames": len(frames),
            "cpu_ms_per_frame": runs,
            "median": med,
            "conversion_ms": convert,
            "max_score_difference": diff,
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
