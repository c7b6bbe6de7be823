"""A job's markers in its output folder: completion, failure and resume (one run, or one point
of a `-m` sweep; the contracts are listed in `wrpsim.app`).

`_run_marked` runs a task between its markers: an earlier job's `_DONE`, `error.json` and
interrupted writes removed first (`clear_markers`), `_DONE` written last with the digests of
the resolved config (`config_digest`: what is printed left out, `OUTPUT_KEYS`) and of the input
files it names (`inputs_digest`); `record_failure` writes `error.json`; `sweep_job` is one job of
a sweep, skipped when `completed_with` finds its `_DONE` for the same config and inputs.
`presentation` tells an override that changes only what a run prints (never a sweep dimension).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

from wrpsim.app import say
from wrpsim.errors import WrpsimError

# keys of a run's config that change what is printed, not what is simulated: left out of the
# config digest and of the config the core sees (`wrpsim.sim`)
OUTPUT_KEYS = ("hydra", "json")

# override keys that change only what a run prints on the console (json line, progress line),
# never what it simulates or writes: never a sweep dimension (`wrpsim.report.collect`, the
# sweep's closing table), whatever a resume adds
PRESENTATION_KEYS = ("json", "sim.progress")

DONE = "_DONE"

ERROR = "error.json"


def split_override(text: str) -> tuple[str, str]:
    """`'+a.b=3'` -> `('a.b', '3')`; a deletion `'~a.b'` -> `('a.b', '~')`."""
    key, eq, value = text.partition("=")
    if key.startswith("~"):
        return key.lstrip("~"), "~" if not eq else f"~{value}"
    return key.lstrip("+"), value


def presentation(override: str) -> bool:
    """True for an override that changes only what a run prints (`PRESENTATION_KEYS`:
    `json=true`, `sim.progress=false`): it is never a swept dimension of a report. (Here, not
    in `wrpsim.report`, which a run does not import.)"""
    return split_override(override)[0] in PRESENTATION_KEYS


def config_digest(container: dict) -> str:
    """SHA-256 of a resolved config (canonical JSON, keys sorted; `OUTPUT_KEYS` excluded and
    `sim.progress` counted at its default, `auto`, whatever it is: a resume that only turns the
    progress line on or off skips the completed runs, and the digests of runs made before this
    rule are unchanged)."""
    clean = {k: v for k, v in container.items() if k not in OUTPUT_KEYS}
    sim = clean.get("sim")
    if isinstance(sim, dict) and "progress" in sim:
        clean["sim"] = {**sim, "progress": "auto"}
    blob = json.dumps(clean, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def inputs_digest(container: dict) -> str:
    """SHA-256 of what a run reads besides its config: the name, size and modification time of every
    file of the catalogs (the shipped folders, hidden files and `__pycache__` left out; of
    `$WRPSIM_CATALOG` its top-level YAML, Python, JSON and CSV files — a model's `config_json`
    beside `models.yaml` — and its engines/, pools/, routers/, workloads/ and conf/, not a
    results folder a user keeps there; READMEs, calibrations' `*.fit.csv` error reports and
    `pools/measured/` validation data left out) and of the workload's trace file when its path
    names one outside them (as the trace loader reads it: from the working directory when
    relative), and of every other file a config value names by an absolute or `~` path (an
    outcomes table, a router's rules kept outside the catalogs; their loaders read a relative
    path from the catalogs, which are in the digest already). A resume compares it as it
    compares the config digest: a changed price, table, trace or rules file runs again instead
    of keeping stale results (`WRPSIM_RERUN=1` for a file read some other way)."""
    from wrpsim.paths import CATALOGS, catalog_dir, user_catalog

    h = hashlib.sha256()

    def read(p: Path) -> bool:  # (not docs, a calibration's error report, validation data)
        return p.suffix != ".md" and not p.name.endswith(".fit.csv")

    def tree(d: Path) -> list[Path]:
        return [p for p in Path(d).rglob("*") if p.is_file() and read(p)
                and "__pycache__" not in p.parts and "measured" not in p.relative_to(d).parts
                and not any(part.startswith(".") for part in p.relative_to(d).parts)]

    files = [p for n in CATALOGS for p in tree(catalog_dir(n))]
    user = user_catalog()
    if user is not None:  # what README's "Your own catalog" names, not e.g. a results/ beside
        files += [p for p in user.iterdir() if p.is_file() and read(p)
                  and p.suffix in (".yaml", ".yml", ".py", ".json", ".csv")]
        for sub in ("engines", "pools", "routers", "workloads", "conf"):
            if (user / sub).is_dir():
                files += tree(user / sub)
    src = ((container.get("workload") or {}).get("source") or {}).get("path")
    files += _named_files(container) + _named_files([str(src)] if src else [], relative=True)
    for p in sorted(set(files)):
        try:
            st = p.stat()
        except OSError:
            continue
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _named_files(value, relative: bool = False) -> list[Path]:
    """The existing files that string values of `value` (a config container, walked through
    its dicts and lists) name by an absolute or `~` path (`relative`: by any path, read from
    the working directory)."""
    out: list[Path] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
        elif isinstance(v, str) and 0 < len(v) < 4096 and (
                relative or v.startswith(("/", "~")) or os.path.isabs(v)):
            try:
                p = Path(v).expanduser()
                if p.is_file():
                    out.append(p.resolve())
            except Exception:  # (RuntimeError for ~nosuchuser): not a path here, not an input
                continue
    return out


def completed_with(out_dir: Path, digest: str, inputs: str | None = None,
                   outputs: tuple[str, ...] = ()) -> bool:
    """True when `out_dir` holds a completion marker for a config with this digest (and,
    when `inputs` is given, these inputs: `inputs_digest`) and, for a simulation's folder (its
    `outputs` name `requests.parquet`), results the report can read
    (`wrpsim.report.collect`: a readable summary with its metrics and a Parquet requests
    table) — a run its report would call incomplete runs again."""
    out = Path(out_dir)
    try:
        done = json.loads((out / DONE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(done, dict) or done.get("config_sha256") != digest:
        return False
    if inputs is not None and done.get("inputs_sha256") != inputs:
        return False
    if "requests.parquet" in outputs:
        from wrpsim.report.collect import SUMMARY, read_json, unreadable

        return unreadable(out, read_json(out / SUMMARY)) is None
    if "plan.json" in outputs:  # a plan's record must parse (its sweep table reads it)
        try:
            return isinstance(json.loads((out / "plan.json").read_text(encoding="utf-8")), dict)
        except (OSError, ValueError):
            return False
    return True


def clear_markers(out: Path, outputs: tuple[str, ...] = ()) -> None:
    """Remove an earlier job's `_DONE` and `error.json` from `out`, and the temporary files of
    interrupted atomic writes (`.NAME.tmp-*`, `wrpsim.io`) of those and of `outputs`, and of
    interrupted background writes of `outputs` (`.NAME.bg-*`, `wrpsim.io.Background`, and
    their own temporaries). Nothing else is touched: results and a user's own files stay."""
    for name in (DONE, ERROR):
        (out / name).unlink(missing_ok=True)
    temporaries = tuple(f".{name}.tmp-" for name in (DONE, ERROR, *outputs)) + tuple(
        p for name in outputs for p in (f".{name}.bg-", f"..{name}.bg-"))
    try:
        names = os.listdir(out)  # (one listing, not a glob per name)
    except OSError:
        return
    for name in names:
        if name.startswith(temporaries):
            (out / name).unlink(missing_ok=True)


def _stamp(path: Path):
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _run_marked(task, container: dict, out: Path, digest: str, overrides: list[str],
                outputs: tuple[str, ...] = (), inputs: str | None = None) -> None:
    """Remove an earlier job's markers (and the temporaries of interrupted writes), run the
    task, remove the earlier job's `outputs` this run did not write again (`trace.json` of a
    traced run, `routing.parquet` of a routing run), then write `_DONE` last. A run rejected
    for bad input thus leaves an earlier run's results in place, without its `_DONE`."""
    from wrpsim.io import write_json

    clear_markers(out, outputs)
    before = {n: st for n in outputs if (st := _stamp(out / n)) is not None}
    t0 = time.perf_counter()
    task(container, str(out))
    for name, st in before.items():
        if _stamp(out / name) == st:  # not written by this run: an earlier config's
            (out / name).unlink(missing_ok=True)
    write_json(out / DONE, {"status": "completed", "config_sha256": digest,
                            "inputs_sha256": inputs, "overrides": overrides,
                            "wall_s": time.perf_counter() - t0})


def record_failure(out: Path, exc: BaseException, overrides: list[str], digest: str | None,
                   say_it: bool = True) -> None:
    """Write `error.json` for a failed job (atomically) and, with `say_it` (a sweep's job),
    say so on stderr (a single run's caller prints its one line itself)."""
    from wrpsim.io import write_json

    user = isinstance(exc, WrpsimError)
    message = str(exc) if not isinstance(exc, SystemExit) else f"exit status {exc.code}"
    write_json(out / ERROR, {
        "status": "failed", "message": message, "exception_type": type(exc).__name__,
        "user_error": user, "overrides": overrides, "config_sha256": digest,
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    })
    if not say_it:
        return
    kind = "error" if user else f"{type(exc).__name__}"
    say(f"wrpsim: {kind}: {message} [run {out} failed; recorded in {ERROR}]", sys.stderr)


def _json_of_skipped(container: dict, out: Path, overrides: list[str]) -> None:
    """With `json=true`, a run skipped on resume prints its stored summary as a run would."""
    if container.get("json") is not True:
        return
    if (out / "plan.json").is_file() and not (out / "summary.json").is_file():
        try:  # a plan prints its record, as when it ran
            record = json.loads((out / "plan.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        say(json.dumps(record, sort_keys=True, allow_nan=False))
        return
    from wrpsim.__main__ import json_line

    try:
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    shown = [o for o in overrides if not presentation(o)]
    say(json_line(summary, str(out), shown))


def sweep_job(task, cfg, out_dir: str, overrides: list[str],
              outputs: tuple[str, ...] = ()) -> None:
    """One job of a multirun: skip if already completed, record failures, never raise."""
    from omegaconf import OmegaConf

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    digest = None
    try:
        container = OmegaConf.to_container(cfg, resolve=True)
        digest, inputs = config_digest(container), inputs_digest(container)
        if os.environ.get("WRPSIM_RERUN") != "1" and completed_with(out, digest, inputs,
                                                                     outputs):
            say(f"wrpsim: skip {out}: already completed with the same config and inputs",
                sys.stderr)
            _json_of_skipped(container, out, overrides)
            return
        _run_marked(task, container, out, digest, overrides, outputs, inputs)
    except (Exception, SystemExit) as e:  # a sweep outlives any one failing job
        if isinstance(e, SystemExit) and e.code in (0, None):
            return
        record_failure(out, e, overrides, digest)
