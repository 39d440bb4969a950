"""The @task decorator, the registry and loading targets by module or file path."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from odop.errors import SpecError, UnknownTaskError
from odop.tasks import registry
from odop.tasks.registry import clear, get, registered, task
from odop.tasks.target import TargetError, file_module_name, load_callable

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    clear()
    yield
    clear()


def test_local_function_rejected() -> None:
    with pytest.raises(SpecError) as info:
        @task(time="1s")
        def local() -> None:
            pass
    assert info.value.field == "function" and info.value.task == "local"


def _write(path: Path, body: str) -> Path:
    path.write_text(textwrap.dedent(body))
    return path


MODULE = """
    import odop.tasks as ot

    @ot.task
    def plain(path):
        return "plain:" + path

    @ot.task(name="reduce", time="10min", cpus=(1, 4), memory="2G", priority=5)
    def reduce_fn(path, level=1):
        return f"reduce:{path}:{level}"

    RAN_MAIN = False
    if __name__ == "__main__":
        RAN_MAIN = True
        raise SystemExit("the main block must not run when loaded as a task file")
"""


def test_decorator_in_module_and_file(tmp_path: Path) -> None:
    script = _write(tmp_path / "sim_script.py", MODULE)
    fn = load_callable(f"{script}:reduce_fn")  # runs the decorators, not the main block
    assert fn("a", 2) == "reduce:a:2"
    specs = registered()
    assert set(specs) == {"plain", "reduce"}
    spec = get("reduce")
    assert spec.target == f"{script}:reduce_fn" and spec.kind == "python"
    assert (spec.time_s, spec.cpus_min, spec.cpus_max, spec.priority) == (600.0, 1.0, 4.0, 5)
    assert fn.__odop_task__ == spec
    module = sys.modules[file_module_name(str(script))]
    assert module.RAN_MAIN is False and module.__name__ != "__main__"
    # loading again reuses the module and the identical re-declaration is not an error
    assert load_callable(get("plain").target)("x") == "plain:x"


def test_script_run_as_main_declares_file_path_target(tmp_path: Path) -> None:
    script = _write(tmp_path / "run_me.py", """
        import odop.tasks as ot

        @ot.task(time="1min")
        def step(path):
            return path * 2

        if __name__ == "__main__":
            target = ot.get("step").target
            print(target)
            print(ot.load_callable(target)("ab"))
    """)
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=env, check=True, cwd=tmp_path).stdout.split()
    assert out == [f"{script}:step", "abab"]
    out = subprocess.run([sys.executable, "-m", "run_me"], capture_output=True, text=True,
                         env=env, check=True, cwd=tmp_path).stdout.split()
    assert out == ["run_me:step", "abab"]


def test_duplicate_name_with_other_definition(tmp_path: Path) -> None:
    script = _write(tmp_path / "dup.py", """
        import odop.tasks as ot

        @ot.task(name="same")
        def one():
            pass

        @ot.task(name="same")
        def two():
            pass
    """)
    with pytest.raises(TargetError) as info:
        load_callable(f"{script}:one")
    assert isinstance(info.value.__cause__, SpecError)
    assert "'same'" in str(info.value) and "unique task name" in str(info.value)


def test_decorator_validates_fields() -> None:
    with pytest.raises(SpecError) as info:
        task(name="t", cpu=2)(load_callable)
    assert (info.value.task, info.value.field) == ("t", "cpu")
    with pytest.raises(SpecError) as info:
        task(name="t", program="/bin/ls")
    assert info.value.field == "program"
    with pytest.raises(SpecError):
        task("positional-name")


def test_decorate_importable_function() -> None:
    spec = task(name="loader", time="5s")(load_callable).__odop_task__
    assert spec.target == "odop.tasks.target:load_callable"
    assert get("loader") is spec
    delattr(load_callable, "__odop_task__")


def test_get_unknown_lists_known() -> None:
    registry.register(registry.parse_spec({"name": "known", "function": "m:f"}, source="d"))
    with pytest.raises(UnknownTaskError, match="known") as info:
        get("nope")
    assert isinstance(info.value, LookupError)


@pytest.mark.parametrize(("target", "message"), [
    ("no_such_module_xyz:f", "not found"),
    ("json:no_such_function", "no attribute"),
    ("json.decoder:JSONDecodeError.nope", "no attribute"),
    ("/no/such/file.py:f", "does not exist"),
    ("json", "malformed"),
    ("json:", "malformed"),
    ("__main__:f", "script's path"),
    ("json:__doc__", "not a callable"),
])
def test_load_callable_errors(target: str, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        load_callable(target)


def test_load_file_that_fails_to_import(tmp_path: Path) -> None:
    script = _write(tmp_path / "broken.py", "raise RuntimeError('boom')\n")
    with pytest.raises(TargetError, match="boom"):
        load_callable(f"{script}:f")
    assert file_module_name(str(script)) not in sys.modules


def test_file_sibling_imports_work(tmp_path: Path) -> None:
    _write(tmp_path / "helper_mod_odop.py", "VALUE = 41\n")
    script = _write(tmp_path / "uses_helper.py", """
        import helper_mod_odop

        def f():
            return helper_mod_odop.VALUE + 1
    """)
    assert load_callable(f"{script}:f")() == 42
