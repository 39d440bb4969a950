"""Slurm allocation from fake SLURM_* environments."""

from __future__ import annotations

import pytest

from odop.errors import ConfigError
from odop.launch.slurm import (
    allocation,
    check_host,
    expand_counts,
    expand_nodelist,
    parse_time_limit,
)


@pytest.mark.parametrize(("text", "nodes"), [
    ("nid[001-003,007]", ["nid001", "nid002", "nid003", "nid007"]),
    ("login1", ["login1"]),
    ("a[1-2],b7,c[09-10]", ["a1", "a2", "b7", "c09", "c10"]),
    ("r[1-2]n[3-4]", ["r1n3", "r1n4", "r2n3", "r2n4"]),
    ("gpu[01-02]-ib", ["gpu01-ib", "gpu02-ib"]),
    ("", []),
])
def test_nodelist(text: str, nodes: list[str]) -> None:
    assert expand_nodelist(text) == nodes


@pytest.mark.parametrize("bad", ["nid[1-", "nid[a-b]", "x]"])
def test_bad_nodelist_is_clear(bad: str) -> None:
    with pytest.raises(ConfigError, match="node list"):
        expand_nodelist(bad)


def test_cpus_per_node() -> None:
    assert expand_counts("64(x2),32") == [64, 64, 32]
    assert expand_counts("8") == [8]
    with pytest.raises(ConfigError, match="N\\(xK\\)"):
        expand_counts("64x2")


@pytest.mark.parametrize(("text", "seconds"), [
    ("30", 1800), ("30:15", 1815), ("1:00:00", 3600), ("2-00", 172800),
    ("1-02:03", 93780), ("1-02:03:04", 93784), ("UNLIMITED", None),
])
def test_time_limits(text: str, seconds: float | None) -> None:
    assert parse_time_limit(text) == seconds


def test_no_job_is_none() -> None:
    assert allocation({}) is None


def test_full_allocation_with_end_time() -> None:
    env = {"SLURM_JOB_ID": "42", "SLURM_JOB_NODELIST": "nid[001-002],nid010",
           "SLURM_JOB_CPUS_PER_NODE": "64(x2),32", "SLURM_GPUS_ON_NODE": "4",
           "SLURM_JOB_GPUS": "0,1,2,3", "SLURM_JOB_START_TIME": "1000",
           "SLURM_JOB_END_TIME": "4600"}
    alloc = allocation(env)
    assert alloc is not None
    assert alloc.nodes == ["nid001", "nid002", "nid010"]
    assert alloc.cpus_per_node == [64, 64, 32]
    assert alloc.gpus_on_node == 4 and alloc.gpu_ids == ["0", "1", "2", "3"]
    assert (alloc.start, alloc.end, alloc.end_time) == (1000.0, 4600.0, 4600.0)
    assert alloc.remaining_s(4000.0) == 600.0


def test_end_from_start_plus_limit() -> None:
    env = {"SLURM_JOB_ID": "7", "SLURM_NODELIST": "c1", "SLURM_JOB_START_TIME": "100",
           "SBATCH_TIMELIMIT": "0-01:00:00"}
    alloc = allocation(env)
    assert alloc is not None and alloc.end == 3700.0 and alloc.nodes == ["c1"]
    assert alloc.gpus_on_node is None and alloc.cpus_per_node == []


def test_unknown_end() -> None:
    alloc = allocation({"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "c1"})
    assert alloc is not None and alloc.end is None and alloc.remaining_s(0) is None


def test_squeue_end_time_parsed_in_local_time() -> None:
    import time

    from odop.launch.slurm import parse_squeue_time

    end = parse_squeue_time("2030-01-02T03:04:05\n")
    assert end is not None and time.localtime(end)[:6] == (2030, 1, 2, 3, 4, 5)
    assert parse_squeue_time("N/A") is None and parse_squeue_time("") is None
    assert allocation({"SLURM_JOB_ID": "7"}, ask_controller=False).end is None  # type: ignore[union-attr]


def test_a_host_outside_the_jobs_node_list_is_named_with_the_list() -> None:
    env = {"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "nid[001-002]",
           "SLURMD_NODENAME": "nid002"}
    check_host("nid002", env)
    check_host("nid002.hsn.example", env)  # the short name counts
    check_host("anything", {})  # outside a job
    with pytest.raises(ConfigError, match=r"'login3' is not in the job's node list "
                                          r"\(nid001, nid002.*Slurm calls this node 'nid002'"):
        check_host("login3", env)
