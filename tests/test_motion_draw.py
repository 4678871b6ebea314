"""Motion masks and the motion drawing: a mask over the only moving object keeps the gate closed on a real clip
(also when the mask arrives while the stream runs, as from the UI), a mask that crosses itself is refused like
a zone, and a source configured in YAML with `motion: {mask, show: true}` gets the gate's regions, its mask
and "detector ran/skipped" drawn on its annotated frames, from the gate's own result of each frame."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from test_motion import PERSON, person_frames  # noqa: F401

from yolovino.inference import AsyncEngine, InferenceConfig, YoloModel
from yolovino.inference.analytics.config import parse_analytics, resolve_classes
from yolovino.inference.analytics.stage import Analytics
from yolovino.inference.core.errors import ConfigError
from yolovino.inference.core.motion import MotionConfig
from yolovino.inference.draw.annotate import Annotator
from yolovino.inference.draw.motion import MASK_COLOR
from yolovino.inference.model.motion import MotionGate
from yolovino.inference.model.stride import StridedEngine
from yolovino.inference.pipeline import Pipeline, frame_time
from yolovino.inference.sources import open_source

# frames 60..109 of the person clip: she walks in from the bottom left and stands at the table; every moving
# pixel of that stretch lies in this box (checked below against the unmasked gate)
WALK = [[0.0, 0.0], [0.8, 0.0], [0.8, 1.0], [0.0, 1.0]]


def _decisions(gate: MotionGate, frames, t0: float = 0.0) -> list[bool]:
    out = []
    for k, img in enumerate(frames):
        t = t0 + k * 0.1
        wanted = gate.decide(img, t)
        if wanted:
            gate.ran(t)
        out.append(wanted)
    return out


def test_a_mask_over_the_only_moving_object_keeps_the_gate_closed(person_frames):  # noqa: F811
    segment = person_frames[60:110]
    free = MotionGate(MotionConfig(keepalive_s=60))
    masked = MotionGate(MotionConfig(keepalive_s=60, mask=(tuple(map(tuple, WALK)),)))
    opened = _decisions(free, segment)
    regions = []
    for img in segment:  # where the unmasked detector saw motion: all inside the mask
        free.detector.update(img)
        regions += free.boxes
    assert regions and all(x1 <= 0.8 for _, _, x1, _ in regions), regions
    assert sum(opened[1:]) >= 30, opened  # she moves on most frames: the free gate runs the detector
    closed = _decisions(masked, segment)
    assert closed[0] and not any(closed[1:]), closed  # the first frame calibrates; then nothing moves


def test_a_mask_set_on_a_running_gate_applies_from_the_next_frame(person_frames):  # noqa: F811
    gate = MotionGate(MotionConfig(keepalive_s=60))
    before = _decisions(gate, person_frames[60:80])
    assert sum(before[1:]) >= 10, before
    gate.set_config(MotionConfig(keepalive_s=60, mask=(tuple(map(tuple, WALK)),)))
    after = _decisions(gate, person_frames[80:110], t0=2.0)
    assert after[0] and not any(after[1:]), after  # one recalibration frame, then the mask holds
    assert gate.snapshot(False).mask == gate.cfg.mask


def test_a_mask_that_crosses_itself_is_refused_like_a_zone():
    bow = [[0.1, 0.1], [0.5, 0.5], [0.5, 0.1], [0.1, 0.5]]
    with pytest.raises(ConfigError, match=r"^sources\[0\]\.analytics\.motion: mask polygon 0 crosses itself"):
        parse_analytics({"motion": {"mask": [bow]}}, "sources[0].analytics")
    with pytest.raises(ConfigError, match="crosses itself"):  # the zone's own check says the same
        parse_analytics({"zones": [{"name": "z", "points": bow}]})


def _run(detect_ir, clip, show: bool, frames: int = 90):
    """The service's set-up of a YAML source (supervisor.py): analytics, gate from `motion_for`, annotator."""
    yaml = {"motion": {"mask": [[[0.55, 0.05], [0.95, 0.05], [0.95, 0.45], [0.55, 0.45]]], "show": show}}
    model = YoloModel.load(detect_ir, InferenceConfig())
    cfg = resolve_classes(parse_analytics(yaml), model.names)
    analytics = Analytics(cfg)
    src = open_source(str(clip), live=False)
    motion = cfg.motion_for(src.live)
    assert motion is not None and motion.show is show
    out = []
    with AsyncEngine(model) as base:
        engine = StridedEngine(base, 1, frame_time)
        engine.set_gate(src.id, MotionGate(motion, tracks=functools.partial(analytics.track_needs, src.id)))
        for fr in Pipeline(engine, [src], annotator=Annotator(), analytics=analytics).run(max_frames=frames):
            out.append((fr.results.motion, fr.results.carried, fr.annotated, fr.frame.image))
    analytics.close()
    return out


def _colour_share(img: np.ndarray, colour, region=None) -> float:
    if region is not None:
        x0, y0, x1, y1 = region
        h, w = img.shape[:2]
        img = img[int(y0 * h) : int(y1 * h), int(x0 * w) : int(x1 * w)]
    return float(np.all(img == np.array(colour, np.uint8), axis=2).mean())


@pytest.mark.slow
def test_a_yaml_mask_and_the_gates_regions_are_drawn_when_shown(detect_ir, require_asset):
    clip = require_asset(PERSON)
    shown = _run(detect_ir, clip, show=True)
    assert all(m is not None for m, _, _, _ in shown)
    skipped = [k for k, (m, carried, _, _) in enumerate(shown) if m is not None and not m.detected]
    assert skipped and all(shown[k][1] for k in skipped)  # "skipped" is drawn on exactly the carried frames
    for motion, _, annotated, _ in shown:
        assert motion is not None and motion.mask[0][0] == (0.55, 0.05)
        assert _colour_share(annotated, MASK_COLOR, (0.56, 0.06, 0.94, 0.44)) > 0.03  # hatched
    moving = [(m, a, raw) for m, _, a, raw in shown if m is not None and m.boxes and m.boxes[0] != (0, 0, 1, 1)]
    assert len(moving) >= 10  # she walks in from frame ~55
    for motion, annotated, raw in moving:  # the gate's largest region of that frame is tinted green
        h, w = raw.shape[:2]
        for x0, y0, x1, y1 in sorted(motion.boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))[-1:]:
            a, b = (
                (round(x0 * (w - 1)) + 3, round(y0 * (h - 1)) + 3),
                (round(x1 * (w - 1)) - 3, round(y1 * (h - 1)) - 3),
            )
            if b[0] <= a[0] or b[1] <= a[1]:
                continue
            diff = annotated[a[1] : b[1], a[0] : b[0]].astype(int) - raw[a[1] : b[1], a[0] : b[0]]
            # a detection box, its label or the mask's hatching may cover part of it, not most of it
            assert np.median(diff[..., 1]) > 10 and np.median(diff[..., 0]) < 0, motion.boxes
    plain = _run(detect_ir, clip, show=False, frames=30)
    assert all(m is None for m, _, _, _ in plain)  # off: nothing carried, nothing drawn
    assert max(_colour_share(a, MASK_COLOR) for _, _, a, _ in plain) < 0.001


@pytest.mark.slow
def test_webcam_frames_get_the_sessions_motion_gate_mask_and_drawing(tmp_path, detect_ir, person_frames):  # noqa: F811
    """The UI's webcam path (one pipeline run per browser frame) keeps one gate across frames: with gating on
    the still stretch before she walks in is carried, not detected; a mask added mid-run reaches that gate;
    with "Show motion" the frames come back with the mask hatched."""
    from test_ui_backend import _ctx, _models_dir

    from yolovino.ui.session import Session

    session = Session(_ctx(_models_dir(tmp_path / "models", detect_ir), tmp_path))
    state = session.analytics
    state.set_motion(True)
    for img in person_frames[:30]:  # the empty room: the gate lets the detector run on the first frames only
        session.webcam_frame(np.ascontiguousarray(img[..., ::-1]))
    assert session._webcam is not None
    strided = session._webcam[2]
    detected, frames = strided.per_source["webcam"]
    assert frames == 30 and detected <= 3, (detected, frames)
    state.add_mask("wall", "0.55,0.05; 0.95,0.05; 0.95,0.45; 0.55,0.45")
    state.set_show_motion(True)
    gate = strided.gate("webcam")
    assert (
        gate is not None and gate.show and gate.cfg.mask == (((0.55, 0.05), (0.95, 0.05), (0.95, 0.45), (0.55, 0.45)),)
    )
    upd = session.webcam_frame(np.ascontiguousarray(person_frames[30][..., ::-1]))
    assert upd.image is not None
    bgr = np.ascontiguousarray(upd.image[..., ::-1])
    assert _colour_share(bgr, MASK_COLOR, (0.56, 0.06, 0.94, 0.44)) > 0.03
    state.set_motion(False)
    state.set_show_motion(False)
    assert strided.gate("webcam") is None  # both off: no gate, nothing drawn
    session.close()


@pytest.mark.slow
def test_the_service_records_a_yaml_sources_motion_drawing(detect_ir, require_asset, tmp_path):
    """The headless service's path (plan -> supervisor -> gate -> annotator -> the `save:` mp4) of a source
    whose YAML says `motion: {mask: [...], show: true}`: the recording shows the hatched mask on its frames."""
    import av
    from test_motion import wait_until

    from yolovino.inference.service.metrics import Metrics
    from yolovino.inference.service.supervisor import Outputs, SourcePlan, Supervisor

    clip = require_asset("videos/car-detection.mp4")
    mask = [[0.0, 0.0], [0.3, 0.0], [0.3, 0.2], [0.0, 0.2]]  # the top-left corner
    cfg = parse_analytics({"motion": {"mask": [mask], "show": True}}, "sources[0].analytics")
    model = YoloModel.load(detect_ir, InferenceConfig())
    out = tmp_path / "lane.mp4"
    plan = SourcePlan(
        "lane", str(clip), "lane", False, detect_ir, InferenceConfig(), save=str(out),
        analytics=resolve_classes(cfg, model.names),
    )  # fmt: skip
    sup = Supervisor(Metrics(), Outputs(), lambda fr: None)
    try:
        sup.apply([plan], strict=True)
        assert wait_until(sup.all_ended, 180), "the clip did not run to its end"
    finally:
        sup.close()
    shares = []
    with av.open(str(out)) as c:
        for k, f in enumerate(c.decode(video=0)):
            if k % 25 == 0:
                img = f.to_ndarray(format="bgr24").astype(int)
                h, w = img.shape[:2]
                roi = img[int(0.01 * h) : int(0.19 * h), int(0.01 * w) : int(0.29 * w)]
                # H.264 and 4:2:0 chroma soften the colour: cyan is blue and green well above red
                cyan = (roi[..., 0] - roi[..., 2] > 80) & (roi[..., 1] - roi[..., 2] > 80)
                shares.append(float(cyan.mean()))
    assert len(shares) >= 10 and min(shares) > 0.02, shares
