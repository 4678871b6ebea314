"""What counts as an image file, a video file, a network stream and a loopback address: one list each."""

from __future__ import annotations

import ipaddress
import socket

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".gif"})
NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt"})


def is_url(spec: str) -> bool:
    """True for a URL of a network stream we can read (rtsp://, http(s):// ...)."""
    scheme, sep, _ = str(spec).strip().partition("://")
    return bool(sep) and scheme.lower() in NETWORK_SCHEMES


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
