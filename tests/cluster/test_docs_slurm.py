"""Item 1: the sbatch scripts of docs/slurm.md, taken from the doc, submitted as written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from odop.testing.cluster import Cluster
from odop.testing.demo import where_tasks_ran
from odop_obs import read_samples
from tests.cluster.conftest import job_env
from tests.cluster.jobs import as_submitted, doc_scripts, prepare, sbatch

pytestmark = pytest.mark.timeout(240)


def _cli(cluster: Cluster, folder: Path, *args: str) -> str:
    done = cluster.run(1, ["odop", *args], cwd=folder,
                       env=job_env(ODOP_HOME=str(folder / ".odop")), check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_doc_has_the_three_scripts() -> None:
    assert set(doc_scripts()) == {"embedded", "wrapped", "external"}


def test_embedded_script_runs_tasks_on_both_nodes(cluster: Cluster, tmp_path: Path) -> None:
    prepare(tmp_path)
    job, out = sbatch(cluster, tmp_path, as_submitted(doc_scripts()["embedded"]))
    assert '"drained": true' in out and '"failed": 0' in out, out
    ran = where_tasks_ran(tmp_path)
    assert {r["host"] for r in ran} == {"odop1", "odop2"}
    for node, node_cores in ((n.name, n.cpus) for n in cluster.nodes):
        assert all(r["cores"][0] in node_cores for r in ran if r["host"] == node)
    status = _cli(cluster, tmp_path, "status", "--run", f"heat-{job}")
    assert "odop1" in status and "odop2" in status, status
    report = json.loads(_cli(cluster, tmp_path, "report", f"heat-{job}", "--json"))
    html = Path(report["html"]).read_text()
    assert report["headline"]["nodes"] == 2 and "odop1" in html and "odop2" in html


def test_wrapped_script_sees_the_rank_under_srun(cluster: Cluster, tmp_path: Path) -> None:
    prepare(tmp_path)
    job, out = sbatch(cluster, tmp_path, as_submitted(doc_scripts()["wrapped"]))
    ran = where_tasks_ran(tmp_path)
    assert len(ran) == 3 and {r["host"] for r in ran} == {"odop1"}, out
    samples = read_samples(tmp_path / ".odop" / "runs" / f"sim-{job}" / "samples", "odop1")
    ranks = [p for s in samples for p in s["processes"]["watched"]
             if p["role"] == "sim" and p["name"] == "sim"]  # slurmstepd's child, not srun's
    assert ranks and max(p["cpu"] for p in ranks) > 0.5, ranks


def test_external_script_runs_tasks_on_both_nodes(cluster: Cluster, tmp_path: Path) -> None:
    prepare(tmp_path)
    job, out = sbatch(cluster, tmp_path, as_submitted(doc_scripts()["external"]))
    ran = where_tasks_ran(tmp_path)
    assert len(ran) == 6 and {r["host"] for r in ran} == {"odop1", "odop2"}, out
