"""odop.launch.discover.StepRanks on a fake /proc: srun's ranks are slurmstepd's children."""

from __future__ import annotations

from pathlib import Path

from odop.launch.discover import StepRanks


def _proc(root: Path, pid: int, comm: str, ppid: int, env: dict[str, str]) -> None:
    folder = root / str(pid)
    folder.mkdir()
    (folder / "stat").write_text(f"{pid} ({comm}) S {ppid} 1 1 0 -1\n")
    (folder / "environ").write_bytes(b"\0".join(f"{k}={v}".encode() for k, v in env.items()))


def test_ranks_of_other_steps_on_this_node(tmp_path: Path) -> None:
    job = {"SLURM_JOB_ID": "7", "SLURMD_NODENAME": "n1"}
    _proc(tmp_path, 10, "slurmstepd", 1, {})
    _proc(tmp_path, 11, "slurm_script", 10, job)                        # batch: no step id
    _proc(tmp_path, 20, "slurmstepd", 1, {})
    _proc(tmp_path, 21, "sim", 20, {**job, "SLURM_STEP_ID": "1"})       # a rank
    _proc(tmp_path, 22, "sim", 20, {**job, "SLURM_STEP_ID": "1", "SLURMD_NODENAME": "n2"})
    _proc(tmp_path, 23, "proxy", 20, {**job, "SLURM_STEP_ID": "2", "ODOP_EXECUTION": "e"})
    _proc(tmp_path, 24, "odop", 20, {**job, "SLURM_STEP_ID": "0"})      # the agent's step
    _proc(tmp_path, 30, "sim", 21, {**job, "SLURM_STEP_ID": "1"})       # a rank's child
    ranks = StepRanks({**job, "SLURM_STEP_ID": "0"}, proc=tmp_path)
    assert ranks() == [21]
    assert ranks() == [21]  # remembered non-ranks are skipped, ranks read again
    assert StepRanks({}, proc=tmp_path)() == []  # not in a job


def test_the_children_of_an_mpi_launchers_daemon_are_the_ranks(tmp_path: Path) -> None:
    """Open MPI's mpirun srun's an orted on each other node: its children are the ranks."""
    job = {"SLURM_JOB_ID": "7", "SLURMD_NODENAME": "n2"}
    _proc(tmp_path, 10, "slurmstepd", 1, {})
    _proc(tmp_path, 11, "orted", 10, {**job, "SLURM_STEP_ID": "1"})
    _proc(tmp_path, 12, "sim", 11, {**job, "SLURM_STEP_ID": "1"})
    _proc(tmp_path, 13, "sim", 11, {**job, "SLURM_STEP_ID": "1"})
    _proc(tmp_path, 14, "sim", 12, {**job, "SLURM_STEP_ID": "1"})       # a rank's child
    ranks = StepRanks({**job, "SLURM_STEP_ID": "0"}, proc=tmp_path)
    assert ranks() == [12, 13]
    assert ranks() == [12, 13]
