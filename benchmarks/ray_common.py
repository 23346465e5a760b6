"""What the Ray benchmarks share (`benchmarks/ray_ingest.py`, `ray_start.py`, `ray_vs_zmq.py`).

- `ray_environment`: token authentication and a private Ray temp directory, set before anything imports ray
  (Ray reads them once per process). The private RAY_TMPDIR keeps the benchmark's cluster out of /tmp/ray, so
  `ray.init("auto")` of anything else on the machine never finds it (nor it theirs).
- `BenchCluster`: a two-node LocalCluster (head + worker, `ray start --block` each) started and always
  stopped, with a check that none of its processes, nor any Tandem process started under the scratch
  directory, is left behind.
- /proc readers (memory, CPU), the learner's /metrics counters, free ports, and the results header (date,
  `uptime`, the exact command) every results file carries.
"""

from __future__ import annotations

import datetime
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from common.ports import free_port_pair
HEAD, WORKER = "tandem_head", "tandem_worker"  # each node's own custom resource
RECEIVED = "tandem_learner_transitions_received_total"
UPDATES = "tandem_learner_updates_total"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- progress -----------------------------------------------------------------------------------
class Progress:
    """Timestamped progress lines on stderr (the results go to stdout)."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self, message: str) -> None:
        elapsed = int(time.monotonic() - self.start)
        sys.stderr.write(f"[{elapsed // 60:3d}:{elapsed % 60:02d}] {message}\n")
        sys.stderr.flush()


# ---- environment and cluster --------------------------------------------------------------------
def ray_environment(scratch: Path) -> dict[str, str]:
    """Token auth and a private Ray temp dir for this process and everything it starts; before `import ray`."""
    if "ray" in sys.modules:
        raise RuntimeError("ray was imported before its token settings were in the environment")
    token = scratch / "ray_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    tmp = scratch / "r"  # short: Ray's unix socket paths must stay under 108 bytes
    tmp.mkdir()
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_TMPDIR": str(tmp)}  # fmt: skip
    os.environ.update(env)
    return env


def make_scratch(prefix: str) -> Path:
    """A short private directory for run dirs, spools, keys and Ray's temp files (removed at the end)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


@dataclass
class BenchCluster:
    """A head and a worker node on this machine; `with` starts it (and joins it as a driver if asked)."""

    scratch: Path
    cpus: int = 2
    object_store_mb: int = 100
    connect: bool = True
    progress: Progress = field(default_factory=Progress)
    start_s: float = 0.0  # how long `ray start` of both nodes took

    def __enter__(self) -> BenchCluster:
        from deploy.ray.local_cluster import LocalCluster, NodeSpec

        specs = [NodeSpec(self.cpus, {name: 1}, self.object_store_mb) for name in (HEAD, WORKER)]
        self.local = LocalCluster(free_port_pair(), specs, Path(os.environ["RAY_AUTH_TOKEN_PATH"]))
        _terminate_as_interrupt()
        self.progress(f"starting a 2-node Ray cluster at {self.local.address} (temp dir {os.environ['RAY_TMPDIR']})")
        begin = time.monotonic()
        try:
            self.local.start()
            self.start_s = time.monotonic() - begin
            if self.connect:
                from deploy.ray.cluster import connect

                connect(self.local.address)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.progress(f"cluster up in {self.start_s:.1f} s")
        return self

    @property
    def address(self) -> str:
        return self.local.address

    def node_pids(self) -> list[int]:
        """The `ray start --block` process of each node (head first): the root of that node's processes."""
        return [process.pid for process in self.local.processes if process is not None]

    def __exit__(self, *_exc) -> None:
        import ray

        ray.shutdown()
        left = self.local.stop()
        strays = kill_strays(str(self.scratch))
        self.progress(f"cluster stopped; Ray processes left behind: {len(left)}, Tandem processes: {len(strays)}")
        for command in left + strays:
            self.progress(f"  killed leftover: {command[:160]}")
        shutil.rmtree(self.scratch, ignore_errors=True)


def _terminate_as_interrupt() -> None:
    """SIGTERM unwinds like Ctrl-C, so every `finally` stops what it started."""

    def handler(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def kill_strays(marker: str) -> list[str]:
    """SIGKILL every process (not this one) whose command line mentions `marker`; their command lines."""
    found = [(pid, command) for pid, command in processes() if marker in command and pid != os.getpid()]
    for pid, _ in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return [command for _, command in found]


# ---- ports and metrics --------------------------------------------------------------------------
def node_ip() -> str:
    """This machine's non-loopback address, as Ray finds it (where a Ray-placed learner is reached)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("8.8.8.8", 80))  # UDP: no packet is sent; the kernel picks the outgoing interface
        return probe.getsockname()[0]


def learner_metrics(metrics_port: int, timeout_s: float = 5.0) -> str | None:
    """The learner's /metrics text, None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=timeout_s) as reply:
            return reply.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


def received(metrics_port: int, timeout_s: float = 5.0) -> dict[str, float] | None:
    """The learner's stored transitions per actor id from its /metrics, None while it does not answer."""
    text = learner_metrics(metrics_port, timeout_s)
    if text is None:
        return None
    counts = {}
    for line in text.splitlines():
        if line.startswith(RECEIVED + "{"):
            labels, value = line[len(RECEIVED) + 1:].rsplit("}", 1)
            fields = dict(part.split("=", 1) for part in labels.split(","))
            counts[fields["actor_id"].strip('"')] = float(value)
    return counts


def updates(metrics_port: int) -> float | None:
    """The learner's gradient updates so far (its /metrics counter), None while it does not answer."""
    text = learner_metrics(metrics_port)
    if text is None:
        return None
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(UPDATES + " ")]
    return values[0] if values else 0.0


# ---- /proc ---------------------------------------------------------------------------------------
def processes() -> list[tuple[int, str]]:
    """(pid, command line) of every process."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
            found.append((int(proc.name), command))
    return found


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def parents() -> dict[int, int]:
    """pid -> parent pid of every process."""
    found = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            found[int(proc.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return found


def descendants(root: int, tree: dict[int, int] | None = None) -> list[int]:
    """Every process below `root` (not root itself)."""
    tree = parents() if tree is None else tree
    below, frontier = [], [root]
    while frontier:
        children = [pid for pid, parent in tree.items() if parent in frontier]
        below += children
        frontier = children
    return below


def memory_kb(pid: int) -> tuple[int, int | None]:
    """(RSS, PSS) in kB; PSS is None where /proc/PID/smaps_rollup cannot be read. (0, None) if gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0, None
    rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        pss = next((int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")), None)
    except OSError:
        pss = None
    return rss, pss


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` so far (0 if gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (busy excludes idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    total = sum(values[:8])
    return (total - values[3] - values[4]) / CLK_TCK, total / CLK_TCK


# ---- results ------------------------------------------------------------------------------------
def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def results_header(title: str) -> dict[str, str]:
    """Date, `uptime` (load averages), the exact command, machine and code version, for every results file."""
    import numpy

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()  # fmt: skip
    pythonpath = os.environ.get("PYTHONPATH")
    command = shlex.join(sys.orig_argv)
    return {
        "benchmark": title,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "uptime": uptime(),
        "command": f"PYTHONPATH={pythonpath} {command}" if pythonpath else command,
        "machine": f"{os.cpu_count()} CPUs, {_mem_total_gb():.0f} GB RAM, Python {sys.version.split()[0]}, "
                   f"numpy {numpy.__version__}, ray {_ray_version()}",
        "commit": commit or "?",
    }


def _mem_total_gb() -> float:
    line = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:"))
    return int(line.split()[1]) / 1024**2


def _ray_version() -> str:
    try:
        from importlib.metadata import version

        return version("ray")
    except Exception:  # noqa: BLE001 - only for the header
        return "?"


def header_lines(header: dict[str, str], prefix: str = "") -> list[str]:
    return [f"{prefix}{key}: {value}" for key, value in header.items()]


def write_csv(path: Path, header: dict[str, str], columns: list[str], rows: list[list]) -> None:
    """CSV with the results header as leading `# key: value` comment lines."""
    import csv

    with path.open("w", newline="") as out:
        for line in header_lines(header, "# "):
            out.write(line + "\n")
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)


def markdown_header(header: dict[str, str]) -> str:
    return "\n".join(f"- {key}: `{value}`" if key == "command" else f"- {key}: {value}" for key, value in
                     header.items())  # fmt: skip


def table(headers: list[str], rows: list[list], left: bool = False) -> str:
    """A markdown table padded for the terminal: cells right-aligned (figures), or left-aligned (text)."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(str(column[i])) for column in [headers, *cells]) for i in range(len(headers))]
    pad = str.ljust if left else str.rjust
    line = lambda row: "| " + " | ".join(pad(c, w) for c, w in zip(row, widths)) + " |"  # noqa: E731
    rule = "|" + "|".join((":" + "-" * (w + 1)) if left else ("-" * (w + 1) + ":") for w in widths) + "|"
    return "\n".join([line(headers), rule, *(line(row) for row in cells)])


def wait_for(condition, timeout_s: float, what: str, poll_s: float = 0.2):
    """`condition()`'s first truthy value; TimeoutError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)  # polling another process's state; the deadline decides
