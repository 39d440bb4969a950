"""``odop report RUN``: an HTML page and PNG figures of a run (default: <run>/report/)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from odop.cli.common import add_json, add_run, print_json, run_paths


def add_parser(sub: Any) -> None:
    p = sub.add_parser("report", help="write a run's HTML report and PNG figures")
    add_run(p)
    p.add_argument("--out", help="output folder (default: <run folder>/report)")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from odop.report.build import build_report
    from odop.report.figures import MATPLOTLIB_HINT

    paths = run_paths(args)
    page, report = build_report(paths.root, Path(args.out) if args.out else None)
    figures = [str(p) for p in report.figures.values()]
    if report.missing_figures:
        print(f"odop report: figures not drawn, they need matplotlib ({MATPLOTLIB_HINT}): "
              f"{', '.join(report.missing_figures)}; the page has every table",
              file=sys.stderr)
    if args.json:
        print_json({"html": str(page), "figures": figures,
                    "missing_figures": report.missing_figures, "headline": report.headline})
        return 0
    h = report.headline
    print(f"run {h['run']}: {h['tasks_done']} tasks done, {h['tasks_failed']} failed; "
          f"simulation {_s(h['sim_wall_s'])}, makespan {_s(h['makespan_s'])}; "
          f"tasks {h['tasks_joules']:.3g} J, {h['tasks_gco2']:.3g} gCO2 "
          f"(power: {h['power_source']})", file=sys.stderr)
    print(page)
    return 0


def _s(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f} s"
