"""Which optional extra of the package provides a module, so a missing one is named in one line."""

from __future__ import annotations

EXTRA_OF = {
    "gradio": "ui",
    "gradio_client": "ui",
    "gi": "serve",
    "torch": "quantize",
    "torchvision": "quantize",
    "ultralytics": "quantize",
    "nncf": "quantize",
    "faster_coco_eval": "quantize",
    "matplotlib": "quantize",
    "ray": "fleet",
}


def missing_extra(exc: ImportError, what: str) -> str | None:
    """`"<what> needs <module>, which this install lacks: pip install 'yolovino[<extra>]'"` when `exc` is
    an optional dependency that is not installed; None for any other import error (a real bug)."""
    top = (exc.name or "").partition(".")[0]
    extra = EXTRA_OF.get(top)
    if extra is None:
        return None
    return f"{what} needs {top}, which this install lacks: pip install 'yolovino[{extra}]'"
