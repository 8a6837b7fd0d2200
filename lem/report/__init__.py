"""The sweep report (`python -m lem.report SWEEP_DIR`): reads only results.json and timeseries.parquet files.

load (jobs → tidy table) → groups (grouping, per-group bootstrap summaries, ranking, comparisons; the math is in
stats) → render (results.parquet, summary.csv, summary.md) and plots (PNG).
"""
