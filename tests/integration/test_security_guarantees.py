"""The security guarantees of docs/security.md: private run folder and socket, no pickle on
the wire, task code only from declared places, secrets private and never logged."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
import zmq

from odop.errors import ProtocolError
from odop.paths import RunPaths
from odop.protocol import VERSION, MsgType, decode, encode, make, validate
from odop.store.executions import RunStore
from tests.conftest import REPO, child_env
from tests.integration.helpers import agent_behind_router

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def live_run(tmp_path: Path, odop_home: Path) -> Iterator[tuple[RunPaths, Path]]:
    """A run folder with a live scheduler: (paths, the scheduler's log file)."""
    odop_home.mkdir(parents=True, exist_ok=True)
    paths = RunPaths(tmp_path / "runs" / "sec").create()
    RunStore(paths.db).close()
    log = tmp_path / "scheduler.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "odop", "scheduler", "--run",
                                 str(paths.root)], env=child_env(ODOP_HOME=str(odop_home)),
                                stderr=fh)
    sock_file = Path(paths.scheduler_endpoint.removeprefix("ipc://"))
    end = time.monotonic() + 20
    while not sock_file.exists() and time.monotonic() < end:
        time.sleep(0.05)
    yield paths, log
    proc.terminate()
    proc.wait(10)


# -- files -------------------------------------------------------------------------------
def test_run_folder_is_private_and_holds_the_socket(live_run: tuple[RunPaths, Path]) -> None:
    paths, _ = live_run
    assert _mode(paths.root) == 0o700
    for sub in (paths.logs, paths.samples, paths.root / "tasks"):
        assert _mode(sub) == 0o700, sub
    sock_file = Path(paths.scheduler_endpoint.removeprefix("ipc://"))
    assert sock_file.is_socket()
    assert sock_file.parent == paths.root


def test_deep_run_folder_socket_moves_to_a_private_folder(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60) / "run"
    endpoint = RunPaths(deep).create().scheduler_endpoint
    folder = Path(endpoint.removeprefix("ipc://")).parent
    assert folder != deep and _mode(folder) == 0o700 and folder.stat().st_uid == deep.stat().st_uid


# -- no pickle ---------------------------------------------------------------------------
class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pickled!",))


@pytest.mark.parametrize("value", [_Evil(), object(), {1, 2}, b"x".decode, Path("/x")],
                         ids=["reduce", "object", "set", "function", "path"])
def test_codec_refuses_python_objects(value: object) -> None:
    with pytest.raises((TypeError, ProtocolError)):
        encode({"v": VERSION, "type": "status", "id": "x", "obj": value})


def test_decoder_never_unpickles() -> None:
    import pickle

    payload = pickle.dumps(_Evil())
    for data in (payload, msgpack.packb(msgpack.ExtType(1, payload)),
                 msgpack.packb({"v": VERSION, "type": "status", "id": "x",
                                "o": msgpack.ExtType(99, payload)})):
        with pytest.raises(ProtocolError):
            validate(decode(data))


def test_no_pickle_in_odop_sources() -> None:
    pattern = re.compile(r"^\s*(import|from)\s+(pickle|cPickle|dill|cloudpickle|marshal|shelve)\b"
                         r"|\b(pickle|marshal)\.loads?\(", re.M)
    hits = [str(p.relative_to(REPO)) for p in sorted((REPO / "odop").rglob("*.py"))
            + sorted((REPO / "odop_obs").rglob("*.py")) if pattern.search(p.read_text())]
    assert hits == []


# -- task code only from declared places -------------------------------------------------
@pytest.fixture
def fake_scheduler_and_agent(tmp_path: Path, odop_home: Path
                             ) -> Iterator[tuple[zmq.Socket, bytes, Path]]:
    """A real agent whose 'scheduler' is a ROUTER bound here: (router, identity, tmp)."""
    odop_home.mkdir(parents=True, exist_ok=True)
    paths = RunPaths(tmp_path / "runs" / "sec").create()
    RunStore(paths.db).close()
    with agent_behind_router(paths, odop_home, tmp_path / "agent.log") as (router, ident, _):
        yield router, ident, tmp_path


def _start_and_wait(router: zmq.Socket, ident: bytes, spec: dict[str, object],
                    marker: Path) -> str:
    """Send START for ``spec``; wait for its EXITED report; return its reason."""
    router.send_multipart([ident, encode(make(MsgType.START, execution="e1", spec=spec,
                                              args={}, cores=[0], attempt=0))])
    end = time.monotonic() + 20
    while time.monotonic() < end:
        if router.poll(200):
            mtype, msg = validate(decode(router.recv_multipart()[1]))
            if mtype is MsgType.EXITED and msg["execution"] == "e1":
                router.send_multipart([ident, encode(make(MsgType.ACK, ref=msg["id"]))])
                return str(msg["reason"])
    raise AssertionError("no EXITED report")


def test_agent_refuses_python_target_outside_declared_tasks(
        fake_scheduler_and_agent: tuple[zmq.Socket, bytes, Path]) -> None:
    router, ident, tmp = fake_scheduler_and_agent
    marker = tmp / "pwned"
    evil = tmp / "elsewhere" / "evil.py"
    evil.parent.mkdir()
    evil.write_text(f"def run():\n    open({str(marker)!r}, 'w').write('x')\n")
    _start_and_wait(router, ident, {"kind": "python", "target": f"{evil}:run"}, marker)
    assert not marker.exists()


def test_agent_refuses_executable_outside_allowed_folders(
        fake_scheduler_and_agent: tuple[zmq.Socket, bytes, Path]) -> None:
    router, ident, tmp = fake_scheduler_and_agent
    marker = tmp / "pwned"
    _start_and_wait(router, ident, {"kind": "executable", "target": "/usr/bin/touch",
                                    "argv": [str(marker)]}, marker)
    assert not marker.exists()


# -- secrets -----------------------------------------------------------------------------
def _secrets(root: Path) -> list[str]:
    from odop.protocol.keys import RunKeys

    keys = RunKeys.of(root)
    found = []
    for path in (keys.server_secret, keys.client_secret):
        found += re.findall(r'secret-key = "([^"]+)"', path.read_text())
    return found


def test_curve_secrets_are_private(live_run: tuple[RunPaths, Path]) -> None:
    pytest.importorskip("odop.protocol.keys")
    from odop.protocol.keys import RunKeys

    paths, _ = live_run
    keys = RunKeys.of(paths.root)
    assert _mode(keys.folder) == 0o700 and _mode(keys.authorized) == 0o700
    assert _mode(keys.server_secret) == 0o600 and _mode(keys.client_secret) == 0o600
    assert len(_secrets(paths.root)) == 2


def test_curve_secret_with_loose_mode_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("odop.protocol.keys")
    from odop.protocol.keys import CurveKeyError, generate, load_pair

    keys = generate(RunPaths(tmp_path / "run").create().root)
    keys.client_secret.chmod(0o644)
    with pytest.raises(CurveKeyError, match="0600"):
        load_pair(keys.client_secret)


def test_secrets_never_logged(live_run: tuple[RunPaths, Path]) -> None:
    pytest.importorskip("odop.protocol.keys")
    paths, log = live_run
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(paths.scheduler_endpoint)
    sock.send(b"\xc1")  # makes the scheduler log a warning
    sock.send(encode(make(MsgType.STATUS)))
    assert sock.poll(10_000)
    time.sleep(0.3)
    secrets = _secrets(paths.root)
    texts = [log.read_text(errors="replace")]
    texts += [p.read_text(errors="replace") for p in paths.root.rglob("*")
              if p.is_file() and "keys" not in p.relative_to(paths.root).parts
              and p.suffix in ("", ".log", ".txt", ".jsonl", ".json")]
    assert "invalid message" in texts[0]
    for secret in secrets:
        assert all(secret not in text for text in texts)
