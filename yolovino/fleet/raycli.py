"""Ray's own CLI and `ray.init`, with loopback addresses kept as they are.

Ray rewrites 127.0.0.1/localhost in `--node-ip-address`, `--address` and `ray.init(address=...)` into the
host's outward address (`ray._private.services.resolve_ip_for_localhost`) and binds on every interface;
a node started for loopback then waits two minutes for a GCS it cannot reach, and a test cluster is open
to the network. No setting turns this off, so for loopback addresses the function is replaced by the
identity (../shared/TOOLING.md, need 6); any other address goes through Ray unchanged, so on real
machines this is plain `ray`.

    yolovino-fleet ray start --head --node-ip-address=127.0.0.1 --port=6380 --num-cpus=1 ...
"""

from __future__ import annotations

from collections.abc import Callable

from yolovino.inference.core.media import is_loopback


def keep_loopback() -> None:
    """Make Ray leave loopback addresses alone in this process (idempotent)."""
    from ray._private import services

    original: Callable[[str], str] = getattr(services, "_fleet_original_resolve", services.resolve_ip_for_localhost)

    def resolve(host: str) -> str:
        return host if host and is_loopback(host) else original(host)

    services._fleet_original_resolve = original  # type: ignore[attr-defined]
    services.resolve_ip_for_localhost = resolve


def ray_main(argv: list[str]) -> int:
    """`ray ARGS...` (the click CLI of the ray package) with loopback kept; returns its exit code."""
    keep_loopback()
    from ray.scripts.scripts import cli

    try:
        cli.main(args=argv, prog_name="ray", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0
