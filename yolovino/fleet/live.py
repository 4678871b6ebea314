"""The live fleet: the headless mode's cameras spread over a Ray cluster, moved off nodes that die.

The driver (this module, run by `yolovino-fleet live`) is the controller. Each step (twice a second):
- the nodes: Ray's GCS says which are alive (its health checks decide when a node is dead);
- one `CameraHost` actor per alive node with capacity, pinned to that node (fleet/host.py);
- cameras without a node (at start, or whose node died) are placed on the nodes with capacity left
  (cluster.place: even spread by share of capacity); each host is sent its whole set of plans;
- each host's status is polled without blocking; a host whose actor died loses its cameras, which are
  placed again at the next step. A node that comes back gets a host again and takes new placements;
  running cameras are not moved back.
The table goes to the status board (fleet/status.py) and, every `report_every` s, to the log.

Keep the driver on the head node (Ray ties actors to the node their owner runs on).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from yolovino.fleet.cluster import NodeInfo, nodes, place
from yolovino.fleet.host import CameraHost, HostSettings
from yolovino.fleet.models import ModelBundle
from yolovino.fleet.status import BOARD, StatusBoard, format_table
from yolovino.inference.core.redact import redact
from yolovino.inference.service.supervisor import SourcePlan

log = logging.getLogger("yolovino.fleet.live")


@dataclass
class Camera:
    plan: SourcePlan
    node: str | None = None
    placements: int = 0
    status: dict = field(default_factory=dict)

    @property
    def restarts(self) -> int:
        """Times it was started again on another node after losing its own."""
        return max(0, self.placements - 1)


@dataclass
class Host:
    node: NodeInfo
    actor: Any
    sent: tuple[str, ...] | None = None  # keys of the last assign (in flight or done)
    call: Any = None  # assign in flight
    poll: Any = None  # status call in flight
    retry_at: float = 0.0  # after a failed assign


class Controller:
    """See the module docstring. `step()` is one round; `run(stop)` repeats it until `stop` is set."""

    def __init__(self, plans: list[SourcePlan], settings: HostSettings, default_capacity: int | None):
        import ray

        self.cameras = {p.key: Camera(p) for p in plans}
        self.settings, self.default_capacity = settings, default_capacity
        self.hosts: dict[str, Host] = {}
        self.nodes: list[NodeInfo] = []
        self.bundles = {str(p.model): ray.put(ModelBundle.read(p.model)) for p in plans}
        self._actor_cls = ray.remote(CameraHost)
        self._strategy = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy
        here = ray.get_runtime_context().get_node_id()
        self.board: Any = (
            ray.remote(StatusBoard)
            .options(name=BOARD, num_cpus=0, scheduling_strategy=self._strategy(here, soft=False))
            .remote()
        )

    # -- one round ----------------------------------------------------------------------------------
    def step(self) -> None:
        self.nodes = nodes(self.default_capacity)
        alive = {n.id: n for n in self.nodes if n.alive}
        for nid in [n for n in self.hosts if n not in alive]:
            self._lose(nid, "node is dead")
        for n in alive.values():
            if n.id not in self.hosts and n.capacity > 0:
                self.hosts[n.id] = self._new_host(n)
        self._collect()
        self._place({nid: alive[nid].capacity for nid in self.hosts})
        self._send()
        self._publish()

    def _new_host(self, n: NodeInfo) -> Host:
        actor = self._actor_cls.options(
            num_cpus=0,
            max_restarts=0,
            max_concurrency=4,  # status answered while an assign opens cameras
            scheduling_strategy=self._strategy(n.id, soft=False),
        ).remote(self.settings)
        log.info("node %s: camera host started (capacity %d)", n.short, n.capacity)
        return Host(n, actor)

    def _lose(self, nid: str, why: str) -> None:
        import ray

        host = self.hosts.pop(nid)
        moved = [k for k, c in self.cameras.items() if c.node == nid]
        for k in moved:
            self.cameras[k].node = None
            self.cameras[k].status = {}
        ray.kill(host.actor)
        log.warning(
            "node %s lost (%s): cameras %s to restart elsewhere", host.node.short, why, redact(", ".join(moved))
        )

    def _collect(self) -> None:
        """Finished assign and status calls; a dead actor loses its node's cameras."""
        import ray

        calls = {
            id(ref): (nid, kind, ref)
            for nid, h in self.hosts.items()
            for kind, ref in (("call", h.call), ("poll", h.poll))
            if ref is not None
        }
        if not calls:
            return
        refs = [c[2] for c in calls.values()]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        for ref in ready:
            nid, kind, _ = calls[id(ref)]
            host = self.hosts.get(nid)
            if host is None:
                continue
            setattr(host, kind, None)
            try:
                value = ray.get(ref)
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
                self._lose(nid, type(exc).__name__)
                continue
            except ray.exceptions.RayTaskError as exc:
                log.error("node %s: %s failed: %s", host.node.short, kind, str(exc).strip().splitlines()[-1])
                if kind == "call":
                    host.sent, host.retry_at = None, time.monotonic() + 5.0  # send it again, later
                continue
            if kind == "call" and value.get("failed"):
                log.error("node %s: cameras not started: %s", host.node.short, redact(", ".join(value["failed"])))
            if kind == "poll":
                for st in value:
                    cam = self.cameras.get(st["key"])
                    if cam is not None and cam.node == nid:
                        cam.status = st

    def _place(self, capacity: dict[str, int]) -> None:
        load: dict[str, int] = {}
        for c in self.cameras.values():
            if c.node is not None:
                load[c.node] = load.get(c.node, 0) + 1
        pending = [k for k, c in self.cameras.items() if c.node is None]
        if not pending:
            return
        placed, left = place(pending, load, capacity)
        for key, nid in placed.items():
            cam = self.cameras[key]
            cam.node, cam.status = nid, {}
            cam.placements += 1
            log.info(
                "camera %s -> node %s%s", redact(key), self.hosts[nid].node.short, " (restart)" if cam.restarts else ""
            )
        if left and not getattr(self, "_warned", False):
            log.warning("no node has capacity for cameras %s; waiting for one", redact(", ".join(left)))
        self._warned = bool(left)

    def _send(self) -> None:
        for nid, host in self.hosts.items():
            keys = tuple(k for k, c in self.cameras.items() if c.node == nid)
            if host.call is None and keys != host.sent and time.monotonic() >= host.retry_at:
                plans = [self.cameras[k].plan for k in keys]
                bundles = {m: self.bundles[m] for m in {str(p.model) for p in plans}}
                host.call = host.actor.assign.remote(plans, bundles)
                host.sent = keys
            if host.poll is None:
                host.poll = host.actor.status.remote()

    # -- the table -------------------------------------------------------------------------------------
    def table(self) -> dict:
        by_id = {n.id: n for n in self.nodes}
        cams = []
        for key, c in self.cameras.items():
            st = c.status
            node = by_id.get(c.node) if c.node else None
            state = st.get("state") or ("pending" if c.node is None else "starting")
            cams.append(
                {
                    "camera": redact(key),
                    "node": node.short if node else None,
                    "node_id": c.node,
                    "state": state,
                    "fps": st.get("fps", 0.0),
                    "last_frame": st.get("last_frame"),
                    "frames": st.get("frames", 0),
                    "restarts": c.restarts,
                    "reconnects": st.get("reconnects", 0),
                    "error": st.get("error"),
                }
            )
        node_rows = [
            {
                "node": n.short,
                "node_id": n.id,
                "alive": n.alive,
                "capacity": n.capacity,
                "cameras": sum(1 for c in self.cameras.values() if c.node == n.id),
            }
            for n in self.nodes
        ]
        return {"cameras": cams, "nodes": node_rows, "updated": time.time()}

    def _publish(self) -> None:
        self.board.put.remote(self.table())

    # -- lifetime ------------------------------------------------------------------------------------
    def run(self, stop: threading.Event, interval: float = 0.5, report_every: float = 10.0) -> None:
        last = time.monotonic()
        while True:
            self.step()
            if report_every and time.monotonic() - last >= report_every:
                last = time.monotonic()
                log.info("status\n%s", format_table(self.table()))
            if stop.wait(interval):
                return

    def close(self, timeout: float = 60.0) -> None:
        """Every host stops its cameras and finalises their outputs, then the actors go."""
        import ray

        closing = [h.actor.close.remote() for h in self.hosts.values()]
        try:
            ray.wait(closing, num_returns=len(closing), timeout=timeout)
        finally:
            for h in self.hosts.values():
                ray.kill(h.actor)
            ray.kill(self.board)
            self.hosts.clear()
