"""The odop command itself: completion, exit codes, piping."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from odop.cli.argtypes import names_from, positive_int, positive_seconds, seconds
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


@pytest.mark.parametrize(("argv", "message"), [
    (["demo", "--io-sleep", "-1"], "argument --io-sleep: '-1' must be a number of seconds >= 0"),
    (["demo", "--steps", "0"], "argument --steps: '0' must be an integer >= 1"),
    (["demo", "--ranks", "two"], "argument --ranks: 'two' must be an integer >= 1"),
    (["watch", "latest", "--interval", "nan"], "'nan' must be a number of seconds > 0"),
    (["submit", "--run", "r", "--timeout", "-5", "t"], "'-5' must be a number of seconds >= 0"),
])
def test_bad_option_values_are_refused_by_the_parser(capsys, argv, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_option_value_types() -> None:
    assert positive_int("3") == 3
    assert seconds("0") == 0.0 and seconds("1.5") == 1.5
    assert positive_seconds("0.25") == 0.25
    for bad, parse in [("0", positive_int), ("1.5", positive_int), ("-1", seconds),
                       ("inf", seconds), ("0", positive_seconds), ("x", positive_seconds)]:
        with pytest.raises(argparse.ArgumentTypeError, match=repr(bad)):
            parse(bad)


def test_names_from_takes_a_comma_list_of_allowed_names() -> None:
    parse = names_from(("a", "b"))
    assert parse("b,a") == ["b", "a"]
    for bad in ("a,c", ",", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="allowed: a, b"):
            parse(bad)


@pytest.mark.parametrize("command", ["scheduler", "agent"])
def test_daemons_take_the_run_first_or_as_an_option(command: str) -> None:
    """Like every other command: the run positional first, or --run; both, different, is
    an error; neither is an error naming the forms."""
    from odop.cli.common import chosen_run
    from odop.cli.main import build_parser
    from odop.errors import OdopError

    parser = build_parser(command)
    assert chosen_run(parser.parse_args([command, "r1"])) == "r1"
    assert chosen_run(parser.parse_args([command, "--run", "r1"])) == "r1"
    for argv in ([command], [command, "r1", "--run", "r2"]):
        with pytest.raises(OdopError, match="run"):
            chosen_run(parser.parse_args(argv))
