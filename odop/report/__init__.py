"""odop.report: run reports (numbers, PNG figures, one HTML page) and live-view data.

matplotlib is imported only when figures are drawn, so importing this package is light.
"""

from __future__ import annotations

from odop.report.build import analyse, build_report, draw
from odop.report.data import ReportError, RunData, load_run
from odop.report.model import Report

__all__ = ["Report", "ReportError", "RunData", "analyse", "build_report", "draw", "load_run"]
