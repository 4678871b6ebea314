"""The fleet's status: a small named actor the controller updates, and the table `fleet status` prints.

The controller (fleet/live.py) publishes one table a second to the `fleet-status` actor in the
`yolo-fleet` namespace; `yolovino-fleet status --address HEAD:PORT` reads it from any machine that
reaches the cluster. The actor lives as long as the controller that made it.
"""

from __future__ import annotations

import json
import time
from typing import cast

from yolovino.fleet.cluster import NO_LIMIT

BOARD = "fleet-status"


class StatusBoard:
    """Holds the latest table (wrapped as a Ray actor by the controller)."""

    def __init__(self) -> None:
        self.table: dict = {"cameras": [], "nodes": [], "updated": None}

    def put(self, table: dict) -> None:
        self.table = table

    def get(self) -> dict:
        return self.table


def _ago(t: float | None, now: float) -> str:
    if t is None:
        return "-"
    return f"{time.strftime('%H:%M:%S', time.localtime(t))} ({max(0.0, now - t):.1f} s ago)"


def format_table(table: dict, now: float | None = None) -> str:
    """Per camera: node, state, FPS, last frame time, frames, restarts, reconnects; then the nodes."""
    now = time.time() if now is None else now
    head = ("camera", "node", "state", "fps", "last frame", "frames", "restarts", "reconnects")
    rows = [
        (
            c["camera"],
            c["node"] or "-",
            c["state"],
            f"{c['fps']:.1f}",
            _ago(c["last_frame"], now),
            str(c["frames"]),
            str(c["restarts"]),
            str(c["reconnects"]),
        )
        for c in table["cameras"]
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in [head, *rows]]
    nodes = [
        f"{n['node']} (alive, {n['cameras']} cameras, capacity {n['capacity'] if n['capacity'] < NO_LIMIT else '-'})"
        if n["alive"]
        else f"{n['node']} (DEAD)"
        for n in table["nodes"]
    ]
    lines.append("nodes: " + (", ".join(nodes) or "none"))
    return "\n".join(lines)


def show(address: str | None, as_json: bool = False) -> int:
    """Print the running fleet's table; 1 when no fleet runs on that cluster."""
    import ray

    from yolovino.fleet.cluster import FleetError, connect

    connect(address)
    try:
        board = ray.get_actor(BOARD)
    except ValueError:
        raise FleetError("no fleet is running on this cluster (start one with `yolovino-fleet live`)") from None
    table = cast(dict, ray.get(board.get.remote(), timeout=30))
    print(json.dumps(table, indent=2) if as_json else format_table(table))
    return 0
