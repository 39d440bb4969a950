"""The odop command itself: completion, exit codes, piping."""

from __future__ import annotations

import subprocess
import sys

from odop.cli.completion import script
from odop.cli.main import COMMANDS, build_parser, main
from tests.conftest import child_env


def test_completion_lists_every_command_and_their_options() -> None:
    text = script(build_parser(), "bash")
    for name in COMMANDS:
        assert name in text
    assert "--json" in text and "complete -o default -F _odop odop" in text


def test_completion_script_is_valid_bash() -> None:
    text = script(build_parser(), "bash")
    check = subprocess.run(["bash", "-n"], input=text, text=True, capture_output=True)
    assert check.returncode == 0, check.stderr


def test_odop_errors_exit_2_and_name_the_command(capsys, odop_home) -> None:  # type: ignore[no-untyped-def]
    assert main(["status", "nope"]) == 2
    assert "odop status: error: run 'nope' not found" in capsys.readouterr().err


def test_piping_into_a_closed_reader_is_quiet(odop_home) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.run(f"{sys.executable} -m odop completion bash | head -c 10",
                          shell=True, capture_output=True, text=True, env=child_env())
    assert "Traceback" not in proc.stderr
