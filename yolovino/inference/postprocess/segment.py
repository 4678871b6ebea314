"""Masks: coefficients x prototypes, only for the boxes NMS kept, upsampled to the frame and cropped to the box.

Matches Ultralytics' process_mask_native (retina masks): logits are cropped to the letterbox content,
resized bilinearly to the frame, thresholded at 0 and cut to the box.
"""

from __future__ import annotations

import cv2
import numpy as np

from yolovino.inference.core.config import InferenceConfig
from yolovino.inference.core.geometry import Letterbox
from yolovino.inference.core.results import Results
from yolovino.inference.postprocess.detect import Detect


class Segment(Detect):
    name = "segment"
    num_outputs = 2

    def decode(
        self, outputs: list[np.ndarray], letterbox: Letterbox, names: dict[int, str], cfg: InferenceConfig
    ) -> Results:
        boxes, scores, cls_ids, coeffs = self.select(outputs, cfg)
        frame_boxes = letterbox.boxes_to_frame(boxes)
        masks = masks_for(outputs[1][0], coeffs, frame_boxes, letterbox)
        return Results(frame_boxes, scores, cls_ids, names, letterbox.frame_hw, masks=masks)


def masks_for(protos: np.ndarray, coeffs: np.ndarray, frame_boxes: np.ndarray, lb: Letterbox) -> np.ndarray:
    h, w = lb.frame_hw
    n = len(coeffs)
    masks = np.zeros((n, h, w), dtype=bool)
    if n == 0:
        return masks
    c, mh, mw = protos.shape
    # einsum's own loops, not `@`: NumPy's BLAS (OpenBLAS) wakes its worker threads for this product and
    # they spin after it, taking CPU from OpenVINO's inference threads on a small box
    logits = np.einsum("nc,ck->nk", coeffs.astype(np.float32), protos.reshape(c, -1), optimize=False)
    logits = logits.reshape(n, mh, mw)
    # Letterbox content in prototype pixels (prototypes are 1/4 of the network input).
    sy, sx = mh / lb.input_hw[0], mw / lb.input_hw[1]
    top, left = lb.top * sy, lb.left * sx
    ax, ay = lb.resized_hw[1] * sx / w, lb.resized_hw[0] * sy / h  # prototype pixels per frame pixel
    # Pixels whose centre lies inside the box (Ultralytics crop_mask: x1 <= col < x2).
    lo = np.ceil(frame_boxes[:, :2]).astype(np.int64)
    hi = np.ceil(frame_boxes[:, 2:]).astype(np.int64)
    for i in range(n):
        (x1, y1), (x2, y2) = lo[i], hi[i]
        if x2 <= x1 or y2 <= y1:
            continue
        # One inverse warp per box samples frame pixel centres straight from the prototypes: crop + resize
        # of only the pixels that survive the box crop, so cost scales with box area, not frame area.
        warp = np.array([[ax, 0, left + (x1 + 0.5) * ax - 0.5], [0, ay, top + (y1 + 0.5) * ay - 0.5]], np.float32)
        patch = cv2.warpAffine(
            logits[i],
            warp,
            (int(x2 - x1), int(y2 - y1)),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        masks[i, y1:y2, x1:x2] = patch > 0
    return masks
