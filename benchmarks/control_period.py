"""The real actor's control period on every twin at its real rate, through the link's bad moments (issue 21, 3).

    python -m benchmarks.control_period                          # every twin, ~4 minutes each
    python -m benchmarks.control_period --robots limo_sim --seconds 10      # a quick look
    python -m benchmarks.chaos --phases period                   # the same, as a phase of the chaos soak

Per twin, all in one run, the real `actor` CLI at time scale 1 logging every tick (`--period-log`):
  bare     `actor --policy FILE`: the same loop and policy network (an untrained SAC policy of the learner's
           size), no network at all, running beside the linked actor the whole time: the box's own jitter
           under the same load, the baseline of every window;
  swaps    against the real `learner --algo sac` training and publishing every 10 updates (a swap about every
           second): the whole window, and the ticks that swapped weights in;
  storm    the actor's link runs through a TCP relay in this process that cuts every connection each second:
           sender and weight client reconnect, re-hello and resend, again and again;
  outage   the learner is killed (-9), stays down OUTAGE_S and comes back with --resume (torch's import and
           the replay's restore compete for the same two cores);
  full     the learner is stopped (SIGSTOP) until the actor's spool (--spool-max-mb 0.1) logs SPOOL FULL;
           then the window, while the actor keeps acting (--when-full drop: the pause mode would stop the
           robot on purpose, which is not jitter).
Windows are cut from both tick logs on CLOCK_MONOTONIC. Printed per window: p50, p99 and max period against
nominal, and p99 against the bare loop's p99 in the same window; the targets are p99 <= 1.2x nominal, or
<= 1.05x the bare loop's p99 where the box itself jitters past 1.2x. Asserts nothing about time; it reports.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from common.ports import free_port_pair
from common.timing import PeriodLog
from tests.faults.processes import ROOT, LearnerProcess

ROBOTS = ("limo_sim", "go2_sim", "g1_sim", "franka_sim", "rm65_sim")
OUTAGE_S = 10.0  # how long the killed learner stays down before its --resume
CUT_EVERY_S = 1.0  # the storm's period of cutting every connection
SPOOL_MB = 0.1
TARGET_NOMINAL, TARGET_BARE = 1.2, 1.05


class FlappingLink:
    """A TCP relay from two local ports (P, P + 1: transitions and weights) to the learner's; `cut()` closes
    every live connection on both sides, as a flapping network does, and ZeroMQ reconnects through it."""

    def __init__(self, learner_port: int) -> None:
        self.port = free_port_pair()
        self.cuts = 0
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._listeners = []
        for offset in (0, 1):
            listener = socket.create_server(("127.0.0.1", self.port + offset))
            listener.settimeout(0.2)  # the accept loop re-checks closing
            self._listeners.append(listener)
            threading.Thread(target=self._accept, args=(listener, learner_port + offset), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, set()
        for pair in pairs:
            for sock in pair:
                _close(sock)
        self.cuts += 1

    def close(self) -> None:
        self._closing.set()
        for listener in self._listeners:
            listener.close()
        self.cut()

    def _accept(self, listener: socket.socket, upstream_port: int) -> None:
        while not self._closing.is_set():
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", upstream_port), timeout=2.0)
            except OSError:  # the learner is down: the client sees its connection close, as without a relay
                _close(client)
                continue
            for sock in (client, upstream):
                sock.settimeout(None)
            with self._lock:
                self._pairs.add((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(1 << 16):
            sink.sendall(data)
    except OSError:
        pass
    _close(source)
    _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def learner_command(port: int, run_dir: Path, resume: bool) -> list[str]:
    """The real learner training SAC at its default network size, publishing every 10 updates."""
    run = ["--resume", str(run_dir)] if resume else ["--run-dir", str(run_dir)]
    return [sys.executable, "-m", "learner", "--algo", "sac", "--port", str(port), *run, "--metrics-port", "0",
            "--learning-starts", "100", "--publish-every", "10", "--checkpoint-every", "0", "--device", "cpu",
            "--threads", "1", "--final-eval", "0"]  # fmt: skip


def saved_sac_policy(robot: str, path: Path) -> Path:
    """An untrained SAC policy for `robot`'s twin, of the size the learner pushes, as `actor --policy` loads."""
    from actor.app import make_robot
    from common.protocol import Weights
    from learner.algorithms import config_from_overrides, config_to_dict, make_algorithm
    from learner.best_policy import Tally, save_weights

    spec = make_robot(robot, {}).spec
    algorithm = make_algorithm("sac", spec, {}, seed=0)
    tensors = {k: v.numpy() for k, v in algorithm.policy_state_dict().items()}
    config = json.dumps(config_to_dict(config_from_overrides("sac", {})))
    save_weights(Weights(1, "sac", config, spec.spec_hash, tensors), path, Tally(1))
    return path


class Actor:
    """The real `actor` CLI on a twin at time scale 1, logging every tick to `ticks`, its output to `log`."""

    def __init__(self, robot: str, work: Path, name: str, *args: str) -> None:
        self.ticks, self.log = work / f"{name}.ticks", work / f"{name}.log"
        command = [sys.executable, "-m", "actor", "--robot", robot, "--actor-id", name, "--no-console",
                   "--metrics-port", "0", "--period-log", str(self.ticks), *args]  # fmt: skip
        self._log = self.log.open("w")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env)  # fmt: skip

    def read(self) -> np.ndarray:
        return PeriodLog.read(str(self.ticks)) if self.ticks.exists() else np.zeros((0, 3))

    def connects(self) -> int:
        """Sessions the sender opened with the learner so far (its "connected to learner" log lines)."""
        return self.log.read_text(errors="replace").count("connected to learner")

    def wait_for(self, condition, timeout_s: float, what: str) -> float:
        """Poll until condition(self) holds; returns the monotonic time it did. Raises with the log's tail."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if condition(self):
                return time.monotonic()
            time.sleep(0.2)  # polling a file another process writes; the condition is the synchronisation
        raise RuntimeError(f"{what}: not within {timeout_s:.0f} s; actor log:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> np.ndarray:
        """SIGINT (the actor stops its robot and flushes its tick log), then every tick it logged."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        return self.read()


def measure_robot(robot: str, work: Path, seconds: float) -> dict:
    """All windows of one twin (module docstring); returns {window: figures} plus the nominal period.

    The bare loop runs the whole time beside the linked one, so each window compares the two under the same
    load on the box (the learner trains and restarts on the same cores here; on a lab it has its own)."""
    work.mkdir(parents=True, exist_ok=True)
    policy = saved_sac_policy(robot, work / "policy.npz")
    bare = Actor(robot, work, "bare", "--policy", str(policy), "--episodes", "100000")
    port = free_port_pair()
    learner = LearnerProcess(port, work / "run", command=learner_command)
    link = FlappingLink(port)
    actor = None
    windows = {}
    try:
        learner.wait_listening(300)
        actor = Actor(robot, work, "link", "--learner", f"127.0.0.1:{link.port}", "--spool", str(work / "spool"),
                      "--spool-max-mb", str(SPOOL_MB), "--when-full", "drop")  # fmt: skip
        start = actor.wait_for(lambda a: len(a.read()) and a.read()[-1, 2] >= 2, 300, "the learner's weights")
        time.sleep(seconds)  # the window being measured
        windows["swaps"] = (start, time.monotonic())

        start, connects = time.monotonic(), actor.connects()
        while time.monotonic() < start + seconds:
            link.cut()
            time.sleep(CUT_EVERY_S)  # the storm's rhythm, not a synchronisation
        windows["storm"] = (start, time.monotonic())
        sessions = {"storm": actor.connects() - connects}

        start, connects = time.monotonic(), actor.connects()
        learner.kill()
        time.sleep(OUTAGE_S)  # the learner stays dead this long
        learner = LearnerProcess(port, work / "run", resume=True, command=learner_command)
        learner.wait_listening(300)
        time.sleep(seconds / 2)  # reconnection and the resent backlog
        windows["outage"] = (start, time.monotonic())
        sessions["outage"] = actor.connects() - connects

        learner.process.send_signal(signal.SIGSTOP)
        start = actor.wait_for(lambda a: "SPOOL FULL" in a.log.read_text(errors="replace"), 600, "a full spool")
        time.sleep(seconds)
        windows["full"] = (start, time.monotonic())
        learner.process.send_signal(signal.SIGCONT)
    finally:
        link_ticks = actor.stop() if actor is not None else np.zeros((0, 3))
        bare_ticks = bare.stop()
        link.close()
        if learner.process.poll() is None:
            learner.process.send_signal(signal.SIGCONT)
            learner.terminate(120)
    nominal = 1.0 / _control_hz(robot)
    figures = {"nominal_s": nominal, "cuts": link.cuts}
    for name, window in windows.items():
        figures[name] = _window(link_ticks, window, nominal, _window(bare_ticks, window, nominal))
    figures["swaps"].update(_swap_ticks(link_ticks, windows["swaps"]))
    for name, count in sessions.items():
        figures[name]["sessions"] = count  # the reconnects the window caused: the storm's should be ~1 per cut
    return figures


def _control_hz(robot: str) -> float:
    from actor.app import make_robot

    return make_robot(robot, {}).spec.control_hz


def _window(ticks: np.ndarray, window: tuple[float, float], nominal: float, bare: dict | None = None) -> dict:
    """Period figures of the ticks inside `window`; with `bare` (the bare loop's figures of the same window),
    also the bare loop's p99 and max and the ratio of the p99s."""
    inside = ticks[(ticks[:, 0] >= window[0]) & (ticks[:, 0] <= window[1]), 1]
    if len(inside) == 0:
        return {"ticks": 0}
    p99 = float(np.percentile(inside, 99))
    out = {"ticks": int(len(inside)), "p50_s": float(np.percentile(inside, 50)), "p99_s": p99,
           "max_s": float(inside.max()), "p99_x_nominal": p99 / nominal}  # fmt: skip
    if bare and bare.get("ticks"):
        out.update(bare_p99_s=bare["p99_s"], bare_max_s=bare["max_s"], p99_x_bare=p99 / bare["p99_s"])
    return out


def _swap_ticks(ticks: np.ndarray, window: tuple[float, float]) -> dict:
    """The ticks whose acting policy version changed (the swap happened in that step)."""
    swapped = np.flatnonzero(np.diff(ticks[:, 2]) != 0) + 1
    swapped = swapped[(ticks[swapped, 0] >= window[0]) & (ticks[swapped, 0] <= window[1])]
    periods = ticks[swapped, 1]
    return {"swap_ticks": int(len(periods)), "swap_tick_max_s": float(periods.max()) if len(periods) else 0.0}


def table(results: dict) -> str:
    """The markdown table: one row per twin and window, the linked actor beside the bare loop."""
    rows = ["| twin | window | ticks | p50 ms | p99 ms | max ms | bare p99 ms | bare max ms | p99 / nominal | "
            "p99 / bare p99 | meets target |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for robot, figures in results.items():
        nominal = figures["nominal_s"]
        for name in ("swaps", "storm", "outage", "full"):
            w = figures.get(name, {})
            if not w.get("ticks") or "bare_p99_s" not in w:
                rows.append(f"| {robot} | {name} | {w.get('ticks', 0)} | - | - | - | - | - | - | - | - |")
                continue
            meets = w["p99_x_nominal"] <= TARGET_NOMINAL or (w["bare_p99_s"] / nominal > TARGET_NOMINAL
                                                              and w["p99_x_bare"] <= TARGET_BARE)  # fmt: skip
            extra = f" ({w['swap_ticks']} swaps, max {1e3 * w['swap_tick_max_s']:.0f} ms)" if name == "swaps" else ""
            extra += f" ({w['sessions']} new sessions)" if "sessions" in w else ""
            rows.append(f"| {robot} ({1 / nominal:g} Hz) | {name}{extra} | {w['ticks']} | {1e3 * w['p50_s']:.1f} | "
                        f"{1e3 * w['p99_s']:.1f} | {1e3 * w['max_s']:.1f} | {1e3 * w['bare_p99_s']:.1f} | "
                        f"{1e3 * w['bare_max_s']:.1f} | {w['p99_x_nominal']:.3f} | {w['p99_x_bare']:.3f} | "
                        f"{'yes' if meets else 'NO'} |")  # fmt: skip
    return "\n".join(rows)


def measure(robots: tuple[str, ...], seconds: float, work: Path) -> dict:
    results = {}
    for robot in robots:
        print(f"  {robot}: bare, swaps, storm, outage, full ({seconds:g} s windows)", flush=True)
        results[robot] = measure_robot(robot, work / robot, seconds)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--robots", default=",".join(ROBOTS), help="comma-separated twins")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each measured window")
    parser.add_argument("--out", default="", help="write control_period.json and .md here")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="tandem-period-") as tmp:
        results = measure(tuple(args.robots.split(",")), args.seconds, Path(tmp))
    report = table(results)
    print(report)
    print(f"load average (1 min) at start: {load:.2f}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "control_period.json").write_text(json.dumps({"load_at_start": load, "results": results}, indent=1))
        (out / "control_period.md").write_text(report + "\n")


if __name__ == "__main__":
    main()
