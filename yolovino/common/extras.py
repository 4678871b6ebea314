"""Which optional extra of the package provides a module, so a missing one is named in one line."""

from __future__ import annotations

import importlib.util

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


def require(modules: tuple[str, ...], what: str) -> str | None:
    """The one-line message of `missing_extra` for the first of `modules` that is not installed, else None;
    checked without importing anything (so a command fails before it starts, not halfway)."""
    for name in modules:
        if importlib.util.find_spec(name) is None:
            return missing_extra(ModuleNotFoundError(name=name), what)
    return None
