"""Markdown reports: the PR comment / job summary of a comparison, and a run's summary.md."""

from kitt.report.render import render_report, render_summary

__all__ = ["render_report", "render_summary"]
