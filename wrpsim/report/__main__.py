"""`python -m wrpsim.report sweep_dir=DIR [out_dir=DIR] [key=value ...]`: one dataset, one page.

Gathers every run of a sweep (the `hydra.sweep.dir` of a `python -m wrpsim -m …`) into
`results.parquet` (one row per run: status, swept values, summary), `requests_all.parquet`
(every completed run's requests with a `run` column), `manifest.json` (per run: directory,
overrides, status, reason, error) and the offline what-if page `dashboard.html`, all written
atomically into `out_dir` (default: the sweep directory). Keys and defaults: conf/report.yaml.

The last line of stdout is one JSON object: `runs`, `completed`, `failed`, `incomplete`, the
paths written, and `not_completed` (run → reason) for the runs that are not completed. Bad input
prints one line `wrpsim: error: …` on stderr and exits with status 2; failed runs in the sweep are
reported, not an error of this command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wrpsim.cli import apply_flat, load_defaults, verb_main
from wrpsim.errors import ConfigError, boolean

#: most instants of a run's requests-in-system curve (`time_bins`): each is an array element
#: for every run, in memory and in the page (10**21 raised numpy's ValueError, 10**10 would
#: have asked for 80 GB)
MAX_TIME_BINS = 100_000


def _defaults() -> dict[str, Any]:
    """The defaults of conf/report.yaml."""
    return load_defaults("report")


def parse_args(argv: list[str]) -> dict[str, Any]:
    """conf/report.yaml with the `key=value` overrides of `argv` applied (Hydra's grammar)."""
    from wrpsim.io import not_given, optional_path, path_value

    cfg = apply_flat(_defaults(), argv, "report")
    if not_given(cfg["sweep_dir"]):
        raise ConfigError("report: sweep_dir is required (python -m wrpsim.report sweep_dir=DIR)")
    # (a number, list or mapping is refused: str() of it named a folder '[1, 2]' or 'True',
    # and out_dir=0, [] or {} wrote into the sweep)
    path_value(cfg["sweep_dir"], "sweep_dir")
    optional_path(cfg["out_dir"], "out_dir")
    for k in ("dashboard", "requests"):
        boolean(f"report: {k}", cfg[k])
    for k in ("cdf_points", "time_bins"):
        if isinstance(cfg[k], bool) or not isinstance(cfg[k], int) or cfg[k] < 2:
            raise ConfigError(f"report: {k} must be an integer >= 2, got {cfg[k]!r}")
    if cfg["time_bins"] > MAX_TIME_BINS:  # (that many instants are computed for every run)
        raise ConfigError(f"report: time_bins must be an integer in [2, {MAX_TIME_BINS:,}] "
                          f"(instants of each run's requests-in-system curve), got "
                          f"{cfg['time_bins']!r}")
    return cfg


def build(cfg: dict[str, Any]) -> dict[str, Any]:
    """Write the dataset (and dashboard) for a parsed config; return the JSON summary."""
    from wrpsim.io import optional_path, path_value
    from wrpsim.report.collect import scan
    from wrpsim.report.dataset import write_dataset

    sweep = path_value(cfg["sweep_dir"], "sweep_dir")  # (~ expanded)
    out = optional_path(cfg["out_dir"], "out_dir") or sweep
    if cfg["out_dir"]:  # before any work, as the other verbs do
        from wrpsim.io import make_dir

        make_dir(out, "out_dir")
    runs = scan(sweep, exclude=out)
    files = write_dataset(runs, sweep, out, with_requests=cfg["requests"])
    from wrpsim.report.aiq import maybe_write_aiq

    files.update(maybe_write_aiq(Path(files["results"]), out))  # aiq.json for routing sweeps
    if cfg["dashboard"]:
        from wrpsim.report.dashboard import write_dashboard

        files["dashboard"] = str(write_dashboard(runs, sweep, out, cfg["cdf_points"],
                                                 cfg["time_bins"]))
    if set(files) - {"results", "requests", "manifest"}:  # the manifest lists every file
        from wrpsim.io import write_json
        from wrpsim.report.dataset import manifest

        write_json(Path(files["manifest"]), manifest(runs, sweep, files))
    counts = {s: sum(r.status == s for r in runs) for s in ("completed", "failed", "incomplete")}
    if runs and not counts["completed"]:  # a dashboard of nothing: say why, once
        from wrpsim.errors import warn

        warn(f"report: no run under {sweep} completed ({counts['failed']} failed, "
             f"{counts['incomplete']} incomplete or unreadable): the tables hold no results; "
             f"not_completed in the JSON line says why each is left out")
    return {"runs": len(runs), **counts, **files,
            "not_completed": {r.name: (r.error or {}).get("message") or r.reason
                              for r in runs if r.status != "completed"}}


def main(argv: list[str] | None = None) -> int:
    """Entry point: one JSON line on stdout; bad input one line on stderr, status 2."""
    return verb_main(lambda a: build(parse_args(a)), argv, sort_keys=True, verb="report",
                     doc=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
