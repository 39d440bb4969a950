"""The reference docs keep up with the code: every message type and field, every config
key (with its default), every CLI subcommand (with its options) is documented."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from odop.cli.main import COMMANDS, build_parser
from odop.config import Config
from odop.protocol.messages import SCHEMA, MsgType

DOCS = Path(__file__).resolve().parent.parent / "docs"
OWN = ("architecture", "protocol", "configuration", "cli", "quickstart", "concepts",
       "troubleshooting", "index")
PLANNED = {f"{n}.md" for n in ("tasks", "energy", "observer", "report", "engine", "launch",
                               "slurm", "security", "algorithms")}
"""Pages other engineers write; a link to one may come before the page does."""


def read(name: str) -> str:
    return (DOCS / f"{name}.md").read_text()


def sections(text: str, level: str) -> dict[str, str]:
    """Heading text (code marks stripped) -> the text below it, up to the next heading
    of the same or a higher level."""
    out: dict[str, str] = {}
    parts = re.split(rf"^({level} .*)$", text, flags=re.M)
    for head, body in zip(parts[1::2], parts[2::2], strict=True):
        title = head[len(level) + 1:].strip().strip("`")
        out[title] = re.split(rf"^#{{1,{len(level)}}} ", body, flags=re.M)[0]
    return out


# -- protocol ---------------------------------------------------------------------------
@pytest.mark.parametrize("mtype", list(MsgType), ids=lambda m: m.value)
def test_every_message_type_and_field_is_in_protocol_md(mtype: MsgType) -> None:
    found = sections(read("protocol"), "###")
    assert mtype.value in found, f"docs/protocol.md has no '### `{mtype.value}`' section"
    body = found[mtype.value]
    missing = [f for f in SCHEMA[mtype] if f"| `{f}` |" not in body]
    assert not missing, f"docs/protocol.md, {mtype.value}: fields {missing} not in its table"


def test_protocol_md_documents_no_message_that_does_not_exist() -> None:
    titles = set(sections(read("protocol"), "###"))
    known = {m.value for m in MsgType}
    assert {t for t in titles if re.fullmatch(r"[a-z_]+", t)} <= known


# -- configuration ----------------------------------------------------------------------
def toml_default(value: Any) -> str:
    """How docs/configuration.md writes a default (TOML literal; None is 'unset')."""
    if value is None:
        return "unset"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value)


CONFIG_FIELDS = [f for f in dataclasses.fields(Config) if f.name != "extra"]


@pytest.mark.parametrize("field", CONFIG_FIELDS, ids=lambda f: f.name)
def test_every_config_key_is_in_configuration_md_with_its_default(
        field: dataclasses.Field) -> None:
    rows = [line for line in read("configuration").splitlines()
            if line.startswith(f"| `{field.name}` |")]
    assert rows, f"docs/configuration.md has no table row for `{field.name}`"
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[1] == f"`{toml_default(field.default)}`", (
        f"docs/configuration.md: `{field.name}` default is {cells[1]}; "
        f"the code says `{toml_default(field.default)}`")


# -- CLI --------------------------------------------------------------------------------
def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_is_in_cli_md(command: str) -> None:
    found = sections(read("cli"), "##")
    assert f"odop {command}" in found, f"docs/cli.md has no '## `odop {command}`' section"


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - {"obs"}))
def test_every_option_of_a_subcommand_is_in_cli_md(command: str) -> None:
    parser = subparsers().get(command)
    if parser is None:
        pytest.skip(f"odop {command} is not built yet")
    body = sections(read("cli"), "##")[f"odop {command}"]
    options = [s for a in parser._actions if a.help != argparse.SUPPRESS
               for s in a.option_strings if s.startswith("--") and s != "--help"]
    missing = [o for o in options if f"`{o}" not in body]
    assert not missing, f"docs/cli.md, odop {command}: options {missing} not documented"


# -- links ------------------------------------------------------------------------------
def slug(heading: str) -> str:
    """The anchor a Markdown renderer gives a heading (GitHub's rule)."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(h) for h in re.findall(r"^#+ (.*)$", path.read_text(), flags=re.M)}


@pytest.mark.parametrize("name", OWN)
def test_relative_links_of_the_reference_docs_resolve(name: str) -> None:
    text = read(name)
    for target, anchor in re.findall(r"\]\(([^)#:]*)(?:#([^)]*))?\)", text):
        path = DOCS / target if target else DOCS / f"{name}.md"
        if not path.exists():
            assert target in PLANNED, f"docs/{name}.md links to {target}, which does not exist"
            continue
        if anchor:
            assert anchor in anchors(path), (
                f"docs/{name}.md links to {target}#{anchor}: no such heading")
