"""Sweep aggregation and the what-if dashboard (`python -m wrpsim.report sweep_dir=...`).

- `collect`: find every run of a sweep directory and classify it completed / failed / incomplete;
- `schemas`: the explicit Arrow schemas of `results.parquet` and `requests_all.parquet`;
- `dataset`: write `results.parquet`, `requests_all.parquet` and `manifest.json`;
- `views` and `dashboard`: the self-contained, offline `dashboard.html`.

Nothing here is imported by a simulation run, so sweeps start fast.
"""
