"""Markdown reports: the PR comment / job summary of a comparison or a matrix of them, and a run's summary.md."""

from kitt.report.render import render_matrix, render_report, render_summary

__all__ = ["render_matrix", "render_report", "render_summary"]
