"""Chaos: SIGKILL the scheduler and the agent (with its observer) of a live run, again and
again, and check that no execution is lost or run twice without a recorded retry.

A simulation process (one rank: ``odop.start``, a heat stencil whose final field gives a
checksum, a few submissions per step, ``odop.stop``) runs with odop's keepers, which
respawn a dead scheduler or agent at the next ``odop.submit``. Meanwhile this script, every
``--gap`` seconds (random within the range), SIGKILLs one of them and waits for the
keeper's replacement, for ``--rounds`` rounds (a keeper respawns at most
``odop.launch.failopen.MAX_RESPAWNS`` times, so rounds are split between the two roles).
The simulation keeps submitting until the last round is over, then stops.

Each task appends its execution id to ``ran.log`` (O_APPEND) on entry, sleeps a moment,
and writes ``out/<key>.out`` (the submission's own key) atomically. Afterwards:

- ``lost``: submissions with no row, a non-terminal state, or no output file;
- ``duplicated``: executions that ran more often than ``attempt + 1`` (a rerun is fine
  only when the run's database records it as a retry);
- ``retried``: executions with ``attempt > 0``;
- ``checksum_ok``: the simulation's checksum equals that of an undisturbed run (same
  steps, no odop), and every output holds the value expected for its key.

Wrapped rounds (``--wrapped N``): N runs of ``odop run --tasks DIR -- PROGRAM``, where an
unchanged program (no odop import) renames ``--files`` snapshots into place and a file
trigger copies each; in every round one SIGKILL (scheduler and agent in turn) lands within
the last second of the program, or just after it, while the drain begins. Each round must
end with every snapshot processed, ``odop run`` exiting 0 and an account with nothing
unaccounted; every round is listed.

Usage: python benchmarks/chaos.py [--json] [--rounds 20] [--seed 1] [--wrapped 10]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
ROLES = {"scheduler": "odop scheduler", "agent": "odop agent"}
TERMINAL = {"done", "failed", "cancelled", "skipped"}

TASK = '''
import hashlib, os, time

def work(key, out, log):
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, (os.environ["ODOP_EXECUTION"] + " " + key + "\\n").encode())
    os.close(fd)
    value = hashlib.sha256(key.encode()).hexdigest()
    time.sleep(0.05 + int(value[:2], 16) / 255 * 0.25)
    tmp = os.path.join(out, "." + key + "." + str(os.getpid()))
    with open(tmp, "w") as fh:
        fh.write(value)
    os.replace(tmp, os.path.join(out, key + ".out"))
'''
"""The task, in a module of its own: a worker imports it without numpy (cheap)."""

SIM = '''
import hashlib, json, os, sys, time
import numpy as np
import odop
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chaostask import work
odop.task(name="work", time="10s", cpus=1)(work)

def heat(steps):
    u = np.zeros((64, 64)); u[24:40, 24:40] = 1.0
    for _ in range(steps):
        u = u + 0.1 * (np.roll(u, 1, 0) + np.roll(u, -1, 0) + np.roll(u, 1, 1)
                       + np.roll(u, -1, 1) - 4 * u)
        yield u

if __name__ == "__main__":
    a = json.loads(sys.argv[1])
    if a["odop"]:
        odop.start(run_name="chaos", config=a["config"])
    ids = open(a["ids"], "a")
    def submit(key):
        ids.write(key + " " + odop.submit("work", key=key, out=a["out"], log=a["log"]) + "\\n")
        ids.flush()
    for s, u in enumerate(heat(a["steps"])):
        for j in range(a["per_step"] if a["odop"] else 0):
            submit(f"s{s:04d}-{j}")
        time.sleep(a["pace"] if a["odop"] else 0)
    n = 0
    while a["odop"] and not os.path.exists(a["go"]) and n < a["max_extra"]:
        submit(f"x{n:04d}")
        n += 1
        time.sleep(a["pace"] / a["per_step"])
    open(a["stopping"], "w").close()
    summary = odop.stop() if a["odop"] else {}
    print(json.dumps({"checksum": hashlib.sha256(u.tobytes()).hexdigest(),
                      "summary": summary}), flush=True)
'''


@dataclass
class Setup:
    """One chaos run's parameters and folder."""

    folder: Path
    rounds: int = 20
    steps: int = 50
    per_step: int = 3
    pace_s: float = 0.6
    gap_s: tuple[float, float] = (1.0, 3.0)
    seed: int = 1
    interval_s: float = 0.5
    drain_s: float = 240.0
    both: bool = False
    kills: dict[str, int] = field(default_factory=lambda: {"scheduler": 0, "agent": 0})

    def args(self, with_odop: bool) -> dict[str, Any]:
        f = self.folder
        config = {"sample_interval_s": self.interval_s, "drain_timeout_s": self.drain_s,
                  "busy_threshold_pct": 100.0}  # others' load must not starve the run
        return {"odop": with_odop, "config": config, "ids": str(f / "ids.txt"),
                "out": str(f / "out"), "log": str(f / "ran.log"), "steps": self.steps,
                "per_step": self.per_step, "pace": self.pace_s, "go": str(f / "go"),
                "stopping": str(f / "stopping"), "max_extra": 2000}


def launch(setup: Setup, with_odop: bool) -> subprocess.Popen:
    """Start the simulation script; ODOP_HOME is ``<folder>/home``."""
    (setup.folder / "out").mkdir(exist_ok=True)
    (setup.folder / "sim.py").write_text(SIM)
    (setup.folder / "chaostask.py").write_text(TASK)
    env = dict(os.environ, ODOP_HOME=str(setup.folder / "home"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    argv = [sys.executable, "sim.py", json.dumps(setup.args(with_odop))]
    return subprocess.Popen(argv, cwd=setup.folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def daemon_pid(sim: psutil.Process, role: str) -> int | None:
    """Pid of the live ``role`` process the simulation's keeper started, if any."""
    try:
        children = sim.children()
    except psutil.Error:
        return None
    for child in children:
        try:
            if ROLES[role] in " ".join(child.cmdline()) and child.status() != "zombie":
                return child.pid
        except psutil.Error:
            continue
    return None


def wait_daemon(sim: psutil.Process, role: str, not_pid: int | None, timeout_s: float) -> int:
    """Wait for a live ``role`` process other than ``not_pid``; its pid (0 on timeout)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        pid = daemon_pid(sim, role)
        if pid is not None and pid != not_pid:
            return pid
        time.sleep(0.05)
    return 0


def victims(setup: Setup, rng: random.Random) -> list[tuple[str, ...]]:
    """The roles killed in each round: one at a time, split evenly (a keeper respawns at
    most MAX_RESPAWNS times), or both at once with ``setup.both``."""
    from odop.launch.failopen import MAX_RESPAWNS

    if setup.both:
        return [tuple(ROLES)] * min(setup.rounds, MAX_RESPAWNS)
    rounds = min(setup.rounds, 2 * MAX_RESPAWNS)
    order: list[tuple[str, ...]] = [("scheduler",)] * (rounds // 2)
    order += [("agent",)] * (rounds - rounds // 2)
    rng.shuffle(order)
    return order


def kill_rounds(setup: Setup, proc: subprocess.Popen) -> list[dict[str, Any]]:
    """SIGKILL scheduler/agent at random moments; each round waits for the respawn."""
    rng = random.Random(setup.seed)
    sim = psutil.Process(proc.pid)
    for role in ROLES:
        if not wait_daemon(sim, role, None, 60):
            raise SystemExit(f"no {role} came up in 60 s")
    log = []
    for roles in victims(setup, rng):
        time.sleep(rng.uniform(*setup.gap_s))
        pids = {role: daemon_pid(sim, role) for role in roles}
        if proc.poll() is not None or None in pids.values():
            break
        for role, pid in pids.items():
            os.kill(pid, signal.SIGKILL)  # type: ignore[arg-type]
            setup.kills[role] += 1
        t0 = time.monotonic()
        back = all(wait_daemon(sim, role, pid, 30) for role, pid in pids.items())
        log.append({"roles": roles, "respawn_s": round(time.monotonic() - t0, 2),
                    "back": back})
        if not back:
            break
    (setup.folder / "go").touch()
    return log


def audit(run_dir: Path, ids_path: Path, log_path: Path, out_dir: Path) -> dict[str, Any]:
    """Lost, duplicated and retried executions of a run (see the module docstring)."""
    submitted = dict(line.split()[::-1] for line in ids_path.read_text().splitlines() if line)
    db = sqlite3.connect(f"file:{run_dir}/odop.db?mode=ro", uri=True)
    rows = {r[0]: (r[1], r[2]) for r in db.execute("SELECT id, state, attempt FROM executions")}
    done_twice = db.execute("SELECT COUNT(*) FROM (SELECT execution FROM events WHERE "
                            "state='done' GROUP BY execution HAVING COUNT(*) > 1)").fetchone()[0]
    db.close()
    runs = collections.Counter(line.split()[0] for line in _lines(log_path))
    lost = {e for e, key in submitted.items()
            if e not in rows or rows[e][0] not in TERMINAL or not (out_dir / f"{key}.out").exists()}
    duplicated = {e for e, n in runs.items() if n > rows.get(e, ("", 0))[1] + 1}
    wrong = [k for k in submitted.values() if (out_dir / f"{k}.out").exists()
             and (out_dir / f"{k}.out").read_text() != hashlib.sha256(k.encode()).hexdigest()]
    states = collections.Counter(rows[e][0] for e in submitted if e in rows)
    return {"executions": len(submitted), "lost": len(lost), "duplicated": len(duplicated),
            "retried": sum(1 for e in submitted if e in rows and rows[e][1] > 0),
            "runs": sum(runs.values()), "states": dict(states), "done_twice": done_twice,
            "invented": len(set(rows) - set(submitted)), "wrong_outputs": len(wrong),
            "lost_ids": sorted(lost)[:10], "duplicated_ids": sorted(duplicated)[:10]}


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def leftovers(folder: Path) -> list[int]:
    """odop processes of this run still alive after the simulation ended."""
    home = str(folder / "home")
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "environ"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
            env = proc.info["environ"] or {}
        except psutil.Error:
            continue
        if "odop" in cmd and env.get("ODOP_HOME") == home and proc.pid != os.getpid():
            found.append(proc.pid)
    return found


def run_chaos(setup: Setup, timeout_s: float = 600.0) -> dict[str, Any]:
    """The undisturbed reference, then the chaos run; the JSON summary."""
    reference = Setup(setup.folder / "ref", steps=setup.steps)
    reference.folder.mkdir(parents=True, exist_ok=True)
    ref = launch(reference, False)
    ref_out, ref_err = ref.communicate(timeout=120)
    if ref.returncode != 0:
        raise SystemExit(f"reference run failed:\n{ref_err[-2000:]}")
    expected = json.loads(ref_out.splitlines()[-1])["checksum"]
    t0 = time.monotonic()
    proc = launch(setup, True)
    try:
        rounds = kill_rounds(setup, proc)
        out, err = proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
    elapsed = time.monotonic() - t0
    time.sleep(1.0)
    last = json.loads(out.splitlines()[-1]) if out.strip() else {}
    found = audit(setup.folder / "home" / "runs" / "chaos", setup.folder / "ids.txt",
                  setup.folder / "ran.log", setup.folder / "out")
    return {"rounds": len(rounds), "kills": dict(setup.kills), **found,
            "checksum_ok": last.get("checksum") == expected and found["wrong_outputs"] == 0,
            "sim_exit": proc.returncode, "summary": last.get("summary"),
            "max_respawn_s": max((r["respawn_s"] for r in rounds), default=None),
            "leftover_processes": len(leftovers(setup.folder)), "wall_s": round(elapsed, 1),
            "stderr_tail": err[-1500:] if proc.returncode else ""}


PROGRAM = '''
import os, sys, time
out, n, pace = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
for i in range(n):
    with open(os.path.join(out, f".s{i}.tmp"), "w") as fh:
        fh.write(str(i) * 100)
    os.replace(os.path.join(out, f".s{i}.tmp"), os.path.join(out, f"s{i:03d}.snap"))
    if i == n - 1:
        open(os.path.join(out, "..", "ending"), "w").close()
    time.sleep(pace)
'''
"""The wrapped program: ``ending`` marks its last ``pace`` seconds."""


def wrapped_round(folder: Path, role: str, rng: random.Random, files: int = 8,
                  pace_s: float = 0.25) -> dict[str, Any]:
    """One ``odop run`` whose ``role`` is SIGKILLed near the program's end (see above)."""
    data, tasks = folder / "data", folder / "tasks"
    data.mkdir(parents=True)
    tasks.mkdir()
    (folder / "prog.py").write_text(PROGRAM)
    (tasks / "copy.json").write_text(json.dumps({
        "name": "copy", "program": "/bin/sh", "argv": ["-c", "sleep 0.2; cp {path} {path}.out"],
        "trigger": {"file": f"{data}/*.snap"}}))
    env = dict(os.environ, ODOP_HOME=str(folder / "home"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    argv = [sys.executable, "-m", "odop", "run", "--tasks", str(tasks), "--json", "--",
            sys.executable, str(folder / "prog.py"), str(data), str(files), str(pace_s)]
    proc = subprocess.Popen(argv, cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    killed_at = _kill_near_end(proc, folder / "ending", role, rng.uniform(0.0, 1.2 * pace_s))
    out, err = proc.communicate(timeout=120)
    summary = json.loads(out) if out.strip() else {}
    account = summary.get("account") or {}
    missed = [p.name for p in sorted(data.glob("*.snap")) if not Path(f"{p}.out").exists()]
    return {"role": role, "killed_s_after_ending": killed_at, "exit": proc.returncode,
            "missed": len(missed), "done": account.get("done"),
            "unaccounted": account.get("unaccounted"), "stderr_tail": err[-800:] if missed
            or proc.returncode else ""}


def _kill_near_end(proc: subprocess.Popen, ending: Path, role: str,
                   delay_s: float) -> float | None:
    """SIGKILL ``role`` ``delay_s`` after the program marked its last moment; the delay
    actually used (None when the role could not be found)."""
    sim = psutil.Process(proc.pid)
    end = time.monotonic() + 60
    while not ending.exists() and time.monotonic() < end and proc.poll() is None:
        time.sleep(0.01)
    t0 = time.monotonic()
    time.sleep(delay_s)
    pid = daemon_pid(sim, role)
    if pid is None:
        return None
    os.kill(pid, signal.SIGKILL)
    return round(time.monotonic() - t0, 3)


def run_wrapped(folder: Path, rounds: int, seed: int) -> dict[str, Any]:
    """``rounds`` wrapped rounds, the scheduler and the agent killed in turn."""
    rng = random.Random(seed)
    listed = [wrapped_round(folder / f"w{i}", ("scheduler", "agent")[i % 2], rng)
              for i in range(rounds)]
    return {"wrapped_rounds": listed, "wrapped_missed": sum(r["missed"] for r in listed),
            "wrapped_unaccounted": sum(r["unaccounted"] or 0 for r in listed),
            "wrapped_failed_exits": sum(1 for r in listed if r["exit"] != 0),
            "wrapped_not_killed": sum(1 for r in listed if r["killed_s_after_ending"] is None)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--both", action="store_true",
                        help="kill scheduler and agent together each round (10 rounds at most)")
    parser.add_argument("--wrapped", type=int, default=10,
                        help="wrapped-mode rounds with file triggers (0: none)")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="odop-chaos-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        result = run_chaos(Setup(folder, rounds=args.rounds, seed=args.seed, both=args.both))
        result.update(run_wrapped(folder, args.wrapped, args.seed) if args.wrapped else {})
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:22s} {value}")
    ok = result["lost"] == 0 and result["duplicated"] == 0 and result["checksum_ok"]
    ok = ok and not any(result.get(k) for k in ("wrapped_missed", "wrapped_unaccounted",
                                                 "wrapped_failed_exits"))
    sys.exit(0 if ok and result["rounds"] >= min(args.rounds, 10 if args.both else 20) else 1)


if __name__ == "__main__":
    main()
