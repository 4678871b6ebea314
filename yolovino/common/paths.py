"""Where things live: shared by the app, ui/, quantize/, fleet/ and bench/ (no globals).

Run from a checkout (the package installed editable, or not at all), the models live in the checkout's
`models/` and the shared assets in `../shared` beside it; installed from a wheel on a box, both are
relative to the working directory. $YOLO_APP_MODELS and $YOLO_APP_ASSETS override either."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_PARENT = Path(__file__).resolve().parents[2]


def checkout_root() -> Path | None:
    """The source checkout this package runs from, or None when it is installed (site-packages)."""
    if (_PACKAGE_PARENT / "pyproject.toml").is_file() and (_PACKAGE_PARENT / "yolovino").is_dir():
        return _PACKAGE_PARENT
    return None


def project_root() -> Path:
    """The checkout, or the working directory for an installed package."""
    return checkout_root() or Path.cwd()


def assets_root() -> Path:
    """The shared assets (videos, checkpoints, datasets): $YOLO_APP_ASSETS, else ../shared beside the project."""
    env = os.environ.get("YOLO_APP_ASSETS")
    return Path(env).expanduser().resolve() if env else (project_root().parent / "shared").resolve()


def models_root() -> Path:
    """Where `yolovino-quantize` writes models and the app looks for them: $YOLO_APP_MODELS, else models/."""
    env = os.environ.get("YOLO_APP_MODELS")
    return Path(env).expanduser().resolve() if env else project_root() / "models"


def shown(path: Path) -> str:
    """A path as a user would type it: relative to the working directory when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
