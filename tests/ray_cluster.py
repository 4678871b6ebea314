"""A real multi-node Ray cluster on this machine, for the fleet tests and benches; no pytest here.

Each node is its own `ray start --block` process (through `yolovino-fleet ray`, which keeps 127.0.0.1
as the address: ../shared/TOOLING.md, need 6), with its own temp folder, a small --num-cpus, a capped
object store and its custom resources. Everything a node runs is a descendant of its `ray start`
process, so a node is killed (a box losing power) or the cluster torn down by PID, never with `ray stop`
(which stops every Ray cluster of the machine). The head runs with fast health checks, so that a dead
node is noticed in about 2 s instead of 15-30 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
FAST_HEALTH_CHECKS = {
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_failure_threshold": "3",
    "RAY_health_check_timeout_ms": "500",
    "RAY_health_check_initial_delay_ms": "1000",
}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    name: str
    resources: dict
    cpus: int = 1
    proc: subprocess.Popen | None = None
    log: Path | None = None
    started_in: float | None = None  # seconds from `ray start` to ready


@dataclass
class LocalCluster:
    """Head + workers as separate `ray start` processes on 127.0.0.1. `nodes`: name -> resources,
    the first one is the head."""

    nodes: dict[str, dict]
    cpus: int = 1
    object_store_bytes: int = 80_000_000
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rf-", dir="/tmp")))
    port: int = field(default_factory=_free_port)
    env: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)  # keep it short: Ray's socket paths live under it
        self.members = {n: Node(n, r, self.cpus) for n, r in self.nodes.items()}
        self.head = next(iter(self.members))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _cmd(self, node: Node) -> list[str]:
        cmd = [sys.executable, "-m", "yolovino.fleet", "ray", "start", "--block", "--node-ip-address=127.0.0.1"]
        cmd += [f"--num-cpus={node.cpus}", f"--resources={json.dumps(node.resources)}", f"--node-name={node.name}"]
        cmd += [f"--temp-dir={self.root / node.name}", f"--object-store-memory={self.object_store_bytes}"]
        if node.name == self.head:
            cmd += ["--head", f"--port={self.port}", "--include-dashboard=false"]
        else:
            cmd += [f"--address={self.address}"]
        return cmd

    def start_node(self, name: str, timeout: float = 90.0) -> Node:
        node = self.members[name]
        node.log = self.root / f"{name}.log"
        env = {**os.environ, **FAST_HEALTH_CHECKS, **self.env, "RAY_USAGE_STATS_ENABLED": "0"}
        t0 = time.monotonic()
        with open(node.log, "ab") as fh:
            node.proc = subprocess.Popen(
                self._cmd(node), cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "Ray runtime started" in node.log.read_text(errors="replace"):
                node.started_in = time.monotonic() - t0
                return node
            if node.proc.poll() is not None:
                break
            time.sleep(0.2)
        tail = node.log.read_text(errors="replace")[-2000:]
        self.kill_node(name)
        raise RuntimeError(f"ray node {name} did not start:\n{tail}")

    def start(self) -> LocalCluster:
        try:
            for name in self.members:
                self.start_node(name)
        except BaseException:
            self.stop()
            raise
        return self

    def pids(self, name: str) -> list[int]:
        """The node's `ray start` process and all it runs (raylet, workers, agents; GCS on the head)."""
        node = self.members[name]
        if node.proc is None:
            return []
        try:
            root = psutil.Process(node.proc.pid)
            return [root.pid] + [p.pid for p in root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill_node(self, name: str) -> int:
        """SIGKILL every process of the node at once (a box losing power); returns how many."""
        procs = []
        for pid in self.pids(name):
            try:
                procs.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                pass
        strays = self._strays(self.root / name)
        for p in procs + strays:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(procs + strays, timeout=15)
        node = self.members[name]
        if node.proc is not None:
            node.proc.wait(timeout=15)
            node.proc = None
        return len(procs) + len(strays)

    @staticmethod
    def _strays(folder: Path) -> list[psutil.Process]:
        """Processes outside the node's tree whose command line names its temp folder (re-parented)."""
        out = []
        for p in psutil.process_iter(["pid", "cmdline"]):
            try:
                if any(str(folder) in c for c in (p.info["cmdline"] or [])):
                    out.append(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return out

    def stop(self) -> None:
        """Tear everything down by PID: workers first, then the head; remove the temp folders."""
        for name in reversed(list(self.members)):
            self.kill_node(name)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
