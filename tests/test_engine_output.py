"""A task cannot fill the run folder (issue 17): each execution's stdout and stderr keep
their first and last half of ``output_max_bytes``, the cut is noted in the file and in the
exit record. Real tasks on both start paths, real files."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from odop.engine.engine import Engine
from odop.engine.output import SLACK, CappedFile
from tests.conftest import wait_exit

TASKS = '''
import os, sys, time
def endless():
    """Numbered 1 KiB lines on stdout, one write each, without end; a line on stderr."""
    os.write(2, b"started\\n")
    n = 0
    while True:
        os.write(1, b"%09d " % n + b"x" * 1013 + b"\\n")
        n += 1
def burst(mib):
    """``mib`` MiB on stdout at once, then quiet."""
    line = b"y" * 1023 + b"\\n"
    for _ in range(mib * 1024):
        os.write(1, line)
    time.sleep(60)
'''
BOUND = 2**20  # bytes kept per file: 512 KiB head, 512 KiB tail
LINE = 1024


@pytest.fixture(params=["forked", "fresh"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    (tmp_path / "out.py").write_text(TASKS)
    forked = request.param == "forked"
    eng = Engine(tmp_path / "run", grace_s=0.5, cwd=str(tmp_path), fork_server=forked,
                 cgroups=None, output_max_bytes=BOUND)
    if forked:
        assert eng.server is not None and eng.server.wait_ready()
    yield eng
    eng.stop_all("test over", wait_s=0.5)
    eng.close()


def spec(tmp_path: Path, func: str, **kw: object) -> dict:
    return {"kind": "python", "target": f"{tmp_path}/out.py:{func}", **kw}




def test_endless_output_is_cut_at_its_bound(engine: Engine, tmp_path: Path) -> None:
    engine.start("loud", spec(tmp_path, "endless", time_limit_s=2.0), {}, [0])
    result = wait_exit(engine)
    assert result.reason == "time limit exceeded"
    data = (tmp_path / "run/tasks/loud/stdout").read_bytes()
    head, note, tail = split(data)
    assert len(head) == BOUND // 2 and head.startswith(b"000000000 ")
    assert 0 < len(tail) <= BOUND // 2 and tail.endswith(b"\n")  # one write per line
    written = (int(tail.rsplit(b"\n", 2)[-2][:9]) + 1) * LINE  # the last line's number
    assert result.output_cut_bytes == written - len(head) - len(tail) > 10 * BOUND
    assert note == (f"[odop: {result.output_cut_bytes} bytes of stdout cut here; kept the "
                    f"first {len(head)} and the last {len(tail)} bytes "
                    "(output_max_bytes)]").encode()
    assert (tmp_path / "run/tasks/loud/stderr").read_bytes() == b"started\n"  # not cut
    assert du(tmp_path / "run") < 3 * BOUND


def test_a_burst_is_cut_while_the_task_runs(engine: Engine, tmp_path: Path) -> None:
    """Once the task is quiet, the next look leaves the file within head + tail + SLACK
    on disk, although it runs on."""
    proc = engine.start("burst", spec(tmp_path, "burst"), {"mib": 40}, [0])
    stdout = tmp_path / "run/tasks/burst/stdout"
    end = time.monotonic() + 60
    while stdout.stat().st_size < 40 * 2**20 or du(stdout) > BOUND + SLACK + 2**16:
        assert time.monotonic() < end, (stdout.stat().st_size, du(stdout))
        engine.enforce()
        engine.reap()
        time.sleep(0.05)
    assert proc.execution in engine.tasks  # still running
    result = engine.stop_all("test over")[0]
    assert result.output_cut_bytes == 40 * 2**20 - BOUND
    assert stdout.stat().st_size < BOUND + 200


def test_without_hole_punching_the_file_is_truncated_to_its_head(tmp_path: Path) -> None:
    """A file system that cannot punch holes: the middle goes by truncation, the writer
    (O_APPEND, as a task's) carries on after the head."""
    path = str(tmp_path / "stdout")
    writer = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    def cannot(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.EOPNOTSUPP, "not supported")

    capped = CappedFile(path, "stdout", head=1000, tail=1000, punch=cannot)
    os.write(writer, b"h" * 1000 + b"m" * (2 * SLACK))
    capped.check()
    assert os.path.getsize(path) == 1000 and capped.cut == 2 * SLACK
    os.write(writer, b"m" * 500 + b"t" * 1000)
    os.close(writer)
    assert capped.finish() == 2 * SLACK + 500
    head, note, tail = split(Path(path).read_bytes())
    assert head == b"h" * 1000 and tail == b"t" * 1000
    assert note.startswith(f"[odop: {2 * SLACK + 500} bytes of stdout cut here".encode())


def test_output_within_the_bound_is_left_alone(tmp_path: Path) -> None:
    path = str(tmp_path / "stderr")
    Path(path).write_bytes(b"z" * 2000)
    capped = CappedFile(path, "stderr", head=1000, tail=1000)
    capped.check()
    assert capped.finish() == 0 and Path(path).read_bytes() == b"z" * 2000


def split(data: bytes) -> tuple[bytes, bytes, bytes]:
    """(head, note line, tail) of a cut output file."""
    start = data.index(b"\n[odop: ")
    end = data.index(b"]\n", start) + 1
    return data[:start], data[start + 1:end], data[end + 1:]


def du(path: Path) -> int:
    """Bytes of disk used under ``path`` (blocks, not apparent sizes)."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_blocks * 512 for p in files)


def test_a_start_that_fails_leaves_no_file_open(tmp_path: Path) -> None:
    from odop.engine.spawn import SpawnError

    engine = Engine(tmp_path / "run", cwd=str(tmp_path / "gone"), fork_server=False,
                    cgroups=None)
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(SpawnError, match="cannot start"):
        engine.start("x1", {"kind": "executable", "target": "true"}, {}, [0])
    assert len(os.listdir("/proc/self/fd")) == before and not engine.tasks
