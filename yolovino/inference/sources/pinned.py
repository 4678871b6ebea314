"""Open exactly the URL that was checked: no redirects, no playlists (for sources opened from the web page).

The page's allow-list (yolovino/common/allow.py) checks the URL a user typed; FFmpeg would then follow an
HTTP 302, an RTSP 302 or the entries of an HLS/DASH playlist or concat list to any other address, so the
list is worth nothing unless the source opens only that URL. `pinned_options` are the FFmpeg options that
hold it there:
  * `max_redirects=0`: FFmpeg's HTTP protocol answers a 3xx with an error instead of following it;
  * `format_whitelist`: only demuxers that read one stream from one connection (no hls, dash, concat,
    sdp, image sequences ...), so nothing in the stream can name another URL to open;
  * `protocol_whitelist`: only the scheme's own transport (no file:, subfile:, concat: ... in nested opens).
FFmpeg's RTSP client follows a 3xx answer with no option to stop it, so `refuse_rtsp_redirect` asks the
server first (OPTIONS, DESCRIBE, what FFmpeg asks) and refuses the source when it answers with a redirect.
Headless sources are not pinned: the operator chose their URLs.
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit, urlunsplit

from yolovino.inference.core.errors import SourceError

# demuxers that read a single stream from a single connection (the top one included: rtsp)
PINNED_FORMATS = "rtsp,mjpeg,mpjpeg,mpegts,flv,live_flv,matroska,webm,mov,mp4,h264,hevc,avi,asf,mpegvideo,mpeg,ivf"
_PROTOCOLS = {
    "rtsp": "rtsp,tcp,udp,rtp",
    "rtsps": "rtsps,rtsp,tls,tcp,udp,rtp",
    "http": "http,tcp",
    "https": "https,http,tls,tcp",
    "rtmp": "rtmp,tcp",
    "udp": "udp",
    "tcp": "tcp",
    "srt": "srt",
}


def pinned_options(url: str) -> dict[str, str]:
    """FFmpeg options that open `url` and nothing else (see the module docstring)."""
    scheme = urlsplit(url).scheme.lower()
    opts = {"format_whitelist": PINNED_FORMATS, "protocol_whitelist": _PROTOCOLS.get(scheme, scheme)}
    if scheme in ("http", "https"):
        opts["max_redirects"] = "0"
    return opts


def refuse_rtsp_redirect(url: str, shown: str, timeout: float = 5.0) -> socket.socket | None:
    """SourceError when the RTSP server answers OPTIONS or DESCRIBE of `url` with a redirect (3xx).

    Other answers (200, 401 ...) and a server that cannot be reached are left to FFmpeg to report. Returns
    the connection, for the caller to close once FFmpeg has opened the stream: servers that prepare the
    media on DESCRIBE and tear it down when that client leaves (GStreamer's rtsp-server) would otherwise
    answer FFmpeg's DESCRIBE, arriving meanwhile, with 503."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("rtsp", "rtsps") or not parts.hostname:
        return None
    port = parts.port or (322 if parts.scheme.lower() == "rtsps" else 554)
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    bare = urlunsplit(
        ("rtsp" if parts.scheme.lower() == "rtsp" else "rtsps", f"{netloc}:{port}", parts.path or "/", parts.query, "")
    )  # no user:password in the request line
    try:
        sock = socket.create_connection((parts.hostname, port), timeout=timeout)
    except OSError:
        return None
    try:
        if parts.scheme.lower() == "rtsps":
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # only the status line matters here
            sock = ctx.wrap_socket(sock, server_hostname=parts.hostname)
        reader = sock.makefile("rb")
        for cseq, (method, extra) in enumerate((("OPTIONS", ""), ("DESCRIBE", "Accept: application/sdp\r\n")), 1):
            sock.sendall(f"{method} {bare} RTSP/1.0\r\nCSeq: {cseq}\r\n{extra}User-Agent: yolovino\r\n\r\n".encode())
            status = _status(reader)
            if status is None or not 200 <= status < 400:  # 401, 404 ...: FFmpeg says so itself
                return sock
            if status >= 300:
                raise SourceError(
                    f"{shown}: the server redirects elsewhere (RTSP {status}); sources opened from the page "
                    "must answer at the allowed address"
                )
    except (OSError, ValueError):
        sock.close()
        return None
    except BaseException:
        sock.close()
        raise
    return sock


def _status(reader) -> int | None:
    """The status code of one RTSP answer (headers and body read and dropped, at most 64 KiB)."""
    line = reader.readline(1024).decode("latin-1")
    if not line.startswith("RTSP/"):
        return None
    length, seen = 0, 0
    while seen < 65536:
        header = reader.readline(4096)
        seen += len(header)
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = min(int(value.strip() or 0), 65536)
    reader.read(length)
    return int(line.split()[1])
