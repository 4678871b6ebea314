"""Connecting to the Ray cluster, the nodes it has and what each may host, and where cameras go.

Capacity: how many cameras a node runs (the "cameras per box" figure of bench/cameras_bench.py for that
box). An operator gives it per node as a Ray custom resource when starting the node
(`ray start ... --resources='{"fleet_cameras": 6}'`), or one figure for every node (`--cameras-per-node`).
The resource is read, never reserved: a node's camera count changes as cameras move on a failure, and a
Ray actor cannot change what it reserved.

Placement (`place`) is a few lines on purpose: Ray gives the nodes, their liveness and actors pinned to a
node, but its own actor restart moves a whole actor to one node, while a dead node's cameras have to be
split over whatever capacity the survivors have left.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

CAPACITY_RESOURCE = "fleet_cameras"
NAMESPACE = "yolo-fleet"
NO_LIMIT = 1_000_000  # capacity of a node when neither its resource nor --cameras-per-node says
PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # a checkout, or site-packages


class FleetError(Exception):
    """A fleet command that cannot run as asked (one line, exit 2)."""


@dataclass(frozen=True)
class NodeInfo:
    """One node of the cluster as Ray's GCS reports it."""

    id: str
    name: str
    alive: bool
    capacity: int  # cameras it may host
    cpus: float

    @property
    def short(self) -> str:
        return self.name if self.name and self.name != "127.0.0.1" else self.id[:8]


def connect(address: str | None, namespace: str = NAMESPACE, log_to_driver: bool = True) -> None:
    """ray.init to an existing cluster (`address` or $RAY_ADDRESS); FleetError when there is none.
    The workers find this checkout's packages (PYTHONPATH), so nodes need the same checkout at the same
    path or the package installed with its `fleet` extra. `log_to_driver`: the actors' log lines in this
    process's output (the live controller wants them; a batch reports its failures itself)."""
    import ray

    from yolovino.fleet.raycli import keep_loopback

    address = address or os.environ.get("RAY_ADDRESS")
    if not address:
        raise FleetError("no cluster address: give --address HOST:PORT (the head's `ray start --head --port`)")
    keep_loopback()
    pythonpath = os.environ.get("PYTHONPATH", "")
    try:
        ray.init(
            address=address,
            namespace=namespace,
            logging_level=logging.WARNING,
            log_to_driver=log_to_driver,
            runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_PARENT), pythonpath]))}},
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise FleetError(f"cannot connect to the Ray cluster at {address}: {str(exc).splitlines()[0]}") from None


def nodes(default_capacity: int | None) -> list[NodeInfo]:
    """Every node the GCS knows (dead ones too), in the order they joined; capacity from the node's
    `fleet_cameras` resource, else `default_capacity` (None: no limit)."""
    import ray

    out = []
    for n in ray.nodes():
        res = n.get("Resources", {}) or {}
        if not n["Alive"]:
            cap = 0  # a dead node reports no resources
        elif CAPACITY_RESOURCE in res:
            cap = int(res[CAPACITY_RESOURCE])
        else:
            cap = default_capacity if default_capacity is not None else NO_LIMIT
        out.append(NodeInfo(n["NodeID"], n.get("NodeName", ""), bool(n["Alive"]), cap, float(res.get("CPU", 0))))
    return out


def place(
    pending: Iterable[str], load: Mapping[str, int], capacity: Mapping[str, int]
) -> tuple[dict[str, str], list[str]]:
    """Cameras onto nodes: each goes to the node with the lowest share of its capacity in use (ties: fewer
    cameras, then more capacity, then the node listed first), never above capacity. Returns
    ({camera: node}, cameras left without a node)."""
    used = {n: load.get(n, 0) for n in capacity}
    order = {n: i for i, n in enumerate(capacity)}
    placed: dict[str, str] = {}
    left: list[str] = []
    for cam in pending:
        free = [n for n, cap in capacity.items() if used[n] < cap]
        if not free:
            left.append(cam)
            continue
        best = min(free, key=lambda n: (used[n] / capacity[n], used[n], -capacity[n], order[n]))
        placed[cam] = best
        used[best] += 1
    return placed, left
