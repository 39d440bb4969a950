"""Help texts: `odop obs --help` names itself, and every option says what it is for
(issue 18: item 17)."""

from __future__ import annotations

import argparse

import pytest

from odop.cli.main import build_parser, main


@pytest.mark.parametrize(("argv", "usage"), [
    (["obs", "--help"], "usage: odop obs "),
    (["obs", "read", "--help"], "usage: odop obs read "),
])
def test_odop_obs_help_names_odop_obs(argv: list[str], usage: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(usage) and "python -m odop_obs" not in out


def test_odop_obs_errors_name_odop_obs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["obs", "--interval", "0"])
    assert "odop obs: error: argument --interval" in capsys.readouterr().err


def test_python_m_odop_obs_keeps_its_own_name(capsys: pytest.CaptureFixture[str]) -> None:
    from odop_obs.cli import main as obs_main

    with pytest.raises(SystemExit):
        obs_main(["--help"])
    assert capsys.readouterr().out.startswith("usage: python -m odop_obs ")


def subcommands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_argument_has_help(command: str) -> None:
    missing = [a.option_strings[0] if a.option_strings else a.dest
               for a in subcommands()[command]._actions
               if not isinstance(a, argparse._HelpAction) and not a.help]
    assert not missing, f"odop {command}: no help text for {missing}"


@pytest.mark.parametrize(("command", "option", "words"), [
    ("cancel", "--timeout", "seconds to wait"),
    ("export", "--job-name", "Slurm job name"),
])
def test_options_named_in_the_issue_have_help(command: str, option: str, words: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    text = text[text.index("options:"):]
    after = text[text.index(option):]
    assert words in after[:120], after[:120]
