"""What counts as an image file, a video file and a network stream: one list each, used everywhere."""

from __future__ import annotations

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".gif"})
NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt"})


def is_url(spec: str) -> bool:
    """True for a URL of a network stream we can read (rtsp://, http(s):// ...)."""
    scheme, sep, _ = str(spec).strip().partition("://")
    return bool(sep) and scheme.lower() in NETWORK_SCHEMES
