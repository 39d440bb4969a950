"""Items 2, 4 and 5 of issue 21 on the virtual cluster: tcp + CURVE between namespaces,
the allocation's end from a real short job, and each node's own view of cores and memory."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from odop.testing.cluster import Cluster, leftovers
from tests.cluster.conftest import job_env
from tests.cluster.jobs import sbatch

pytestmark = pytest.mark.timeout(180)

WRONG_KEY = '''
import sys, zmq
from odop.protocol import MsgType, encode, make
from pathlib import Path
from odop.protocol.keys import load_public
server_public, endpoint = sys.argv[1], sys.argv[2]
sock = zmq.Context.instance().socket(zmq.DEALER)
sock.curve_serverkey = load_public(Path(server_public))
sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()  # not the run's key
sock.connect(endpoint)
sock.send(encode(make(MsgType.STATUS)))
print("answer" if sock.poll(3000) else "no answer", flush=True)
'''

VIEW = '''
import json, time
from odop_obs.samplers.system import SystemSampler
s = SystemSampler()
time.sleep(0.2)
sample = s.sample(0.0, 0.2, {})
print(json.dumps({"cores": sample["cpu"]["ids"], "mem": sample["mem"]["total"]}))
'''


def test_nodes_have_their_own_name_address_and_cores(cluster: Cluster) -> None:
    for node in cluster.nodes:
        out = cluster.run(node.index, ["sh", "-c", "hostname; ip -o -4 addr show eth0; "
                                       "grep Cpus_allowed_list /proc/self/status"]).stdout
        assert out.startswith(node.name + "\n") and f"{node.addr}/24" in out
        assert out.split()[-1] == ",".join(map(str, node.cpus))
    assert any(line.startswith("netns odopc") for line in leftovers())


def test_tcp_curve_between_namespaces(cluster: Cluster, tcp_run: tuple[Path, str]) -> None:
    home, endpoint = tcp_run
    assert endpoint.startswith("tcp://odop1:"), endpoint
    env = job_env(ODOP_HOME=str(home))
    status = _wait_for_agent(cluster, env, "odop2")
    assert _agents(status) == ["odop2"], status
    # the CLI reaches the announced tcp endpoint, from either node
    for node in (1, 2):
        done = cluster.run(node, ["odop", "submit", "--run", "net", "--json", "nosuch"],
                           env=env, check=False)
        assert "no answer" not in done.stderr and "nosuch" in done.stdout + done.stderr, done
    public = home / "runs" / "net" / "keys" / "server.key"
    wrong = cluster.run(2, ["python", "-c", WRONG_KEY, str(public), endpoint], env=env)
    assert wrong.stdout.strip() == "no answer"
    after = _status(cluster, env)
    assert _agents(after) == ["odop2"], after  # no trace of the wrong key


def _status(cluster: Cluster, env: dict[str, str]) -> dict:
    done = cluster.run(1, ["odop", "status", "--run", "net", "--json"], env=env)
    return json.loads(done.stdout)


def _agents(status: dict) -> list[str]:
    return [c["node"] for c in status["components"] if c["role"] == "agent"]


def _wait_for_agent(cluster: Cluster, env: dict[str, str], node: str) -> dict:
    deadline = time.monotonic() + 30
    while True:
        status = _status(cluster, env)
        if node in _agents(status):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.5)


def test_allocation_end_from_the_controller(cluster: Cluster, tmp_path: Path) -> None:
    script = ("#!/bin/bash\n#SBATCH --time=1\n#SBATCH --signal=B:USR1@30\n"
              "env | grep -c -E '^SLURM_JOB_(END|START)_TIME=' || true\n"
              "python -c 'import time; from odop.launch.slurm import allocation; "
              "print(allocation().end - time.time())'\n")
    _, out = sbatch(cluster, tmp_path, script)
    count, remaining = out.split()[:2]
    assert count == "0"  # Slurm 22.05 does not say: odop asked squeue
    assert 0 < float(remaining) <= 60


def test_each_node_sees_its_own_cores_and_memory(cluster: Cluster, tmp_path: Path) -> None:
    for node in cluster.nodes:
        done = cluster.run(1, ["srun", "-N1", "-w", node.name, "python", "-c", VIEW],
                           env=cluster.env(job_env()), cwd=tmp_path)
        view = json.loads(done.stdout)
        assert view == {"cores": node.cpus, "mem": cluster.memory}, (node, view)
