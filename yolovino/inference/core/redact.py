"""Keep secrets out of logs, errors, metrics, health and the UI: camera URLs carry passwords and tokens.

Cameras put credentials in three places, and `redact(url)` hides all three:
  * user-info:  rtsp://admin:S3cret@cam/stream          -> rtsp://***:***@cam/stream
  * the query:  http://cam/x?pw=S3cret&res=hd            -> http://cam/x?pw=***&res=hd
  * the path:   rtsp://cam/user=admin&password=S3cret&channel=1   (Dahua/XMEye style, also with `_` between
                pairs: /user=admin_password=S3cret_channel=1_stream=0.sdp) -> .../password=***&channel=1
A key is secret when it is one of the short names cameras use (p, pw, pwd, psw, pin) or contains pass,
pwd, token, secret, auth, sig, credential or key. Values of other keys (channel, user) stay readable so a
person can still tell the cameras apart.

`scrub(text, *urls)` redacts every URL that appears in a message (an FFmpeg or urllib error quoting the URL);
`one_line(exc, *urls)` makes an exception a short, scrubbed line. `safe_name(name)` makes a source name
(typed by a user, or taken from a file name or URL) safe to put in a log line: no control characters.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_SECRET_KEY = re.compile(r"(?i)^(?:p|pw|psw|pin)$|pass|pwd|token|secret|auth|sig|credential|key$")
# key=value inside a path or query; the value ends at & ; / ? # or where the next `_key=` pair starts
_PAIR = re.compile(r"(?P<key>[A-Za-z][\w.-]*?)=(?P<value>[^&;/?#\s]*?)(?=[&;/?#\s]|_[A-Za-z][\w.-]*=|$)")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def _hide_pairs(text: str) -> str:
    """Each key=value in `text` whose key looks secret, with its value replaced by ***."""

    def one(m: re.Match) -> str:
        key = m.group("key")
        bare = key.rsplit("_", 1)[-1] if "_" in key and not _SECRET_KEY.search(key) else key
        if _SECRET_KEY.search(bare) and m.group("value"):
            return f"{key}=***"
        return m.group(0)

    return _PAIR.sub(one, text)


def redact(url: str) -> str:
    """The URL with user-info, and secret-looking key=value pairs in its path and query, replaced by ***.

    Text without "://" is returned as it is (a file name, a webcam index)."""
    text = str(url)
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an unclosed [ in the host: hide what could be a user-info anyway
        return _hide_pairs(re.sub(r"://[^/@\s]*@", "://***@", text))
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        netloc = ("***:***@" if ":" in userinfo else "***@") + host
    return urlunsplit(
        (parts.scheme, netloc, _hide_pairs(parts.path), _hide_pairs(parts.query), _hide_pairs(parts.fragment))
    )


def scrub(text: str, *secrets: str) -> str:
    """A message with every raw URL in `secrets`, and every URL that appears in it, redacted."""
    text = str(text)
    for s in secrets:
        if s and s in text:
            text = text.replace(s, redact(s))
    return _URL.sub(lambda m: redact(m.group(0)), text)


def one_line(exc: BaseException, *secrets: str, limit: int = 240) -> str:
    """The first line of an exception's message (or its type name), errno prefix dropped, scrubbed."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    msg = re.sub(r"^\[Errno -?\d+\]\s*", "", msg)
    return safe_name(scrub(msg, *secrets))[:limit]


def safe_name(name: str, limit: int | None = None) -> str:
    """`name` fit for one log line: control characters (newlines, ESC, NUL ...) shown as \\xNN escapes, so
    a name cannot forge log lines or move the terminal's cursor; cut to `limit` characters if given."""
    text = str(name)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."
