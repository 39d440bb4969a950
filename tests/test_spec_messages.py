"""Declaration errors say everything that is wrong, once, in the user's terms (issue 18:
items 16, 19)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from odop.errors import SpecError, SpecErrors
from odop.tasks import registry
from odop.tasks.loader import load_task_folder
from tests.conftest import child_env


@pytest.fixture(autouse=True)
def clean_registry() -> None:
    registry.clear()


# -- 16: a decorator in `python -c` code reports its bad fields too ---------------------
def python_c(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=cwd, env=child_env())


def test_python_c_decorator_reports_the_bad_field(tmp_path: Path) -> None:
    done = python_c('import odop\n@odop.task(name="r", time="10 minutes")\n'
                    'def r(path): pass\n', tmp_path)
    assert done.returncode == 1
    err = done.stderr
    assert "field 'time' = '10 minutes' is invalid" in err, err
    assert "field 'function'" in err and "python -c" in err
    assert "2 invalid task declaration(s)" in err


def test_python_c_decorator_with_good_fields_says_why_it_cannot_run(tmp_path: Path) -> None:
    done = python_c('import odop\n@odop.task(name="r", time="10min")\ndef r(path): pass\n',
                    tmp_path)
    assert "field 'function' = 'r' is invalid" in done.stderr
    assert "python -c" in done.stderr and "time" not in done.stderr.split("allowed:")[0]


def test_every_field_error_of_a_decorator_at_once() -> None:
    with pytest.raises(SpecErrors) as info:
        registry.task(name="t", time="10 minutes", cpus=0)(json.dumps)
    assert [e.field for e in info.value.errors] == ["time", "cpus"]
    assert "t" not in registry.registered()


def test_one_error_is_still_a_spec_error() -> None:
    with pytest.raises(SpecError) as info:
        registry.task(name="t", time="10 minutes")(json.dumps)
    assert info.value.field == "time"


def test_a_lambda_with_a_bad_field_reports_both() -> None:
    with pytest.raises(SpecErrors) as info:
        registry.task(name="l", memory="lots")(lambda: None)
    assert {e.field for e in info.value.errors} == {"memory", "function"}


def test_a_task_module_whose_decorators_are_wrong_lists_each_error(tmp_path: Path) -> None:
    (tmp_path / "steps.py").write_text(
        "import odop\n@odop.task(name='s', time='10 minutes', cpus=0)\ndef s(path): pass\n")
    with pytest.raises(SpecErrors) as info:
        load_task_folder(str(tmp_path))
    assert sorted(e.field for e in info.value.errors) == ["cpus", "time"]
    assert all(str(e).startswith(f"{tmp_path / 'steps.py'}: task 's': ")
               for e in info.value.errors)


# -- 19: a spec folder error names the folder once and a module is not a task -----------
def test_a_missing_function_file_names_the_folder_once(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text(json.dumps({"name": "x", "function": "nofile.py:f"}))
    with pytest.raises(SpecErrors) as info:
        load_task_folder(str(tmp_path))
    text = str(info.value.errors[0])
    assert text.endswith(f"no such file in {tmp_path}")
    assert text.count(str(tmp_path)) == 2  # the spec file's path, then the folder once


def test_a_module_that_does_not_import_is_not_called_a_task(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("import no_such_module_zz\n")
    with pytest.raises(SpecErrors) as info:
        load_task_folder(str(tmp_path))
    text = str(info.value.errors[0])
    assert text == (f"{tmp_path / 'bad.py'}: this Python module failed to import: "
                    "ModuleNotFoundError: No module named 'no_such_module_zz'")
    assert "task 'bad'" not in text and "field" not in text


@pytest.mark.parametrize(("name", "body", "kind"), [("broken.json", "{not json", "JSON"),
                                                    ("broken.toml", "x = [", "TOML")])
def test_an_unreadable_spec_file_is_not_called_a_task(tmp_path: Path, name: str, body: str,
                                                      kind: str) -> None:
    (tmp_path / name).write_text(body)
    with pytest.raises(SpecErrors) as info:
        load_task_folder(str(tmp_path))
    text = str(info.value.errors[0])
    assert text.startswith(f"{tmp_path / name}: not a readable, valid {kind} file: ")
    assert "task 'broken'" not in text


def test_a_missing_folder_is_named_once(tmp_path: Path) -> None:
    with pytest.raises(SpecErrors) as info:
        load_task_folder(str(tmp_path / "nope"))
    assert str(info.value.errors[0]) == f"{tmp_path / 'nope'}: not an existing folder"


def test_a_program_not_found_says_where_it_was_looked_for(tmp_path: Path) -> None:
    (tmp_path / "y.json").write_text(json.dumps({"name": "y", "program": "no-such-prog-qq"}))
    with pytest.raises(SpecErrors) as info:
        load_task_folder(str(tmp_path))
    assert str(info.value.errors[0]).endswith("allowed: an executable program on PATH")
