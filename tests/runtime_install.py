"""A fresh venv with the package installed as an edge box would have it: `pip install yolovino`, no extras.

Shared by tests/test_install.py (what the install can and cannot do) and bench/install_bench.py (its size
on disk and its start-to-first-result time). The package is installed from a copy of exactly what the
wheel is built from (pyproject.toml, README, LICENSE, yolovino/), so it cannot lean on the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WHEEL_SOURCES = ("pyproject.toml", "README.md", "LICENSE", "yolovino")
HEAVY = ("torch", "torchvision", "ultralytics", "nncf", "gradio", "ray")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without this checkout's venv or PYTHONPATH, so the fresh venv stands alone."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    return {**env, **extra}


def install_runtime(dest: Path, timeout: float = 900) -> Path:
    """Create `dest/venv`, install the runtime package into it from a copy of the sources; return the venv."""
    src = dest / "src"
    src.mkdir(parents=True)
    for name in WHEEL_SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyi"))
        else:
            shutil.copy2(path, src / name)
    venv = dest / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--progress-bar", "off", str(src)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"pip install of the runtime failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return venv


def installed_heavy(venv: Path) -> list[str]:
    """Which of torch, Ultralytics, NNCF, Gradio and Ray the venv can import (should be none)."""
    code = f"import importlib.util as u; print(' '.join(m for m in {HEAVY!r} if u.find_spec(m)))"
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True, env=clean_env()
    )
    return out.stdout.split()


def site_packages_mb(venv: Path) -> float:
    """Size on disk of what pip installed (the venv's site-packages), in MB."""
    site = next((venv / "lib").glob("python3*/site-packages"))
    return sum(p.stat().st_size for p in site.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6
