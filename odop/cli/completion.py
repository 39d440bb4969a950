"""``odop completion bash|zsh``: a shell completion script, made from the parser itself."""

from __future__ import annotations

import argparse
from typing import Any

SHELLS = ("bash", "zsh")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("completion", help="print a shell completion script")
    p.add_argument("shell", choices=SHELLS, help="bash, or zsh (through bashcompinit)")
    p.set_defaults(func=run)


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    """Completion of subcommands, then of each subcommand's options (and file names)."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    cases = "\n".join(
        f"    {name}) opts=\"{' '.join(_options(p))}\" ;;"
        for name, p in sorted(sub.choices.items()))
    prefix = "autoload -U +X bashcompinit && bashcompinit\n" if shell == "zsh" else ""
    return f"""{prefix}_odop() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}" opts=""
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "{' '.join(sorted(sub.choices))}" -- "$cur"))
    return
  fi
  case "${{COMP_WORDS[1]}}" in
{cases}
  esac
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}}
complete -o default -F _odop odop
"""


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(o for a in parser._actions for o in a.option_strings
                  if o.startswith("--") and a.help != argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    from odop.cli.main import build_parser

    print(script(build_parser(), args.shell), end="")
    return 0
