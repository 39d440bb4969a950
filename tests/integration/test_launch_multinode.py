"""Two agents with distinct node ids reach a tcp:// scheduler through CURVE; a wrong key
is refused (no reply, no trace in the database)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from odop.launch.client import Client
from odop.protocol import MsgType, keys, new_id, transport
from odop.tasks.loader import load_task_folder
from tests.conftest import child_env
from tests.integration.helpers import components, executions, wait_for

pytestmark = pytest.mark.slow

TASK = '''
import os, time
def where(out):
    time.sleep(0.3)
    with open(out, "w") as fh:
        fh.write(os.environ.get("ODOP_EXECUTION", "?"))
'''


def _odop(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "odop", *args], env=env or child_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def tcp_run(tmp_path: Path, odop_home: Path) -> Iterator[tuple[Path, str, list]]:
    procs = [_odop("scheduler", "--run", "mn", "--bind", "tcp://127.0.0.1:*")]
    run_dir = odop_home / "runs" / "mn"
    wait_for(lambda: transport.announced(run_dir) is not None, 20, "the endpoint file")
    endpoint = transport.announced(run_dir)
    assert endpoint is not None and endpoint.startswith("tcp://127.0.0.1:")
    transport.use_run(run_dir)
    try:
        yield run_dir, endpoint, procs
    finally:
        transport.use_run(None)
        for proc in procs:
            proc.kill()
            proc.wait(10)


def _declare(client: Client, tmp_path: Path) -> None:
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "wheretask.py").write_text(TASK)
    (folder / "where.json").write_text(json.dumps(
        {"name": "where", "function": "wheretask:where", "cpus": 1}))
    specs = load_task_folder(str(folder))
    client.send(MsgType.DECLARE, track=True, tasks=[s.to_dict() for s in specs.values()])
    assert client.flush(10)


def test_two_nodes_over_curve(tcp_run: tuple[Path, str, list], tmp_path: Path) -> None:
    run_dir, endpoint, procs = tcp_run
    secret = keys.RunKeys.of(run_dir).server_secret
    assert secret.stat().st_mode & 0o777 == 0o600
    for node, core in (("a", "0"), ("b", "1")):
        procs.append(_odop("agent", "--run", str(run_dir), "--node", node, "--cores", core,
                           "--interval", "0.2"))
    client = Client(endpoint)
    try:
        _declare(client, tmp_path)
        wait_for(lambda: {c["node"] for c in components(run_dir) if c["role"] == "agent"}
                 == {"a", "b"}, 30, "both agents to say hello")
        for i in range(6):
            client.submit(new_id(), "where", {"out": str(tmp_path / f"o{i}")})
        assert client.flush(10)
        reply = client.request(MsgType.SIM_END, 60, rank=0)
    finally:
        client.close()
    assert reply is not None and reply["done"] == 6, reply
    rows = executions(run_dir)
    assert {r["node"] for r in rows} == {"a", "b"}
    assert all(r["cores"] == ([0] if r["node"] == "a" else [1]) for r in rows)


def test_wrong_key_is_refused(tcp_run: tuple[Path, str, list], tmp_path: Path) -> None:
    run_dir, endpoint, procs = tcp_run
    rogue = tmp_path / "rogue.key_secret"
    keys.write_certificate(rogue, *zmq.curve_keypair())
    env = child_env(ODOP_CURVE_KEY=str(rogue))
    agent = _odop("agent", "--run", str(run_dir), "--node", "rogue", "--interval", "0.2",
                  env=env)
    procs.append(agent)
    os.environ[keys.CLIENT_KEY_ENV] = str(rogue)
    try:
        client = Client(endpoint)
        reply = client.request(MsgType.STATUS, 3.0)
        client.close()
    finally:
        del os.environ[keys.CLIENT_KEY_ENV]
    assert reply is None, "a client with a foreign key got an answer"
    good = Client(endpoint)
    try:
        status = good.request(MsgType.STATUS, 10.0)
    finally:
        good.close()
    assert status is not None and "rogue" not in status["body"]["nodes"]
    assert agent.poll() is None, "the refused agent keeps trying; it must not crash"
    assert not [c for c in components(run_dir) if c["node"] == "rogue"]
    assert executions(run_dir) == []
