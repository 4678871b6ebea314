"""Video sources: files, images, image folders, webcams, RTSP/HTTP streams, each read on its own thread.

    src = open_source("rtsp://user:pw@cam/stream")      # raises SourceError (one line, redacted) if unusable
    for frame in src: ...                                 # Frame(image BGR uint8, index, source_id, pts, captured_at)
    src.close()

Two delivery modes:
  * files (video, image, folder): every frame is delivered; a bounded queue gives backpressure.
  * live (webcam, rtsp, http): keep-latest; a queue of one, stale frames are dropped and counted.

Network sources have an open timeout and a read timeout (a frozen stream is noticed within seconds),
reconnect with exponential backoff forever (or `max_retries`), log each outage once (lost / restored),
and count it. Credentials in URLs are redacted in every log line, error and stat (`redact`).
Decoding uses PyAV (bundled FFmpeg); webcams use OpenCV. Corrupt data is counted (stats.decode_errors,
one log line per burst) and skipped, never a reason to reconnect; pictures are turned upright as the
display matrix says (inference/sources/packets.py). A frame size change mid-stream is logged and passed on.
Decoded video frames are converted to BGR on first use (core Frame.decoded): the motion gate reads their Y
plane, so an idle camera's frames that nothing detects on, draws or records are never converted.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from yolovino.inference.core.errors import SourceError
from yolovino.inference.core.media import IMAGE_SUFFIXES, NETWORK_SCHEMES
from yolovino.inference.core.redact import redact, safe_name
from yolovino.inference.sources.base import FrameSource, Source, SourceStats, output_fps
from yolovino.inference.sources.local import ImageSource, WebcamSource
from yolovino.inference.sources.pyav import PacketSource, PyAVSource

__all__ = [
    "FrameSource",
    "ImageSource",
    "PacketSource",
    "PyAVSource",
    "Source",
    "SourceStats",
    "WebcamSource",
    "default_name",
    "open_packet_source",
    "open_source",
    "output_fps",
]


def default_name(spec: str | int) -> str:
    """What a source without a `name:` is called in logs, metrics and output names: webcamN for a webcam
    index, the file or folder name, else the URL with its secrets redacted."""
    text = str(spec).strip()
    if text.isdigit():
        return f"webcam{text}"
    if "://" in text and not text.lower().startswith("file://"):
        return redact(text)
    return Path(urlsplit(text).path if "://" in text else text).expanduser().name or text


def open_source(
    spec: str | int, *, live: bool | None = None, name: str | None = None, start: bool = True, wait: bool = False, **kw
) -> Source:
    """Open a source from a spec; raises SourceError with one line naming the (redacted) source.

    spec: video file (mp4/mkv/avi/gif...), image file, image folder, webcam index ("0"),
          rtsp(s)://, http(s)://, rtmp:// ...
    live: keep-latest delivery with drops (default: True for cameras and network streams, False for files).
    wait: a network source or webcam that cannot be opened now keeps retrying in the background
          (state "reconnecting") instead of raising; bad specs (scheme, missing file) still raise.
    Other keywords: queue_size, max_retries (None = forever), backoff=(first, max) seconds,
          open_timeout, read_timeout (network), options (extra FFmpeg options), stall_timeout,
          pinned (network: open this URL only, no redirects or playlists; the web page's sources).
    """
    text = str(spec).strip()
    shown = safe_name(redact(text))
    name = name or default_name(text)
    if not text:
        raise SourceError("empty source: give a video file, image, folder, webcam index or rtsp:// URL")
    if text.isdigit():
        src: Source = WebcamSource(
            text,
            index=int(text),
            name=name,
            live=True if live is None else live,
            **_only(kw, Source),
        )
    elif "://" in text:
        scheme = text.split("://", 1)[0].lower()
        text = scheme + text[len(scheme) :]  # RTSP:// is rtsp:// (RFC 3986), for FFmpeg as for every check here
        if scheme == "file":
            return open_source(urlsplit(text).path, live=live, name=name, start=start, wait=wait, **kw)
        if scheme not in NETWORK_SCHEMES:
            raise SourceError(
                f"{shown}: unsupported scheme {scheme!r} (use a file path, webcam index, rtsp://, http(s)://)"
            )
        src = PyAVSource(text, live=True if live is None else live, name=name, **kw)
    else:
        path = Path(text).expanduser()
        if path.is_dir():
            paths = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not paths:
                raise SourceError(f"{shown}: folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            src = ImageSource(text, paths=paths, name=name, **_only(kw, Source))
        elif not path.exists():
            raise SourceError(f"{shown}: file not found")
        elif path.stat().st_size == 0:
            raise SourceError(f"{shown}: file is empty (0 bytes)")
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            src = ImageSource(text, paths=[path], name=name, **_only(kw, Source))
        else:
            src = PyAVSource(text, live=bool(live), name=name, **kw)
    return src.start(wait=wait) if start else src


def open_packet_source(spec: str, name: str, **kw) -> PacketSource:
    """The packets of a video file or stream that nothing decodes (a camera's main stream recorded by copy
    while its sub-stream is detected). A stream that cannot be reached now keeps retrying in the background,
    as a source does with `wait`; a bad spec (scheme, missing file) raises SourceError."""
    text = str(spec).strip()
    shown = safe_name(redact(text))
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme not in NETWORK_SCHEMES:
            raise SourceError(f"{shown}: unsupported scheme {scheme!r} for a record_url (use rtsp:// or http(s)://)")
        text = scheme + text[len(scheme) :]
        live = True
    else:
        if not Path(text).expanduser().is_file():
            raise SourceError(f"{shown}: file not found")
        live = False
    src = PacketSource(text, live=live, name=name, **kw)
    src.start(wait=True)
    return src


def _only(kw: dict, cls) -> dict:
    allowed = {"queue_size", "max_retries", "backoff", "stall_timeout"}
    return {k: v for k, v in kw.items() if k in allowed}
