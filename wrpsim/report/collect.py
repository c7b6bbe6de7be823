"""Walk a sweep directory and classify every run in it.

A *run directory* is any directory under the sweep directory that holds a Hydra job record
(`.hydra/overrides.yaml`), a completion marker (`_DONE`), an `error.json`, or a `summary.json` of
a simulation (one with `requests_total`; a `python -m wrpsim.net` folder holds a `summary.json`
too). The folders of other verbs are not runs and are not entered: a capacity plan
(`plan.json`, or a Hydra record of the job `wrpsim-plan`) and a network scenario
(`flows.parquet` and `links.parquet`); `scan` stops with one line when a sweep directory holds
nothing but such folders. A run's status is decided from the files the Hydra shell
(`wrpsim/jobs.py`) writes, never from the mere presence of result files:

- `completed` — `_DONE` is present and valid, `summary.json` can be read and holds the
  required metrics as numbers (`schemas.summary_problem`), and `requests.parquet` is a Parquet
  file (`_DONE` is written last, after every result file was renamed into place);
- `failed` — no `_DONE`, and `error.json` records the exception;
- `incomplete` — anything else: a run still going, killed mid-write (leftover `.*.tmp-*` files,
  or `.*.bg-*` of a table written in the background), or made by an older wrpsim without
  markers, or `_DONE` next to a summary or requests file that cannot be read (truncated,
  hand-edited). Its files are never read as results.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from wrpsim.errors import ConfigError
from wrpsim.jobs import presentation, split_override

DONE, ERROR, SUMMARY, REQUESTS = "_DONE", "error.json", "summary.json", "requests.parquet"
#: the files an interrupted write leaves in a run folder: atomic writes' temporaries
#: (`wrpsim.io.atomic_path`) and tables written in the background (`wrpsim.io.Background`)
LEFTOVERS = (".*.tmp-*", ".*.bg-*")
PLAN = "plan.json"
# what another verb's folder is, by the files that mark it (all must be present)
OTHER_VERBS = (("capacity plan", "python -m wrpsim.plan", (PLAN,)),
               ("network scenario", "python -m wrpsim.net", ("flows.parquet", "links.parquet")))
_JOB_NAME = re.compile(r"^  job:\n    name: (\S+)$", re.M)


@dataclass(frozen=True)
class Run:
    """One run of a sweep as found on disk (see the module docstring for `status`)."""

    name: str
    path: Path
    status: str
    overrides: tuple[str, ...] = ()
    params: dict = field(default_factory=dict)  # the overrides as key -> value, but
    # presentation keys (`presentation`): what the report sweeps over
    summary: dict | None = None
    error: dict | None = None
    reason: str | None = None
    config_sha256: str | None = None


def _natural(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def other_verb(path: Path) -> tuple[str, str] | None:
    """(what, command) when `path` is the folder of another verb (module docstring), else None."""
    for what, command, files in OTHER_VERBS:
        if all((path / f).is_file() for f in files):
            return what, command
    try:
        record = (path / ".hydra" / "hydra.yaml").read_text(encoding="utf-8")
    except OSError:
        return None
    job = _JOB_NAME.search(record)
    if job and job.group(1) == "wrpsim-plan":  # a plan stopped before plan.json
        return OTHER_VERBS[0][:2]
    return None


def _is_run_dir(path: Path) -> bool:
    if (path / ".hydra" / "overrides.yaml").is_file() or any(
            (path / m).is_file() for m in (DONE, ERROR)):
        return True
    summary = read_json(path / SUMMARY) if (path / SUMMARY).is_file() else None
    return summary is not None and "requests_total" in summary


def walk(sweep_dir: Path, exclude: Path | None = None) -> tuple[list[Path], list[Path]]:
    """(run directories, other verbs' folders) under `sweep_dir` (itself included), each in
    natural order of name; neither is entered, nor `exclude` (the report's own out_dir)."""
    found, others = [], []
    for root, dirs, _files in os.walk(sweep_dir):
        here = Path(root)
        if exclude is not None and here.resolve() == exclude.resolve() and here != sweep_dir:
            dirs[:] = []
            continue
        if other_verb(here) is not None:
            others.append(here)
            dirs[:] = []
            continue
        if _is_run_dir(here):
            found.append(here)
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))

    def order(p: Path) -> list:
        return _natural(p.relative_to(sweep_dir).as_posix())

    return sorted(found, key=order), sorted(others, key=order)


def find_run_dirs(sweep_dir: Path, exclude: Path | None = None) -> list[Path]:
    """Every run directory under `sweep_dir` (itself included), in natural order of name."""
    return walk(sweep_dir, exclude)[0]


def read_json(path: Path) -> dict | None:
    """The JSON object in `path`, or None when it is missing, unreadable or not an object."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def recorded_overrides(path: Path, *records: dict | None) -> tuple[str, ...]:
    """The overrides the run's results were made with: those its marker (`_DONE`, else
    `error.json`) recorded, else Hydra's `.hydra/overrides.yaml`. Hydra rewrites that file for
    every job of a resumed sweep, a skipped one too (`json=true` added on resume would show up
    there), while the marker is written by the run itself and removed before any rerun."""
    ov = next((r["overrides"] for r in records if r and isinstance(r.get("overrides"), list)),
              None)
    if ov is None:
        try:
            ov = yaml.safe_load((path / ".hydra" / "overrides.yaml").read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            ov = None
    if not isinstance(ov, list):
        ov = []
    return tuple(str(o) for o in ov)


def unreadable(path: Path, summary: dict | None) -> str | None:
    """Why a run with a valid `_DONE` is not completed (its summary, `summary_problem`, or its
    requests.parquet missing or not Parquet — a truncated file has no footer), or None."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from wrpsim.report.schemas import summary_problem

    if summary is None:
        return f"{DONE} present but {SUMMARY} missing or unreadable"
    problem = summary_problem(summary)
    if problem is not None:
        return f"{DONE} present but {SUMMARY} {problem}"
    try:
        pq.read_schema(path / REQUESTS)
    except FileNotFoundError:
        return f"{DONE} present but {REQUESTS} missing"
    except (OSError, pa.ArrowException) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        return f"{DONE} present but {REQUESTS} unreadable ({first})"
    return None


def read_run(sweep_dir: Path, path: Path) -> Run:
    """Classify one run directory and read what it holds."""
    name = path.relative_to(sweep_dir).as_posix()
    done, error = read_json(path / DONE), read_json(path / ERROR)
    overrides = recorded_overrides(path, done, error)
    params = dict(split_override(o) for o in overrides if not presentation(o))
    common = {"name": name, "path": path, "overrides": overrides, "params": params}
    leftovers = sorted({p.name for pat in LEFTOVERS for p in path.glob(pat)})
    if done is not None:
        summary = read_json(path / SUMMARY)
        reason = unreadable(path, summary)
        if reason is None:
            return Run(status="completed", summary=summary,
                       config_sha256=done.get("config_sha256"), **common)
    elif error is not None:  # a user error's own line says what to change; a crash, that it was
        message = str(error.get("message") or "").splitlines()[0] if error.get("message") else ""
        reason = (f"bad input: {message[:160]}" if error.get("user_error") and message
                  else "the run raised an exception")
        return Run(status="failed", error=error, reason=reason, **common)
    elif (path / DONE).exists():
        reason = f"{DONE} is unreadable"
    elif leftovers:
        reason = f"interrupted while writing ({', '.join(leftovers)}); no {DONE} marker"
    else:
        reason = f"no completion marker ({DONE}): still running, killed, or not made by wrpsim"
    return Run(status="incomplete", reason=reason, **common)


def scan(sweep_dir: Path | str, exclude: Path | None = None) -> list[Run]:
    """All runs of a sweep; `ConfigError` when the directory is missing, is a capacity plan, or
    holds no run (one line; naming the other verbs' folders when it holds only those)."""
    sweep = Path(sweep_dir)
    if not sweep.is_dir():
        raise ConfigError(f"report: sweep_dir {str(sweep)!r} is not a directory")
    reads = "python -m wrpsim.report reads the runs of python -m wrpsim -m …"
    if (sweep / PLAN).is_file():
        raise ConfigError(f"report: sweep_dir {str(sweep)!r} is a capacity plan ({PLAN}), "
                          f"not a sweep: its report is report.html / report.md there; {reads}")
    found, others = walk(sweep, exclude)
    if not found and others == [sweep]:
        what, command = other_verb(sweep)
        raise ConfigError(f"report: sweep_dir {str(sweep)!r} is a {what} ({command}), not a "
                          f"sweep; {reads}")
    if not found and others:
        kinds = sorted({other_verb(p)[0] for p in others})
        names = ", ".join(p.relative_to(sweep).as_posix() for p in others[:5])
        more = f" and {len(others) - 5} more" if len(others) > 5 else ""
        hint = "; a plan's report is report.html / report.md in its folder" * (
            OTHER_VERBS[0][0] in kinds)
        failed = [p.relative_to(sweep).as_posix() for p in others
                  if (p / ERROR).is_file() and not (p / PLAN).is_file()]
        if failed:  # a failed job of a `wrpsim.plan -m` sweep: say which, and where its error is
            hint += (f"; failed: {', '.join(failed[:5])}{' …' if len(failed) > 5 else ''} "
                     f"(the error is in {failed[0]}/{ERROR})")
        raise ConfigError(f"report: sweep_dir {str(sweep)!r} holds no simulation run, only "
                          f"{' and '.join(k + 's' for k in kinds)} ({names}{more}{hint}); "
                          f"{reads}")
    if not found:
        raise ConfigError(f"report: no runs under {str(sweep)!r} (no directory holds "
                          f".hydra/overrides.yaml, {DONE}, {ERROR} or a simulation's {SUMMARY})")
    return [read_run(sweep, p) for p in found]


def swept_keys(runs: list[Run]) -> list[str]:
    """Every override key of any run, in order of first appearance."""
    keys: dict[str, None] = {}
    for r in runs:
        for k in r.params:
            keys.setdefault(k, None)
    return list(keys)


def varying_keys(runs: list[Run]) -> list[str]:
    """The swept keys that take more than one value across the runs (the dashboard's controls)."""
    return [k for k in swept_keys(runs) if len({r.params.get(k) for r in runs}) > 1]
