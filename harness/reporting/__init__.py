"""Reporting: text tables, the HTML report and the figures, drawn from what a results
folder records (no task is imported)."""
