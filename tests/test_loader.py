"""Loading a folder of task specs: JSON, TOML, Python; every error reported at once."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from odop.errors import SpecError, SpecErrors
from odop.tasks import registry
from odop.tasks.loader import find_cycles, load_spec_file, load_task_folder

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    registry.clear()
    yield
    registry.clear()


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def _errors(folder: Path, **kw: object) -> list[SpecError]:
    with pytest.raises(SpecErrors) as info:
        load_task_folder(str(folder), **kw)  # type: ignore[arg-type]
    return info.value.errors


def test_example_folder_loads() -> None:
    specs = load_task_folder(str(REPO / "tasks/examples"),
                             executable_dirs=[str(REPO / "executables")])
    assert set(specs) == {"reduce", "checksum", "archive", "watch_log"}
    assert specs["reduce"].target == f"{REPO / 'tasks/examples/steps.py'}:reduce"
    assert specs["reduce"].trigger == {"kind": "file", "path": "snapshots/*.npy",
                                       "events": ["created"], "settle_s": 0.2,
                                       "existing": "skip"}
    assert specs["checksum"].target == str(REPO / "executables/checksum.sh")
    assert specs["checksum"].depends_on == ("reduce",)
    assert specs["watch_log"].source == "decorator"
    assert "reduce" not in registry.registered()  # spec-file tasks registered only on request


def test_forms_of_spec_files(tmp_path: Path) -> None:
    (tmp_path / "one.json").write_text(json.dumps({"function": "json:dumps"}))
    (tmp_path / "many.json").write_text(json.dumps([
        {"name": "a", "function": "json:loads"}, {"name": "b", "program": "sh"}]))
    _write(tmp_path / "table.toml", """
        [tasks.c]
        function = "json:dumps"
        depends_on = ["a", "one"]
        [tasks.d]
        program = "sh"
        argv = "-c 'echo {x}'"
    """)
    _write(tmp_path / "array.toml", """
        [[tasks]]
        name = "e"
        function = "os.path:join"
        trigger = { every = "30s" }
    """)
    _write(tmp_path / "notes.txt", "not a spec")
    specs = load_task_folder(str(tmp_path), register=True)
    assert sorted(specs) == ["a", "b", "c", "d", "e", "one"]
    assert specs["d"].argv == ("-c", "echo {x}") and specs["e"].trigger["period_s"] == 30.0
    assert registry.get("c").depends_on == ("a", "one")


def test_every_error_reported_at_once(tmp_path: Path) -> None:
    _write(tmp_path / "a.toml", """
        name = "a"
        function = "json:dumps"
        cpu = 2
    """)
    (tmp_path / "b.json").write_text(json.dumps([
        {"name": "b", "function": "json:dumps", "time": "10 minutes"},
        {"name": "c", "function": "no_such_module_qq:f"},
        {"name": "d", "function": "json:no_such_fn"},
        {"name": "e", "program": "no-such-program-qq"},
        {"name": "f", "program": str(tmp_path / "missing.sh")},
        {"name": "g", "function": "json:dumps", "depends_on": ["ghost"]},
        {"name": "h", "function": "json:dumps"},
    ]))
    _write(tmp_path / "dup.toml", 'name = "h"\nfunction = "json:loads"\n')
    (tmp_path / "broken.json").write_text("{not json")
    _write(tmp_path / "broken2.toml", "name = \n")
    _write(tmp_path / "bad.py", "import no_such_module_zz\n")
    errors = _errors(tmp_path)
    got = {(e.task, e.field) for e in errors}
    assert got == {("a", "cpu"), ("b", "time"), ("c", "function"), ("d", "function"),
                   ("e", "program"), ("f", "program"), ("g", "depends_on"), ("h", "name"),
                   ("broken", "<file>"), ("broken2", "<file>"), ("bad", "<file>")}
    text = "\n".join(str(e) for e in errors)
    assert "did you mean 'cpus'" in text and "ghost" in text and "dup.toml" in text
    assert str(tmp_path / "b.json") in text  # each error names its file


def test_dependency_cycle_named(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(json.dumps([
        {"name": "a", "function": "json:dumps", "depends_on": "b"},
        {"name": "b", "function": "json:dumps", "depends_on": ["c"]},
        {"name": "c", "function": "json:dumps", "trigger": {"after": "a"}},
        {"name": "d", "function": "json:dumps", "depends_on": "a"},
    ]))
    errors = _errors(tmp_path)
    assert len(errors) == 1 and errors[0].field == "depends_on"
    assert "a -> b -> c -> a" in str(errors[0])


def test_find_cycles() -> None:
    assert find_cycles({"a": ["b"], "b": ["a"], "c": ["c"], "d": ["x"]}) == [
        ["a", "b", "a"], ["c", "c"]]
    assert find_cycles({"a": ["b", "c"], "b": ["c"], "c": []}) == []


def test_program_not_executable(tmp_path: Path) -> None:
    tool = tmp_path / "exe" / "tool.sh"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "t.json").write_text(json.dumps({"program": "tool.sh"}))
    errors = _errors(tmp_path / "tasks", executable_dirs=[str(tool.parent)])
    assert "chmod +x" in str(errors[0])
    tool.chmod(0o755)
    assert load_task_folder(str(tmp_path / "tasks"), executable_dirs=[str(tool.parent)])


def test_sibling_executables_folder_is_default(tmp_path: Path) -> None:
    (tmp_path / "executables").mkdir()
    tool = tmp_path / "executables" / "post"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "post.toml").write_text('program = "post"\nargv = ["{path}"]\n')
    assert load_task_folder(str(tmp_path / "tasks"))["post"].target == str(tool)


def test_python_file_tasks_and_registry_conflict(tmp_path: Path) -> None:
    _write(tmp_path / "mytasks.py", """
        import odop.tasks as ot

        @ot.task(time="1s", depends_on="prep")
        def render(path):
            return path
    """)
    (tmp_path / "prep.json").write_text(json.dumps({"function": "mytasks.py:render"}))
    specs = load_task_folder(str(tmp_path))
    assert specs["render"].depends_on == ("prep",)
    assert specs["prep"].target == specs["render"].target


def test_missing_folder_and_bad_file(tmp_path: Path) -> None:
    with pytest.raises(SpecErrors, match="existing folder"):
        load_task_folder(str(tmp_path / "nope"))
    (tmp_path / "x.json").write_text('"just a string"')
    specs, errors = load_spec_file(str(tmp_path / "x.json"))
    assert specs == [] and errors[0].field == "<declaration>"
