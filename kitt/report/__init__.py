"""Markdown reports: the PR comment / job summary of a comparison, and a run's summary.md."""

from kitt.report.render import COMMENT_LIMIT, render_report, render_summary, report_size

__all__ = ["COMMENT_LIMIT", "render_report", "render_summary", "report_size"]
