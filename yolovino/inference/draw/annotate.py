"""Draw Results on a frame: boxes, labels with scores, translucent masks, pose skeletons, an FPS overlay.

`Annotator().annotate(frame, results, overlay)` returns a new BGR image; the input frame is copied once
and never modified (unless `in_place=True`). The motion gate's view of the frame is drawn when the results carry
it (draw/motion.py). Masks are blended only inside each box's crop, so the cost
scales with the object area, not the frame area. Colours come from a fixed per-class palette.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from yolovino.inference.core.events import Scene
from yolovino.inference.core.results import Results, label_for
from yolovino.inference.draw.label import BOX_TAG, OVERLAY, draw_label, label_size, readable_on
from yolovino.inference.draw.motion import draw_motion
from yolovino.inference.draw.scene import draw_scene

# Ultralytics' palette (hex RGB), stored as BGR tuples.
_HEX = (
    "FF3838 FF9D97 FF701F FFB21D CFD231 48F90A 92CC17 3DDB86 1A9334 00D4BB "
    "2C99A8 00C2FF 344593 6473FF 0018EC 8438FF 520085 CB38FF FF95C8 FF37C7"
).split()
PALETTE: tuple[tuple[int, int, int], ...] = tuple((int(h[4:6], 16), int(h[2:4], 16), int(h[0:2], 16)) for h in _HEX)

# COCO 17-keypoint skeleton (1-based pairs as in Ultralytics), converted to 0-based.
SKELETON: tuple[tuple[int, int], ...] = tuple(
    (a - 1, b - 1)
    for a, b in (
        (16, 14),
        (14, 12),
        (17, 15),
        (15, 13),
        (12, 13),
        (6, 12),
        (7, 13),
        (6, 7),
        (6, 8),
        (7, 9),
        (8, 10),
        (9, 11),
        (2, 3),
        (1, 2),
        (1, 3),
        (2, 4),
        (3, 5),
        (4, 6),
        (5, 7),
    )
)
# Limb / keypoint colours: arms, legs, face (pose palette of Ultralytics, BGR).
_LIMB_COLORS = ((255, 128, 0),) * 4 + ((255, 51, 255),) * 3 + ((51, 153, 255),) * 5 + ((0, 255, 0),) * 7
_KPT_COLORS = ((0, 255, 0),) * 5 + ((51, 153, 255),) * 6 + ((255, 128, 0),) * 6


def color_for(class_id: int) -> tuple[int, int, int]:
    """The BGR colour of a class (stable across runs)."""
    return PALETTE[int(class_id) % len(PALETTE)]


class Annotator:
    """Stateless drawing settings; one instance may be shared by several threads.

    line_width: box thickness in pixels (None = from frame size, like Ultralytics).
    show_masks / mask_alpha: blend instance masks (inside their boxes only).
    show_labels / show_conf: the "name 0.87" tag above each box.
    show_pose / kpt_conf: draw keypoints and the skeleton; skip points below kpt_conf.
    show_overlay: draw the `overlay` dict (e.g. fps, latency) as text in the top-left corner.
    """

    def __init__(
        self,
        line_width: int | None = None,
        show_masks: bool = True,
        mask_alpha: float = 0.45,
        show_labels: bool = True,
        show_conf: bool = True,
        show_boxes: bool = True,
        show_pose: bool = True,
        kpt_conf: float = 0.5,
        show_overlay: bool = True,
        font_scale: float | None = None,
    ):
        self.line_width = line_width
        self.show_masks, self.mask_alpha = show_masks, float(mask_alpha)
        self.show_labels, self.show_conf, self.show_boxes = show_labels, show_conf, show_boxes
        self.show_pose, self.kpt_conf = show_pose, float(kpt_conf)
        self.show_overlay = show_overlay
        self.font_scale = font_scale

    def __call__(self, frame: np.ndarray, results: Results, overlay: Mapping | None = None) -> np.ndarray:
        return self.annotate(frame, results, overlay)

    def annotate(
        self,
        frame: np.ndarray,
        results: Results | None,
        overlay: Mapping | None = None,
        in_place: bool = False,
        scene: Scene | None = None,
    ) -> np.ndarray:
        """`scene`: zones, lines, trails and counts of the analytics stage, drawn under the boxes; so are
        the motion gate's regions and masks when the results carry them (`Results.motion`, draw/motion.py)."""
        img = frame if in_place else frame.copy()
        h, w = img.shape[:2]
        lw = self.line_width or max(round((h + w) / 2 * 0.003), 2)
        fs = self.font_scale or lw / 3
        if scene is not None:
            draw_scene(img, scene, lw, fs)
        if results is not None and results.motion is not None:
            draw_motion(img, results.motion, lw, fs)
        if results is not None and len(results):
            boxes = np.round(results.boxes).astype(np.int32)
            boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w - 1)
            boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h - 1)
            if self.show_masks and results.masks is not None:
                self._masks(img, results.masks, boxes, results.class_ids)
            if self.show_boxes:
                for i, (x1, y1, x2, y2) in enumerate(boxes):
                    color = color_for(results.class_ids[i])
                    cv2.rectangle(img, (int(x1), int(y1)), (int(x2), int(y2)), color, lw, cv2.LINE_AA)
                    if self.show_labels:
                        name = label_for(results.names, results.class_ids[i])
                        if results.track_ids is not None and results.track_ids[i] >= 0:
                            name = f"#{int(results.track_ids[i])} {name}"
                        text = f"{name} {results.scores[i]:.2f}" if self.show_conf else name
                        if results.speed_kmh is not None and np.isfinite(results.speed_kmh[i]):
                            text += f" {float(results.speed_kmh[i]):.0f} km/h"
                        if results.stationary is not None and results.stationary[i]:
                            text += " still"
                        _label(img, text, int(x1), int(y1), color, fs, max(lw - 1, 1))
            if self.show_pose and results.keypoints is not None:
                for kpts in results.keypoints:
                    self._pose(img, kpts, lw)
        if self.show_overlay and overlay:
            _overlay(img, overlay, fs)
        return img

    def _masks(self, img: np.ndarray, masks: np.ndarray, boxes: np.ndarray, class_ids: np.ndarray) -> None:
        a = self.mask_alpha
        mh, mw = masks.shape[1:3]
        if (mh, mw) != img.shape[:2]:  # masks not at frame size: skip rather than mis-draw
            return
        for i, (x1, y1, x2, y2) in enumerate(boxes):
            if x2 <= x1 or y2 <= y1:
                continue
            m = masks[i, y1 : y2 + 1, x1 : x2 + 1]
            if not m.any():
                continue
            roi = img[y1 : y2 + 1, x1 : x2 + 1]
            # blend the whole box in uint8 and copy back only the mask's pixels, both in OpenCV: cheaper
            # than gathering the masked pixels into float32 and scattering them back with NumPy
            tint = np.empty_like(roi)
            tint[:] = color_for(class_ids[i])
            blended = cv2.addWeighted(roi, 1.0 - a, tint, a, 0.0)
            out = cv2.copyTo(blended, np.asarray(m, bool).view(np.uint8), roi)
            if out is not roi:  # OpenCV allocated instead of writing into the view
                roi[...] = out

    def _pose(self, img: np.ndarray, kpts: np.ndarray, lw: int) -> None:
        h, w = img.shape[:2]
        n = kpts.shape[0]
        has_conf = kpts.shape[1] >= 3
        visible = np.ones(n, bool) if not has_conf else kpts[:, 2] >= self.kpt_conf
        pts = np.round(kpts[:, :2]).astype(np.int32)
        visible &= (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
        if n == 17:
            for j, (a, b) in enumerate(SKELETON):
                if visible[a] and visible[b]:
                    cv2.line(
                        img,
                        tuple(map(int, pts[a])),
                        tuple(map(int, pts[b])),
                        _LIMB_COLORS[j],
                        max(lw // 2, 1) + 1,
                        cv2.LINE_AA,
                    )
        radius = max(lw + 1, 3)
        for k in range(n):
            if visible[k]:
                color = _KPT_COLORS[k] if n == 17 else (0, 255, 255)
                cv2.circle(img, tuple(map(int, pts[k])), radius, color, -1, cv2.LINE_AA)


def _label(img: np.ndarray, text: str, x: int, y: int, color, fs: float, thickness: int) -> None:
    """A box's tag above its top-left corner `(x, y)`, or just inside the box when there is no room above."""
    height = label_size(text, fs, thickness, BOX_TAG)[1]
    top = y - height if y - height >= 0 else y
    draw_label(img, text, (x, top), fs, thickness, readable_on(color), color, BOX_TAG)


def format_overlay(overlay: Mapping) -> list[str]:
    lines = []
    for key, value in overlay.items():
        if value is None:
            continue
        if isinstance(value, float):
            unit = " ms" if key.endswith("_ms") or key == "latency" else ""
            name = key[:-3] if key.endswith("_ms") else key
            lines.append(f"{name}: {value:.1f}{unit}")
        else:
            lines.append(f"{key}: {value}")
    return lines


def _overlay(img: np.ndarray, overlay: Mapping, fs: float) -> None:
    fs = max(fs, 0.5)
    thickness = max(int(round(fs * 2)), 1)
    y = 4
    for line in format_overlay(overlay):
        draw_label(img, line, (4, y), fs, thickness, (255, 255, 255), (0, 0, 0), OVERLAY)
        y += label_size(line, fs, thickness, OVERLAY)[1] + 2
