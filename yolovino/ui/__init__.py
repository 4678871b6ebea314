"""Gradio UI: live annotated video from clips, uploads, URLs and the browser webcam, via inference.pipeline.

`launch(...)` serves it (127.0.0.1:7860 by default); `build_demo(...)` returns the gr.Blocks without
serving. gradio is imported only when one of them is called, so the environment (analytics off, temp
folder) is set before gradio reads it.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def launch(*args, **kwargs):
    from yolovino.ui.app import launch as _launch

    return _launch(*args, **kwargs)


def build_demo(*args, **kwargs):
    from yolovino.ui.app import build_demo as _build_demo

    return _build_demo(*args, **kwargs)


__all__ = ["build_demo", "launch"]
