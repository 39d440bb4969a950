"""TaskSpec validation: every bad input names the task and the field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgpack
import pytest

from odop.errors import SpecError
from odop.tasks.spec import TaskSpec, check_spec, parse_spec

BASE: dict[str, Any] = {"name": "reduce", "function": "pkg.mod:reduce"}
PROG: dict[str, Any] = {"name": "reduce", "program": "/bin/echo"}


def spec(**fields: Any) -> TaskSpec:
    return parse_spec({**BASE, **fields}, source="decorator")


def test_defaults() -> None:
    s = spec()
    assert (s.kind, s.target, s.cpus_min, s.cpus_max, s.gpus, s.nodes) == (
        "python", "pkg.mod:reduce", 1.0, 1.0, 0, 1)
    assert s.time_s is None and s.memory_max is None and s.trigger is None
    assert s.preempt == "pause" and s.energy["deferrable"] is False


def test_full_normalisation() -> None:
    s = spec(time="10min", cpus={"min": "500m", "max": 4}, memory=["1G", "2GiB"],
             threads={"min": "2", "max": "4"}, gpus=1, priority=-3, deadline="1h",
             depends_on="prep", max_runs=2, max_retries=3, retry_backoff="500ms",
             io_bound=True, preempt="requeue", resumable=True,
             trigger={"file": "snap/*.npy", "event": "created|changed"},
             energy={"deferrable": True, "max_delay": "2h", "carbon_threshold": "low"})
    assert (s.time_s, s.cpus_min, s.cpus_max) == (600.0, 0.5, 4.0)
    assert (s.memory_min, s.memory_max) == (10**9, 2 * 2**30)
    assert (s.threads_min, s.threads_max, s.deadline_s) == (2, 4, 3600.0)
    assert s.depends_on == ("prep",) and s.retry_backoff_s == 0.5
    assert s.trigger == {"kind": "file", "path": "snap/*.npy",
                         "events": ["created", "changed"], "settle_s": 0.0,
                         "existing": "skip"}
    assert s.energy == {"deferrable": True, "max_delay": 7200.0, "carbon_threshold": "low",
                        "price_threshold": None}


def test_round_trip_through_msgpack() -> None:
    s = spec(cpus=(1, 4), trigger={"every": "30s"}, depends_on=["a", "b"])
    d = msgpack.unpackb(msgpack.packb(s.to_dict()))
    assert TaskSpec.from_dict(d) == s
    assert d["schema"] == 1 and d["depends_on"] == ["a", "b"]
    assert hash(s) == hash(TaskSpec.from_dict(d))


def test_executable_argv_template() -> None:
    s = parse_spec({**PROG, "argv": "--in {path} --level 3 '{{literal}}'"}, source="x.toml")
    assert s.kind == "executable" and s.target == "/bin/echo"
    assert s.argv == ("--in", "{path}", "--level", "3", "{{literal}}")
    s2 = parse_spec({**PROG, "argv": ["-n", 4, "{line}"]}, source="x.toml")
    assert s2.argv == ("-n", "4", "{line}")


def test_mpi_kind_and_after_trigger() -> None:
    s = parse_spec({"name": "render", "kind": "mpi", "program": "render", "nodes": 2,
                    "ranks_per_node": 4, "trigger": {"after": "reduce"}}, source="t.json")
    assert (s.kind, s.nodes, s.ranks_per_node) == ("mpi", 2, 4)
    with pytest.raises(SpecError, match="GPUs are granted to tasks on one node"):
        parse_spec({"name": "render", "kind": "mpi", "program": "render", "nodes": 2,
                    "gpus": 1}, source="t.json")
    assert s.trigger == {"kind": "after", "task": "reduce"} and s.depends_on == ("reduce",)


def test_program_found_in_executable_dirs(tmp_path: Path) -> None:
    (tmp_path / "tool").write_text("#!/bin/sh\n")
    s = parse_spec({**PROG, "program": "tool"}, source="d", executable_dirs=[str(tmp_path)])
    assert s.target == str(tmp_path / "tool")
    s2 = parse_spec({**PROG, "program": "not-there"}, source="d", executable_dirs=[str(tmp_path)])
    assert s2.target == "not-there"


def test_relative_function_file_resolved_next_to_spec(tmp_path: Path) -> None:
    (tmp_path / "steps.py").write_text("def a():\n    pass\n")
    src = tmp_path / "a.toml"
    src.write_text("")
    s = parse_spec({"name": "a", "function": "steps.py:a"}, source=str(src))
    assert s.target == f"{tmp_path / 'steps.py'}:a" and os.path.isabs(s.target)


def test_check_spec_collects_every_error() -> None:
    spec_, errors = check_spec({**BASE, "cpu": 2, "time": "soon", "gpus": -1}, source="d")
    assert spec_ is None
    assert {e.field for e in errors} == {"cpu", "time", "gpus"}
    assert "did you mean 'cpus'" in str(errors[0])


# (fields, offending field) -- each must be rejected naming the task and that field
BAD: list[tuple[dict[str, Any], str]] = [
    ({"cpu": 2}, "cpu"),
    ({"memroy": "2G"}, "memroy"),
    ({"time": "10 minutes"}, "time"),
    ({"time": "-1s"}, "time"),
    ({"time": ""}, "time"),
    ({"time": "1e999s"}, "time"),
    ({"time": True}, "time"),
    ({"time": 0}, "time"),
    ({"cpus": 0}, "cpus"),
    ({"cpus": "-2"}, "cpus"),
    ({"cpus": [4, 1]}, "cpus"),
    ({"cpus": [1, 2, 3]}, "cpus"),
    ({"cpus": {"min": 1, "most": 2}}, "cpus"),
    ({"cpus": "lots"}, "cpus"),
    ({"memory": "2 gigabytes"}, "memory"),
    ({"memory": {"min": "2G", "max": "1G"}}, "memory"),
    ({"memory": 0}, "memory"),
    ({"threads": 0}, "threads"),
    ({"threads": 1.5}, "threads"),
    ({"gpus": -1}, "gpus"),
    ({"gpus": "one"}, "gpus"),
    ({"gpus": True}, "gpus"),
    ({"nodes": 0}, "nodes"),
    ({"nodes": 2}, "nodes"),
    ({"ranks_per_node": 4}, "ranks_per_node"),
    ({"priority": "high"}, "priority"),
    ({"priority": 1.5}, "priority"),
    ({"deadline": "tomorrow"}, "deadline"),
    ({"depends_on": "reduce"}, "depends_on"),
    ({"depends_on": [3]}, "depends_on"),
    ({"depends_on": {"a": 1}}, "depends_on"),
    ({"max_runs": 0}, "max_runs"),
    ({"max_retries": -1}, "max_retries"),
    ({"retry_backoff": "-5s"}, "retry_backoff"),
    ({"io_bound": "yes"}, "io_bound"),
    ({"resumable": 1}, "resumable"),
    ({"preempt": "kill"}, "preempt"),
    ({"kind": "java"}, "kind"),
    ({"kind": "executable"}, "function"),
    ({"function": "pkg.mod"}, "function"),
    ({"function": "pkg mod:f"}, "function"),
    ({"function": 42}, "function"),
    ({"function": "missing_file.py:f"}, "function"),
    ({"program": "/bin/echo"}, "program"),
    ({"argv": ["{path}"]}, "argv"),
    ({"trigger": "every 30s"}, "trigger"),
    ({"trigger": {"file": "*.npy", "event": "deleted"}}, "trigger.event"),
    ({"trigger": {"file": "*.npy", "folder": "x"}}, "trigger"),
    ({"trigger": {"every": "0s"}}, "trigger.every"),
    ({"trigger": {"every": "soon"}}, "trigger.every"),
    ({"trigger": {"line": "logs/*.txt"}}, "trigger.line"),
    ({"trigger": {"line": ""}}, "trigger.line"),
    ({"trigger": {"after": "reduce"}}, "trigger.after"),
    ({"trigger": {"file": "*.npy", "recursive": True}}, "trigger.recursive"),
    ({"trigger": {"kind": "cron"}}, "trigger.kind"),
    ({"energy": "green"}, "energy"),
    ({"energy": {"deferable": True}}, "energy.deferable"),
    ({"energy": {"max_delay": "1h"}}, "energy.max_delay"),
    ({"energy": {"carbon_threshold": "filthy"}}, "energy.carbon_threshold"),
    ({"energy": {"price_threshold": -1}}, "energy.price_threshold"),
]


@pytest.mark.parametrize(("fields", "field"), BAD,
                         ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD)])
def test_bad_field_names_task_and_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({**BASE, **fields}, source="decorator")
    err = info.value
    assert err.task == "reduce" and err.field == field
    assert "'reduce'" in str(err) and repr(field) in str(err) and "allowed" in str(err)


PROG_BAD: list[tuple[dict[str, Any], str]] = [
    ({"argv": "--in '{path}"}, "argv"),
    ({"argv": ["{0}"]}, "argv"),
    ({"argv": ["{}"]}, "argv"),
    ({"argv": ["{path.attr}"]}, "argv"),
    ({"argv": ["{path!r}"]}, "argv"),
    ({"argv": ["{path:>4}"]}, "argv"),
    ({"argv": ["{path"]}, "argv"),
    ({"argv": [None]}, "argv"),
    ({"argv": 7}, "argv"),
    ({"program": ""}, "program"),
    ({"executable": "/bin/ls"}, "executable"),
    ({"function": "m:f"}, "program"),
]


@pytest.mark.parametrize(("fields", "field"), PROG_BAD)
def test_bad_program_fields(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({**PROG, **fields}, source="x.toml")
    assert info.value.task == "reduce" and info.value.field == field


@pytest.mark.parametrize("name", [None, "", "1abc", "has space", "x" * 200, 5])
def test_bad_name(name: object) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({**BASE, "name": name}, source="d")
    assert info.value.field == "name"


def test_not_a_mapping() -> None:
    with pytest.raises(SpecError):
        parse_spec(["name", "x"], source="d")  # type: ignore[arg-type]


def test_from_dict_rejects_unknown_schema_and_keys() -> None:
    d = spec().to_dict()
    with pytest.raises(SpecError, match="schema"):
        TaskSpec.from_dict({**d, "schema": 99})
    with pytest.raises(SpecError, match="colour"):
        TaskSpec.from_dict({**d, "colour": "red"})
