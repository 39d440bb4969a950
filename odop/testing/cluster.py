"""A virtual cluster on one Linux machine, for odop's tests and for trying odop (root only).

Node k is a network namespace ``odopc<k>`` with its own host name ``odop<k>`` (a UTS
namespace, held open by a ``sleep`` process), its own address ``10.213.77.<k>/24`` on the
bridge ``odopbr0`` that only these namespaces use (the machine itself gets no address on
it), and its own cpuset and memory cgroup. The file system is shared, as ``$ODOP_HOME`` is
on a cluster. The host names are added to ``/etc/hosts`` between two marker lines. With
Slurm (the default), munged, slurmctld (on node 1) and one slurmd per node run from the
state folder (see :mod:`odop.testing.slurmd`).

    python -m odop.testing.cluster up --nodes 2      # one core each on a 2-core machine
    python -m odop.testing.cluster exec 1 -- sbatch job.sh
    python -m odop.testing.cluster down              # leaves nothing behind

``down`` removes everything the harness makes, by name, whether ``up`` finished or not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from odop.testing import slurmd
from odop.testing.slurmd import ClusterError

SUBNET = "10.213.77"
"""The private /24 of the cluster: node k is ``SUBNET.k``."""
BRIDGE = "odopbr0"
PREFIX = "odop"
"""Host names ``odop1``, ``odop2``...; namespaces ``odopc1``...; host-side veths ``odopv1``..."""
DEFAULT_STATE = Path("/tmp/odop-cluster")
HOSTS = Path("/etc/hosts")
MARK = "# odop virtual cluster"
CGROUP = Path("/sys/fs/cgroup")
TOOLS = ("ip", "nsenter", "unshare", "sleep")
MAX_NODES = 200


@dataclass
class Node:
    """One node: its host name, address (IPv4), cores and the pid holding its namespaces."""

    index: int
    cpus: list[int]
    holder: int = 0

    @property
    def name(self) -> str:
        return f"{PREFIX}{self.index}"

    @property
    def addr(self) -> str:
        return f"{SUBNET}.{self.index}"

    @property
    def netns(self) -> str:
        return f"{PREFIX}c{self.index}"


@dataclass
class Cluster:
    """A running virtual cluster, as saved in ``<state>/cluster.json``."""

    state: Path
    nodes: list[Node]
    memory: int
    """Each node's memory limit in bytes."""
    daemons: dict[str, int] = field(default_factory=dict)
    """Pids of the daemons started for it (munged, slurmctld, slurmd-<node>)."""
    slurm: bool = False

    def node(self, name_or_index: str | int) -> Node:
        """The node named ``odop<k>``, or number k (1-based)."""
        for node in self.nodes:
            if str(name_or_index) in (node.name, str(node.index)):
                return node
        raise ClusterError(f"no node {name_or_index!r}; nodes: "
                           f"{', '.join(n.name for n in self.nodes)} (or 1..{len(self.nodes)})")

    @property
    def slurm_conf(self) -> Path:
        return self.state / "slurm" / "slurm.conf"

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for commands on a node: ``SLURM_CONF`` names this cluster's Slurm."""
        env = dict(os.environ if base is None else base)
        if self.slurm:
            env["SLURM_CONF"] = str(self.slurm_conf)
        return env

    def argv(self, node: Node, command: Sequence[str]) -> list[str]:
        """``command`` run in ``node``'s network and UTS namespaces."""
        return ["nsenter", "-t", str(node.holder), "-n", "-u", "--", *command]

    def popen(self, node: str | int, command: Sequence[str], **kwargs: object
              ) -> subprocess.Popen[bytes]:
        """Start ``command`` on a node: its namespaces, its cgroups (cores, memory)."""
        target = self.node(node)
        kwargs.setdefault("env", self.env())
        return subprocess.Popen(self.argv(target, command),  # type: ignore[call-overload]
                                preexec_fn=lambda: join_cgroups(target.name), **kwargs)

    def run(self, node: str | int, command: Sequence[str], *, timeout: float = 60,
            check: bool = True, **kwargs: object) -> subprocess.CompletedProcess[str]:
        """Run ``command`` on a node and wait (text output captured unless redirected)."""
        kwargs.setdefault("capture_output", True)
        target = self.node(node)
        done = subprocess.run(self.argv(target, command), text=True, timeout=timeout,
                              env=kwargs.pop("env", self.env()),
                              preexec_fn=lambda: join_cgroups(target.name),
                              **kwargs)  # type: ignore[call-overload]
        if check and done.returncode:
            raise ClusterError(f"{' '.join(command)} on {target.name} exited "
                               f"{done.returncode}: {done.stderr or ''}")
        return done

    def save(self) -> None:
        data = asdict(self)
        data["state"] = str(self.state)
        (self.state / "cluster.json").write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, state: Path = DEFAULT_STATE) -> Cluster:
        """The cluster whose state is in ``state`` (ClusterError when none is up)."""
        try:
            data = json.loads((state / "cluster.json").read_text())
        except (OSError, ValueError) as exc:
            raise ClusterError(f"no virtual cluster is up in {state} ({exc})") from exc
        data["state"] = Path(data["state"])
        data["nodes"] = [Node(**n) for n in data["nodes"]]
        return cls(**data)


def unavailable() -> str | None:
    """Why the cluster cannot run on this machine, or None when it can."""
    if sys.platform != "linux":
        return "needs Linux (network namespaces, cgroups)"
    if os.geteuid() != 0:
        return "needs root (network namespaces, a bridge, cgroups)"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"missing commands: {', '.join(missing)} (Debian: iproute2, util-linux)"
    if not _cgroup_dirs("probe"):
        return f"no cpuset and memory cgroup controllers under {CGROUP}"
    probe = subprocess.run(["unshare", "--net", "--uts", "true"], capture_output=True, text=True)
    if probe.returncode:
        return f"cannot make network/UTS namespaces: {probe.stderr.strip()}"
    return None


def up(nodes: int, *, state: Path = DEFAULT_STATE, share_cores: bool = False,
       memory: int = 4 << 30, slurm: bool = True) -> Cluster:
    """Bring up ``nodes`` nodes (with Slurm); anything half made is removed on failure."""
    reason = unavailable()
    if reason:
        raise ClusterError(reason)
    if not 1 <= nodes <= MAX_NODES:
        raise ClusterError(f"--nodes {nodes}: allowed 1..{MAX_NODES}")
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < nodes and not share_cores:
        raise ClusterError(f"{nodes} nodes need {nodes} cores, this machine offers "
                           f"{len(cores)}; pass --share-cores to let nodes share them")
    down(state)
    state.mkdir(mode=0o700, parents=True)
    cluster = Cluster(state, [Node(k, _cores_of(k, nodes, cores, share_cores))
                              for k in range(1, nodes + 1)], memory)
    try:
        _make_network(cluster)
        for node in cluster.nodes:
            _make_cgroups(node, memory)
            node.holder = _hold(node)
        _write_hosts(cluster.nodes)
        cluster.save()
        if slurm:
            slurmd.start(cluster)
    except BaseException:
        down(state)
        raise
    return cluster


def _cores_of(k: int, nodes: int, cores: list[int], share: bool) -> list[int]:
    """Node k's cores: its own core(s) when there are enough, else all of them."""
    if share and len(cores) < nodes:
        return cores
    per = len(cores) // nodes
    return cores[(k - 1) * per:k * per]


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode:
        raise ClusterError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _make_network(cluster: Cluster) -> None:
    _ip("link", "add", BRIDGE, "type", "bridge")
    _ip("link", "set", BRIDGE, "up")
    for node in cluster.nodes:
        veth = f"{PREFIX}v{node.index}"
        _ip("netns", "add", node.netns)
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", node.netns)
        _ip("link", "set", veth, "master", BRIDGE, "up")
        _ip("-n", node.netns, "addr", "add", f"{node.addr}/24", "dev", "eth0")
        _ip("-n", node.netns, "link", "set", "eth0", "up")
        _ip("-n", node.netns, "link", "set", "lo", "up")


def _hold(node: Node) -> int:
    """A process in the node's network namespace and a new UTS namespace named after it."""
    proc = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{node.netns}", "unshare", "--uts", "sh", "-c",
         f"hostname {node.name} && exec sleep infinity"],
        start_new_session=True, preexec_fn=lambda: join_cgroups(node.name),
        stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while _uts_name(proc.pid) != node.name:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise ClusterError(f"the holder of {node.name} did not start (rc {proc.poll()})")
        time.sleep(0.01)
    return proc.pid


def _uts_name(pid: int) -> str | None:
    done = subprocess.run(["nsenter", "-t", str(pid), "-u", "hostname"], capture_output=True,
                          text=True)
    return done.stdout.strip() if done.returncode == 0 else None


# -- cgroups: v2 (one tree) or v1 (cpuset and memory hierarchies) -----------------------------
def _cgroup_dirs(name: str) -> list[Path]:
    """Where node ``name``'s cgroup lives: one folder (v2) or two (v1); [] when neither."""
    if (CGROUP / "cgroup.controllers").exists():
        return [CGROUP / "odop-cluster" / name]
    if (CGROUP / "cpuset").is_dir() and (CGROUP / "memory").is_dir():
        return [CGROUP / c / "odop-cluster" / name for c in ("cpuset", "memory")]
    return []


def _make_cgroups(node: Node, memory: int) -> None:
    cpus = ",".join(map(str, node.cpus))
    for path in _cgroup_dirs(node.name):
        parent = path.parent
        if parent.parent == CGROUP:  # v2: delegate cpuset and memory down to the nodes
            for level in (CGROUP, parent):
                level.mkdir(exist_ok=True)
                _write(level / "cgroup.subtree_control", "+cpuset +memory")
        elif parent.parent.name == "cpuset" and not parent.exists():  # v1: parent needs both
            parent.mkdir()
            for key in ("cpuset.cpus", "cpuset.mems"):
                _write(parent / key, (parent.parent / key).read_text().strip())
        parent.mkdir(exist_ok=True)
        path.mkdir(exist_ok=True)
        if (path / "cpuset.cpus").exists():
            _write(path / "cpuset.cpus", cpus)
            _write(path / "cpuset.mems", (path.parent / "cpuset.mems").read_text().strip()
                   or (path.parent / "cpuset.mems.effective").read_text().strip())
        for key in ("memory.max", "memory.limit_in_bytes"):
            if (path / key).exists():
                _write(path / key, str(memory))


def join_cgroups(name: str) -> None:
    """Move the calling process into node ``name``'s cgroups (its cores and memory)."""
    for path in _cgroup_dirs(name):
        _write(path / "cgroup.procs", str(os.getpid()))


def cgroup_pids(name: str) -> set[int]:
    """Every process in node ``name``'s cgroups, those below them included (the memory
    cgroups an agent's engine makes for its tasks)."""
    pids: set[int] = set()
    for path in _cgroup_dirs(name):
        for procs in path.rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                pids |= {int(p) for p in procs.read_text().split()}
    return pids


def _write(path: Path, text: str) -> None:
    path.write_text(text)


# -- /etc/hosts -------------------------------------------------------------------------------
def _write_hosts(nodes: list[Node]) -> None:
    lines = [f"{n.addr} {n.name} {MARK}" for n in nodes]
    kept = [ln for ln in HOSTS.read_text().splitlines() if not ln.endswith(MARK)]
    HOSTS.write_text("\n".join(kept + lines) + "\n")


def _clear_hosts() -> None:
    with contextlib.suppress(OSError):
        text = HOSTS.read_text()
        kept = [ln for ln in text.splitlines() if not ln.endswith(MARK)]
        if len(kept) != len(text.splitlines()):
            HOSTS.write_text("\n".join(kept) + "\n")


# -- tear-down --------------------------------------------------------------------------------
def down(state: Path = DEFAULT_STATE) -> list[str]:
    """Remove the cluster: daemons, every process left in its cgroups, namespaces, veths,
    bridge, cgroups, host names, state folder (keys, spools). Returns what it could not."""
    problems: list[str] = []
    with contextlib.suppress(ClusterError):
        cluster = Cluster.load(state)
        for pid in cluster.daemons.values():
            _kill(pid, signal.SIGTERM)
    names = _namespaces()
    for name in _node_names(names):
        _kill_cgroup(name, problems)
    for ns in names:
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
    subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True)
    for name in _node_names(names):
        for path in _cgroup_dirs(name):
            _rmdir(path, problems)
    for path in {p.parent for p in _cgroup_dirs("x")}:
        _rmdir(path, problems)
    _clear_hosts()
    shutil.rmtree(state, ignore_errors=True)
    return problems


def _namespaces() -> list[str]:
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    words = [line.split()[0] for line in done.stdout.splitlines() if line.strip()]
    return [w for w in words if w.startswith(f"{PREFIX}c") and w[len(PREFIX) + 1:].isdigit()]


def _node_names(namespaces: list[str]) -> set[str]:
    names = {f"{PREFIX}{ns[len(PREFIX) + 1:]}" for ns in namespaces}
    for path in _cgroup_dirs("x"):
        with contextlib.suppress(OSError):
            names |= {p.name for p in path.parent.iterdir() if p.is_dir()}
    return names


def _kill_cgroup(name: str, problems: list[str]) -> None:
    deadline = time.monotonic() + 10
    while pids := cgroup_pids(name):
        for pid in pids:
            _kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            problems.append(f"{name}: processes {sorted(pids)} would not die")
            return
        time.sleep(0.05)


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _rmdir(path: Path, problems: list[str]) -> None:
    """Remove a cgroup folder, the folders below it first (a task's engine makes some)."""
    if path.is_dir():
        for child in sorted((p for p in path.iterdir() if p.is_dir()), reverse=True):
            _rmdir(child, problems)
    deadline = time.monotonic() + 5
    while path.exists():
        try:
            path.rmdir()
        except OSError as exc:
            if time.monotonic() > deadline:
                problems.append(f"{path}: {exc}")
                return
            time.sleep(0.05)


def leftovers() -> list[str]:
    """What of a cluster exists on this machine (namespaces, bridge, cgroups, host names)."""
    found = [f"netns {ns}" for ns in _namespaces()]
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        found.append(f"bridge {BRIDGE}")
    found += [f"cgroup {p.parent}" for p in _cgroup_dirs("x") if p.parent.exists()]
    with contextlib.suppress(OSError):
        found += [f"{HOSTS}: {ln}" for ln in HOSTS.read_text().splitlines() if ln.endswith(MARK)]
    return found


# -- command line -----------------------------------------------------------------------------
def _parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    num, unit = (text[:-1], text[-1].upper()) if text[-1:].upper() in units else (text, "")
    if not num.isdigit():
        raise argparse.ArgumentTypeError(f"--memory {text!r}: allowed N, NK, NM or NG (bytes)")
    return int(num) * units.get(unit, 1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m odop.testing.cluster",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE,
                        help=f"state folder (keys, configuration, logs; {DEFAULT_STATE})")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="bring the cluster up (removing any earlier one)")
    p_up.add_argument("--nodes", type=int, default=2)
    p_up.add_argument("--share-cores", action="store_true",
                      help="more nodes than cores: every node gets every core")
    p_up.add_argument("--memory", type=_parse_size, default=4 << 30,
                      help="each node's memory limit (4G)")
    p_up.add_argument("--no-slurm", dest="slurm", action="store_false")
    sub.add_parser("down", help="remove the cluster and everything it made")
    p_exec = sub.add_parser("exec", help="run a command on a node")
    p_exec.add_argument("node", help="odop<k> or k")
    p_exec.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except ClusterError as exc:
        print(f"odop cluster: {exc}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.cmd == "up":
        cluster = up(args.nodes, state=args.state, share_cores=args.share_cores,
                     memory=args.memory, slurm=args.slurm)
        for node in cluster.nodes:
            print(f"{node.name} {node.addr} cores {node.cpus}")
        return 0
    if args.cmd == "down":
        problems = down(args.state)
        for line in problems:
            print(f"odop cluster: left behind: {line}", file=sys.stderr)
        return 1 if problems else 0
    cluster = Cluster.load(args.state)
    node = cluster.node(args.node)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise ClusterError("exec: no command given (exec NODE -- COMMAND...)")
    join_cgroups(node.name)
    os.execvpe("nsenter", cluster.argv(node, command), cluster.env())


if __name__ == "__main__":
    sys.exit(main())
