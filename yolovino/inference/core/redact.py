"""Keep secrets out of logs, errors and metrics: camera URLs carry passwords and tokens.

`redact(url)` hides user:password and secret-looking query values; `scrub(text, *urls)` removes raw URLs
(and any user:pw@ left) from a message; `one_line(exc, *urls)` makes an exception a short, scrubbed line.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_SECRET_KEYS = re.compile(r"pass|pwd|token|key|secret|auth|sig|credential", re.I)


def redact(url: str) -> str:
    """The URL with user:password and secret-looking query values replaced by ***."""
    text = str(url)
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        return re.sub(r"://[^/@\s]*@", "://***@", text)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        netloc = ("***:***@" if ":" in userinfo else "***@") + host
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_KEYS.search(k) for k, _ in pairs):
            query = urlencode([(k, "***" if _SECRET_KEYS.search(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrub(text: str, *secrets: str) -> str:
    """Remove every raw URL in `secrets` (and any user:pw@ left) from a message."""
    text = str(text)
    for s in secrets:
        if s and s in text:
            text = text.replace(s, redact(s))
    return re.sub(r"(\w+://)(?!\*\*\*)[^/@\s'\"]+@", r"\1***@", text)


def one_line(exc: BaseException, *secrets: str, limit: int = 240) -> str:
    """The first line of an exception's message (or its type name), errno prefix dropped, scrubbed."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    msg = re.sub(r"^\[Errno -?\d+\]\s*", "", msg)
    return scrub(msg, *secrets)[:limit]
