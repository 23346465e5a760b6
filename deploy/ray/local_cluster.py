"""A Ray cluster of several nodes on one machine, started the way a user starts one (`ray start`).

Each node is its own `ray start --block` process group (the head, then workers joining its address), with
its own CPU count and custom resources, so placement, node loss and restarts behave as on separate
machines. Used by the tests and the benchmarks, and handy to try the Ray launcher on one box:

    python -m deploy.ray.local_cluster --port 6380 --nodes 2     # Ctrl-C (or kill) stops every node

Token authentication stays on: a token is generated into TOKEN_PATH (0600) and RAY_AUTH_MODE=token is set
for the nodes; a driver needs the same two variables (`env()`).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))  # the CLI installed beside this interpreter


@dataclass
class NodeSpec:
    """One node: its CPUs, custom resources and object store size."""

    cpus: int = 2
    resources: dict[str, float] = field(default_factory=dict)
    object_store_mb: int = 100  # small: Tandem puts no data in the object store


class LocalCluster:
    """Head plus workers as separate `ray start --block` processes on this machine."""

    def __init__(self, port: int, nodes: list[NodeSpec], token_path: Path) -> None:
        if not nodes:
            raise ValueError("a cluster needs at least a head node")
        self.port, self.specs, self.token_path = port, nodes, Path(token_path)
        self.address = f"127.0.0.1:{port}"
        self.processes: list[subprocess.Popen | None] = [None] * len(nodes)

    def env(self) -> dict[str, str]:
        """What a driver or node of this cluster needs in its environment (token auth, no usage stats)."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(self.token_path),
                "RAY_USAGE_STATS_ENABLED": "0"}  # fmt: skip

    def start(self, timeout_s: float = 120.0) -> LocalCluster:
        if not self.token_path.exists():
            self.token_path.parent.mkdir(parents=True, exist_ok=True)
            self.token_path.write_text(secrets.token_hex(32))
            self.token_path.chmod(0o600)
        for index in range(len(self.specs)):
            self.start_node(index, timeout_s)
        return self

    def start_node(self, index: int, timeout_s: float = 120.0) -> None:
        """Start node `index` (0 is the head) and wait until the cluster lists it."""
        spec = self.specs[index]
        before = self.alive_nodes()
        role = ["--head", f"--port={self.port}", "--include-dashboard=false"] if index == 0 else \
            [f"--address={self.address}"]  # fmt: skip
        command = [RAY, "start", "--block", *role, f"--num-cpus={spec.cpus}", "--num-gpus=0",
                   f"--resources={json.dumps(spec.resources)}",
                   f"--object-store-memory={spec.object_store_mb << 20}", "--disable-usage-stats"]  # fmt: skip
        self.processes[index] = subprocess.Popen(command, env={**os.environ, **self.env()}, start_new_session=True,
                                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        self._wait(lambda: self.alive_nodes() > before, timeout_s, f"node {index} to join ({before} alive before)")

    def stop_node(self, index: int, timeout_s: float = 60.0, grace_s: float = 60.0) -> None:
        """Stop one node the way `ray stop` would on its machine: SIGTERM to its process group, SIGKILL
        after `grace_s`."""
        process = self.processes[index]
        if process is None:
            return
        before = self.alive_nodes() if index else 0
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
        self.processes[index] = None
        if index:  # a worker: wait until the head has noticed (the head going takes the cluster with it)
            self._wait(lambda: self.alive_nodes() < before, timeout_s, f"node {index} to leave")

    def stop(self) -> list[str]:
        """Stop every node (workers first); returns the command lines of Ray processes left behind (killed)."""
        for index in reversed(range(len(self.specs))):
            self.stop_node(index, grace_s=10.0)  # a head takes ~30 s to stop on SIGTERM alone
        deadline = time.monotonic() + 30.0
        while (left := self.leftovers()) and time.monotonic() < deadline:
            time.sleep(0.2)  # node processes exit on their own after their raylet goes; the deadline decides
        for pid, _ in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return [command for _, command in left]

    def leftovers(self) -> list[tuple[int, str]]:
        """(pid, command line) of processes still tied to this cluster's GCS port."""
        marker = f":{self.port}"
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in command and ("gcs" in command or "raylet" in command or "ray" in command.split(" ")[0]
                                      or "default_worker" in command or "ray::" in command):  # fmt: skip
                found.append((int(proc.name), command.strip()))
        return found

    def alive_nodes(self) -> int:
        """Alive nodes as the head's GCS reports them (0 while it is not up)."""
        if not _listening(self.port):
            return 0
        status = subprocess.run([RAY, "status", "--address", self.address], capture_output=True, text=True,
                                env={**os.environ, **self.env()}, timeout=60)  # fmt: skip
        if status.returncode != 0 or "Active:" not in status.stdout:
            return 0
        active = status.stdout.split("Active:", 1)[1].split("Pending:", 1)[0]
        return sum(" node_" in line for line in active.splitlines())

    @staticmethod
    def _wait(condition, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
            time.sleep(0.5)  # polling a CLI; the deadline decides


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.ray.local_cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=6380, help="the head's GCS port")
    parser.add_argument("--nodes", type=int, default=2, help="nodes, head included")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs each node offers")
    parser.add_argument("--token", default=str(Path.home() / ".ray" / "tandem_token"), help="token file")
    args = parser.parse_args(argv)
    specs = [NodeSpec(args.cpus, {"tandem_head" if i == 0 else f"tandem_node_{i}": 1}) for i in range(args.nodes)]
    cluster = LocalCluster(args.port, specs, Path(args.token)).start()
    exports = " ".join(f"{k}={v}" for k, v in cluster.env().items())
    print(f"Ray cluster of {args.nodes} nodes at {cluster.address}; drivers need: export {exports}", flush=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops it like Ctrl-C
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    left = cluster.stop()
    print(f"stopped ({len(left)} leftover processes killed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
