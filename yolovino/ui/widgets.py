"""Gradio components of our own. Imported only when the page is built (gradio is imported here)."""

from __future__ import annotations

import base64

import cv2
import gradio as gr
import numpy as np
from gradio.data_classes import ImageData


class LiveImage(gr.Image):
    """gr.Image that sends numpy frames inline as JPEG data URLs instead of one cache file per frame.

    A live stream at 10 frames/s would otherwise leave tens of thousands of files an hour in Gradio's
    cache. The frontend is the stock Image component (same block name). Gradio writes a typing stub for
    component classes beside their module (ui/widgets.pyi, ignored by git).
    """

    def get_block_name(self) -> str:
        return "image"

    def postprocess(self, value):
        if isinstance(value, np.ndarray):
            ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(value[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 80])
            if ok:
                return ImageData(
                    url="data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode(),
                    orig_name="frame.jpg",
                    mime_type="image/jpeg",
                )
        return super().postprocess(value)
