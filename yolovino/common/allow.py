"""Which network sources people may open from the web page: an allow-list of schemes and hosts set by the
operator (`--allow-source`, YOLO_APP_ALLOW_SOURCES). Without it the page opens no URL at all: a page that
fetches any URL typed into it lets its users probe the box's network (SSRF).

Patterns (scheme required, `*` for any stream scheme; port optional):
    rtsp://10.0.0.0/8          every address of a network (IPv4/IPv6 CIDR)
    rtsp://192.168.1.20:554    one host (and port)
    rtsps://*.cams.example     host names by glob (case-insensitive)
A host name in a URL matches a network pattern only when every address it resolves to is inside.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from yolovino.inference.core.media import NETWORK_SCHEMES
from yolovino.inference.core.redact import redact


@dataclass(frozen=True)
class _Rule:
    scheme: str  # "*" or a scheme
    host: str  # glob, or "" when `network` is set
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    port: int | None

    def matches(self, scheme: str, host: str, port: int | None, addresses: list) -> bool:
        if self.scheme != "*" and self.scheme != scheme:
            return False
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            return bool(addresses) and all(a in self.network for a in addresses)
        return fnmatch.fnmatchcase(host, self.host)


@dataclass(frozen=True)
class AllowList:
    rules: tuple[_Rule, ...] = ()

    @classmethod
    def parse(cls, patterns: list[str]) -> AllowList:
        """ValueError naming the first pattern that is not scheme://host[:port] or scheme://cidr."""
        rules = []
        for text in (p.strip() for p in patterns):
            shown = redact(text)  # a pattern pasted from a camera URL may carry its password
            if not text:
                continue
            scheme, sep, rest = text.partition("://")
            scheme = scheme.lower()
            if not sep or not rest or (scheme != "*" and scheme not in NETWORK_SCHEMES):
                raise ValueError(f"{shown!r}: expected scheme://host[:port] or scheme://network/bits")
            try:
                network = ipaddress.ip_network(rest.strip("[]"), strict=False) if "/" in rest else None
            except ValueError:
                raise ValueError(f"{shown!r}: not a network (such as 10.0.0.0/8)") from None
            port = None
            host = ""
            if network is None:
                parts = urlsplit(f"x://{rest}")
                try:
                    port = parts.port
                except ValueError:
                    raise ValueError(f"{shown!r}: bad port") from None
                host = (parts.hostname or "").lower()
                if not host:
                    raise ValueError(f"{shown!r}: no host")
            rules.append(_Rule(scheme, host, network, port))
        return cls(tuple(rules))

    @classmethod
    def for_operator(cls, patterns: list[str], env: str | None, own_source: str | None = None) -> AllowList:
        """--allow-source patterns, the comma-separated YOLO_APP_ALLOW_SOURCES, and the scheme, host and port
        of a URL the operator gave as the default source (ValueError for a bad pattern)."""
        extra = [p for p in (env or "").split(",") if p.strip()]
        if own_source:
            parts = urlsplit(own_source)
            extra.append(f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else ""))
        return cls.parse(list(patterns) + extra)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def allows(self, url: str) -> bool:
        """True when some rule admits the URL's scheme, host and port."""
        try:
            parts = urlsplit(url.strip())
            scheme, host, port = parts.scheme.lower(), (parts.hostname or "").lower(), parts.port
        except ValueError:
            return False
        if not host or scheme not in NETWORK_SCHEMES:
            return False
        addresses = _addresses(host) if any(r.network is not None for r in self.rules) else []
        return any(r.matches(scheme, host, port, addresses) for r in self.rules)

    def describe(self) -> str:
        return ", ".join(f"{r.scheme}://{r.network or r.host}{f':{r.port}' if r.port else ''}" for r in self.rules)


def _addresses(host: str) -> list:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        return sorted({ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in socket.getaddrinfo(host, None)})
    except (OSError, ValueError):
        return []
