"""Where things live and who may reach us: shared by app.py, ui/, quantize/ and bench/ (no globals)."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def assets_root() -> Path:
    """The shared assets (videos, checkpoints, datasets): ../shared beside the repo, or $YOLO_APP_ASSETS."""
    env = os.environ.get("YOLO_APP_ASSETS")
    return Path(env).expanduser().resolve() if env else (REPO_ROOT.parent / "shared").resolve()


def is_loopback(host: str) -> bool:
    """True when every address the host name resolves to is a loopback one (binding there exposes nothing)."""
    host = (host or "").strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
        except (OSError, ValueError):
            return False
