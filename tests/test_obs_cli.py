from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from odop_obs.cli import main


@pytest.fixture
def keep_signals() -> object:
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield None
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_run_then_read_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  keep_signals: object) -> None:
    argv = ["--interval", "0.05", "--count", "3", "--out", str(tmp_path), "--json",
            "--node", "unit", "--no-gpu", "--pid", str(os.getpid())]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["samples"] == 3 and summary["out"].endswith("unit.obs.msgpack")
    assert main(["read", str(tmp_path), "--json"]) == 0
    samples = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(samples) == 3 and all(len(s["cpu"]["per_core"]) == os.cpu_count()
                                     for s in samples)
    assert samples[0]["gpus"] == [] and samples[0]["gpus_reason"]
    assert main(["read", summary["out"]]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 3 and "unit" in table[0] and "(model)" in table[0]


def test_read_nothing_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["read", str(tmp_path)]) == 2
    assert "obs.msgpack" in capsys.readouterr().err


def test_bad_interval_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--interval", "0"])
    assert "not > 0" in capsys.readouterr().err
