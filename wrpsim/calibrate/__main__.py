"""`python -m wrpsim.calibrate engine=NAME [key=value ...]`: build or refit an engine profile.

Steps, each optional but at least one:

1. `kernels=DIR gpu=GPU`: compact the kernel timings of one GPU into the engine's tables; the
   GPU must be in the GPU catalog. DIR is either NVIDIA AIConfigurator's layout
   (`DIR/<op>/<framework>/<version>/*.parquet`, e.g. `systems/data/h100_sxm`;
   `wrpsim.calibrate.aic`) or LLMServingSim layer profiles
   (`profiler/perf/<hw>/<org>/<model>/<variant>`, or one `tp<N>` folder of one;
   `wrpsim.calibrate.llmss`), which have GEMM and attention tables only —
   `kernels=[DENSE,DENSE2,MOE]` merges several models' profiles of one GPU into one set
   of tables and adds the MoE block of an MoE model's profile on the same GPU. Tables the new
   folder lacks are kept from the GPU's current ones in the engine, where it has its own
   (copied in, marked `carried_from` in meta.json and named in the calibration label: a
   folder of GEMMs and attention keeps the GPU's measured collectives and MoE layers); what
   is still missing (collectives, MoE layers) comes from a `roofline:` reference GPU: the
   engine's for the GPU, else its default where that is on the same kind of scale-up link,
   else the GPU with complete tables on that kind of link nearest in memory bandwidth (a PCIe
   card's collectives from another PCIe card's). An AIConfigurator table that cannot be read,
   lacks a column it is read by, holds a latency that is not a number > 0 or none of the dtypes
   read, or is in other units (its large BF16 GEMMs faster than 3 x the GPU's peak or slower
   than 1 % of it: seconds or microseconds written as ms, or another GPU's) is refused, naming
   the file, before any table is written.
2. `steps=CSV` and/or `benchmarks=CSV` and/or `validation=SET`: fit the engine constants named
   in `fit` on per-step timings, serving benchmarks (closed loops or `vllm bench serve
   --request-rate` runs; `wrpsim.calibrate.measured` documents the columns) or a shipped measured
   set's fit split (only its cases on `gpu=` when given) and
   report the median / p90 absolute % error before and after. A constant the data do not
   constrain (moving it does not change any simulated time: `iter_overhead_us` under async
   scheduling, without data-parallel attention) keeps the engine's value and is listed in
   `error_pct.not_constrained`; a row whose simulation gives no value (every request dropped)
   is left out with a warning naming its file and line, and a file with no usable row left is
   an error. The per-row errors (signed %, before and after) go to `NAME.fit.csv` beside the
   engine (`rows_csv`); a median error above 50 % after the fit, a constant at an end of
   its range (`error_pct.on_bound`), a row still 10 x off either way (a unit slip in that row)
   and a fit that moves nothing are warned about; a fit that lowers neither the median nor the
   90th-percentile error is not written (`error_pct.kept`: a rerun into the
   same `out_dir` refits the engine the last run wrote, and keeps it unless it finds a better
   point); each fitted constant's `error_pct.spread` (the values of 0, 0.5 x, 1 x and 2 x
   it that fit the rows as well) is reported, and a wide one warned about (not pinned); a fitted
   `frontend_us` below the engine's `frontend_us_serial` (its queued part) takes that part down
   with it, written and warned (`error_pct.lowered`); with the simulated
   times still 11 x off the measured at the median, either way (seconds or microseconds
   written as ms), nothing is written and the run stops with one line.

The engine is `out_dir/NAME.yaml`: a copy of the engine NAME when one exists already (shipped or
yours), else created from `base`. `out_dir` follows every verb's convention: a relative path is
taken from the current directory, never the package; null means `$WRPSIM_CATALOG/engines` when
`WRPSIM_CATALOG` is set, else `results/calibrate/<date>/<time>/engines` under the current
directory — a catalog folder of its own, so the shipped engines are never edited unless
`out_dir=pools/catalog/engines` says so. Runs find the engine with `WRPSIM_CATALOG` set to the
parent of `out_dir` when `out_dir` is a folder named `engines` (the JSON line's `catalog`);
any other `out_dir` is written with a warning that no catalog finds it there.
`write=false` reports the fit but leaves the engine's constants as they were (the JSON says
`"written": false`); a new engine's file is still created, since the fit simulates with it, and
the per-row errors still go to `NAME.fit.csv`. `gpu=` is read by `kernels=` and `validation=`
only (a steps or benchmarks file names each row's GPU). The last line of stdout
is one JSON object (with `kernels=`: the rows per table, the GPU's entry as written —
`tables:` and any `roofline:` reference — and the tables `carried_over` from its earlier
ones); bad input prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import yaml

from wrpsim.cli import apply_flat, load_defaults, verb_main
from wrpsim.errors import ConfigError, boolean, did_you_mean, unknown_choice, warn


def parse_args(argv: list[str]) -> dict[str, Any]:
    """conf/calibrate.yaml with the `key=value` overrides of `argv`, checked."""
    from wrpsim.calibrate.fit import BOUNDS, FIT_FIELDS

    cfg = apply_flat(load_defaults("calibrate"), argv, "calibrate")
    name = cfg["engine"]
    if not isinstance(name, str) or not name:
        raise ConfigError("calibrate: engine=NAME is required (a file name, e.g. my-vllm)")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or name.endswith(".yaml"):
        # (a space, a quote or a path separator would need quoting wherever the name is
        # given back: a pool's engine:, an override, the valid choices of an error)
        raise ConfigError(f"calibrate: engine must be a plain name of letters, digits, '.', "
                          f"'_' and '-' (the engine file's, without its folder or .yaml: e.g. "
                          f"my-vllm; out_dir says where), got {name!r}")
    from wrpsim.pool import engines as E

    shipped = E.engines_dir() / f"{name}.yaml"
    if shipped.is_file() and (yaml.safe_load(shipped.read_text()) or {}).get("kind") != "kernels":
        # (a kernels engine of that name in your catalog would replace it for every run)
        raise ConfigError(f"calibrate: engine: {name} is a shipped engine of another kind (it "
                          f"reproduces older results); give your calibration a name of its own, "
                          f"e.g. engine=my-vllm")
    kernels = cfg["kernels"]
    if kernels is not None and kernels != "":  # (a number, true or a mapping: TypeErrors)
        srcs = kernels if isinstance(kernels, list) else [kernels]
        if not srcs or not all(isinstance(s, str) and s for s in srcs):
            raise ConfigError(f"calibrate: kernels must be a folder (AIConfigurator's "
                              f"systems/data/<gpu>, or an LLMServingSim profile) or a list of "
                              f"LLMServingSim profile folders, got {kernels!r}")
    if not (cfg["kernels"] or cfg["steps"] or cfg["benchmarks"] or cfg["validation"]):
        raise ConfigError("calibrate: give kernels=DIR gpu=GPU, steps=CSV, benchmarks=CSV "
                          "and/or validation=SET")
    from wrpsim.io import optional_path

    # (0, [] or {} was taken as null; a folder without validation=mlenergy silently ignored)
    if (optional_path(cfg["mlenergy_dir"], "mlenergy_dir") is not None
            and cfg["validation"] != "mlenergy"):
        raise ConfigError("calibrate: mlenergy_dir is read by validation=mlenergy only")
    if optional_path(cfg.get("silicon_csv"), "silicon_csv") is not None:
        if cfg["validation"] not in ("silicon", "silicon_disagg"):
            raise ConfigError("calibrate: silicon_csv is read by validation=silicon or "
                              "silicon_disagg only")
        from wrpsim.validate.__main__ import silicon_csv

        cfg["silicon_csv"] = str(silicon_csv(cfg["silicon_csv"], [cfg["validation"]],
                                             "calibrate"))
    if cfg["validation"] is not None:
        from wrpsim.validate.__main__ import CALIBRATION_SETS, mlenergy_root

        if cfg["validation"] not in CALIBRATION_SETS:
            raise unknown_choice("calibrate: validation", cfg["validation"], CALIBRATION_SETS)
        mlenergy_root(cfg["mlenergy_dir"], "calibrate")
    if cfg["kernels"] and not cfg["gpu"]:
        raise ConfigError("calibrate: kernels=DIR needs gpu=GPU (a GPU catalog name)")
    if cfg["gpu"] is not None:
        from wrpsim.pool.catalog import gpus

        if str(cfg["gpu"]) not in gpus():
            raise unknown_choice("calibrate: gpu", cfg["gpu"], gpus())
        if not (cfg["kernels"] or cfg["validation"]):
            raise ConfigError(f"calibrate: gpu={cfg['gpu']} is read by kernels= and "
                              f"validation= only; a steps or benchmarks file names each row's "
                              f"gpu in its own column")
    fit = cfg["fit"]
    if fit is not None and not isinstance(fit, (str, list, tuple)):
        raise ConfigError(f"calibrate: fit must be a field name or a list of them "
                          f"({', '.join(BOUNDS)}), got {fit!r}")
    fit = list(FIT_FIELDS) if fit is None else ([fit] if isinstance(fit, str) else list(fit))
    bad = [f for f in fit if not isinstance(f, str) or f not in BOUNDS]
    if bad:
        hint = did_you_mean(bad[0], BOUNDS) if isinstance(bad[0], str) else ""
        raise ConfigError(f"calibrate: fit: unknown field(s) {bad}; valid: "
                          f"{', '.join(BOUNDS)}{hint}")
    twice = sorted({f for f in fit if fit.count(f) > 1})
    if twice:
        raise ConfigError(f"calibrate: fit names {', '.join(twice)} more than once")
    cfg["fit"] = fit
    boolean("calibrate: write", cfg["write"])
    return cfg


def _as_calibrate(fn, *args, **kwargs):
    """`fn(*args, **kwargs)`, its errors said as calibrate's ('calibrate: kernels: ...', as
    calibrate's other errors start)."""
    try:
        return fn(*args, **kwargs)
    except ConfigError as e:
        raise ConfigError(f"calibrate: {e}") from None


def _engine_yaml(out_dir: Path, name: str, base: str) -> tuple[Path, dict]:
    from wrpsim.pool import engines as E
    from wrpsim.pool.engines import get_engine

    try:  # a misspelt base is an error even where it is not used
        b = get_engine(base)
    except ConfigError as e:  # the field is `base` here, not a pool's `engine`
        raise ConfigError(f"calibrate: base: {str(e).split(': ', 1)[-1]}") from None
    if b.kind != "kernels":
        raise ConfigError(f"calibrate: base engine {base!r} is not a kernels engine")
    path = out_dir / f"{name}.yaml"
    existing = path.is_file() or (name in E.engines() and E.engines()[name].kind == "kernels")
    if existing and base not in (name, E.DEFAULT_ENGINE):
        warn(f"calibrate: base={base} is not used: engine {name} exists "
             f"({path if path.is_file() else 'in the catalog'}) and is refitted from its own "
             f"tables and constants")
    if path.is_file():
        E.load_engine(path)  # (one line naming the file where it is not a valid engine)
        return path, yaml.safe_load(path.read_text()) or {}
    if existing:
        base = name  # refit an existing engine: start from its own tables and constants
        b = get_engine(base)
    raw = yaml.safe_load(b.path.read_text()) or {}
    rel = {}
    shipped = E.engines_dir().resolve()
    for g, e in (raw.get("gpus") or {}).items():  # keep pointing at the base's tables
        if "tables" in e:
            # (found as the engine finds them: a calibration of your own names the shipped
            # tables it builds on from the shipped engines folder, not from its own)
            d = (E.find_tables_dir(b.path, e["tables"]) or b.path.parent / e["tables"]).resolve()
            # the shipped tables by their name under the shipped engines folder (the engine
            # finds them there from wherever its folder is moved or shared: `kernels_for`);
            # a user's own, relative to the new file
            where = (d.relative_to(shipped).as_posix() if d.is_relative_to(shipped)
                     else os.path.relpath(d, out_dir.resolve()))
            rel[g] = {**e, "tables": where}
        else:
            rel[g] = dict(e)
    raw["gpus"] = rel
    raw["description"] = f"{name}: calibrated with python -m wrpsim.calibrate (base {base})"
    return path, raw


def _write_constants(path: Path, raw: dict, fitted: dict) -> None:
    """Set the `constants:` entries `fitted` in the engine file at `path`, editing their lines
    in place so the file's comments survive; a key without a line of its own gets one at the
    end of the block-style `constants:` mapping (a rewrite only where there is none, e.g. a
    flow-style `constants: {...}`)."""
    import re

    text = path.read_text()
    for k, v in fitted.items():
        pat = re.compile(rf"^([ \t]+{re.escape(k)}:)[^\n#]*?(\s*#.*)?$", re.M)
        text, n = pat.subn(lambda m, v=v: f"{m.group(1)} {v}{m.group(2) or ''}", text, count=1)
        if n == 0:
            text = _add_constant(text, k, v)
            if text is None:
                raw.setdefault("constants", {}).update(fitted)
                path.write_text(yaml.safe_dump(raw, sort_keys=False))
                return
    path.write_text(text)


def _add_constant(text: str, key: str, value) -> str | None:
    """`text` (an engine file) with `key: value` added as the last entry of its block-style
    `constants:` mapping, indented as its entries are; None when it has no such block."""
    lines = text.splitlines(keepends=True)
    head = next((i for i, ln in enumerate(lines) if ln.rstrip() == "constants:"), None)
    if head is None:
        return None
    last, indent = head, "  "
    for i in range(head + 1, len(lines)):
        ln = lines[i]
        if ln.strip() and not ln[0].isspace() and not ln.startswith("#"):
            break  # the next top-level key
        if ln.strip() and not ln.lstrip().startswith("#"):
            last, indent = i, ln[:len(ln) - len(ln.lstrip())]
    if not lines[last].endswith("\n"):
        lines[last] += "\n"
    lines.insert(last + 1, f"{indent}{key}: {value}\n")
    return "".join(lines)


def _note_fit(path: Path, cfg: dict, report: dict) -> None:
    """Say in the engine file's `description` what its constants were last fitted on and how
    well (the data files or set, the rows, the median error before and after), so that the
    file records its own provenance; the line is replaced in place, comments kept."""
    data = ", ".join(f"{k}={cfg[k]}" for k in ("steps", "benchmarks", "validation") if cfg[k])
    b, a = report.get("before") or {}, report.get("after") or {}
    text = path.read_text()
    m = re.search(r"^description:[ \t]*(.*)$", text, re.M)
    old = yaml.safe_load(m.group(1)) if m and m.group(1).strip() else ""
    head = str(old or path.stem).split("; constants fitted on ")[0]
    line = (f"{head}; constants fitted on {data}: {a.get('n', 0)} measurements, median error "
            f"{b.get('median_pct')} % before, {a.get('median_pct')} % after")
    new = f"description: {json.dumps(line)}"
    text = (text[:m.start()] + new + text[m.end():]) if m else f"{new}\n{text}"
    path.write_text(text)


def _write_rows(engine_path: Path, rows: list[dict]) -> Path:
    """The per-row errors of a fit as `NAME.fit.csv` beside the engine file: row (file and
    line, or case), metric, signed % error (simulated / measured - 1) before and after, note
    (why a row was left out)."""
    import pandas as pd

    out = engine_path.with_suffix(".fit.csv")
    pd.DataFrame(rows, columns=["row", "metric", "before_pct", "after_pct", "note"]).to_csv(
        out, index=False)
    return out


#: median absolute error after the fit above which the fit is reported as suspect (%)
SUSPECT_MEDIAN_PCT = 50.0
#: the median factor between simulated and measured times (either way) after the fit above
#: which nothing is written: a unit mistake (seconds or microseconds for ms), not a calibration
UNIT_MISTAKE_FACTOR = 11.0
#: a row off by at least this factor (either way) after the fit is named: a unit slip in one row
ROW_MISTAKE_FACTOR = 10.0


def _factors(rows: list[dict]) -> list[tuple[str, str, float]]:
    """(row, metric, simulated / measured after the fit) of every row the fit used."""
    return [(r["row"], r["metric"], 1.0 + r["after_pct"] / 100.0) for r in rows
            if r["after_pct"] is not None and r["after_pct"] > -100.0]


def _off(ratio: float) -> float:
    """How many times off a ratio is, either way."""
    return max(ratio, 1.0 / ratio)


def _unit_check(rows: list[dict], rows_csv: str) -> str:
    """The error for measurements the fit leaves off by more than `UNIT_MISTAKE_FACTOR` at the
    median, either way ('' if none), and a warning naming each row off by
    `ROW_MISTAKE_FACTOR` or more."""
    import statistics

    fac = _factors(rows)
    if not fac:
        return ""
    med = math.exp(statistics.median(abs(math.log(x)) for _, _, x in fac))
    if med > UNIT_MISTAKE_FACTOR:
        ratio = statistics.median(x for _, _, x in fac)
        way = "faster" if ratio < 1 else "slower"
        return (f"calibrate: after the fit the simulated times are still {med:,.0f} x {way} "
                f"than measured (median): the measurements are off by more than any constant "
                f"explains — are they in the documented units (step_ms, ttft_ms, tpot_ms, "
                f"itl_ms: milliseconds; not seconds or microseconds)? Nothing written; per-row "
                f"errors in {rows_csv}")
    far = [(row, metric, x) for row, metric, x in fac if _off(x) >= ROW_MISTAKE_FACTOR]
    for row, metric, x in far[:5]:
        warn(f"{row}: {metric} simulated {x:.3g} x the measured after the fit: a unit slip "
             f"(ms) in this row? It counts little in the fit (robust loss); per-row errors in "
             f"{rows_csv}")
    if len(far) > 5:
        warn(f"calibrate: {len(far) - 5} more rows off by {ROW_MISTAKE_FACTOR:g} x or more; "
             f"per-row errors in {rows_csv}")
    return ""


def _warn_fit(report: dict, rows_csv: str, fitted: dict | None = None,
              fit_list=()) -> None:
    """One warning line for a fit that is probably wrong: a large median error after it, or a
    constant pinned at an end of its range (the data push it further: a term the model lacks)."""
    from wrpsim.calibrate.fit import AS_WELL_PTS, BOUNDS

    fitted = fitted or {}
    med = report["after"].get("median_pct")
    if med is not None and med > SUSPECT_MEDIAN_PCT:
        warn(f"calibrate: median error after the fit is {med} % (> {SUSPECT_MEDIAN_PCT:g} %): "
             f"the constants cannot explain these measurements; per-row errors in {rows_csv}")
    if report.get("lowered"):
        warn("calibrate: frontend_us_serial, the queued part of frontend_us, is lowered to the "
             "fitted frontend_us (the engine's was larger; error_pct.lowered); "
             "fit=[frontend_us,frontend_us_serial] fits both")
    for f in report["on_bound"]:
        if f == "frontend_us_serial":  # its range: 0 to all of frontend_us
            v = fitted.get(f, 0.0)
            if report.get("serial_end") != "top":
                end = "0: the data want less of the front end queued than none"
            else:
                end = (f"all of frontend_us ({v:g} us): the data want more of it queued"
                       + ("" if "frontend_us" in fit_list else
                          " (fit frontend_us too: fit=[frontend_us,frontend_us_serial])"))
            warn(f"calibrate: frontend_us_serial sits at {end}; per-row errors in {rows_csv}")
            continue
        warn(f"calibrate: {f} sits on a bound of its range [0, {BOUNDS[f]:g}]: the data push "
             f"it beyond; per-row errors in {rows_csv}")
    for f, (lo, hi) in (report.get("spread") or {}).items():
        if f in report["on_bound"] or fitted.get(f) is None:
            continue
        v = fitted[f]
        if hi > lo and (lo <= v / 2 or hi >= min(2 * v, BOUNDS[f])):
            warn(f"calibrate: {f} is not pinned by these rows: any value from {lo:g} to "
                 f"{hi:g} fits them as well as the fitted {v:g} (error_pct.spread: median "
                 f"within {AS_WELL_PTS:g} points); rows at other loads or lengths would pin "
                 f"it")


def _warn_nothing(cfg: dict, report: dict, rows_csv: str, created: bool = False) -> None:
    """A warning when the fit moves no constant: none of those asked for changes any
    simulated time of the data, or the fit found no values better than the engine's
    (`created`: this run made the engine file, from `base`, so something was written)."""
    if report.get("kept"):
        b = report["before"]
        kept = (f"they are kept: the new engine file holds {cfg['base']}'s constants unchanged"
                if created else "they are kept, nothing written")
        warn(f"calibrate: the fit found no values of {', '.join(report['kept'])} with a lower "
             f"median or 90th-percentile error than the engine's own ({b.get('median_pct')} / "
             f"{b.get('p90_pct')} %): {kept} (a rerun refits the engine the last run wrote); "
             f"per-row errors in {rows_csv}")
    elif report["not_constrained"] and len(report["not_constrained"]) == len(cfg["fit"]):
        warn(f"calibrate: none of fit=[{','.join(cfg['fit'])}] moves any simulated time of "
             f"these measurements, so nothing is fitted (the front-end constants need "
             f"benchmarks with ttft_ms; CPU times hidden behind the GPU under async scheduling "
             f"show only in steps longer than the GPU's)")


def _warn_estimated(engine: str, cases: list, steps) -> None:
    """One warning per kind of row (GPU, precision) whose kernel times `engine` estimates
    rather than measures — a GPU without tables ("uncalibrated: roofline"), a precision its
    tables lack (an FP4 GEMM on an H100, FP8 on an A100): its calibration label says so, as
    `wrpsim.perf` prints it. The constants describe CPU and launch floors; fitted on such rows
    they absorb the estimate's error instead, which the kernels (`kernels=`) should take."""
    from wrpsim.calibrate.measured import rows, text_or
    from wrpsim.pool.engines import build_latency_model

    keys: dict[tuple, list[str]] = {}
    for c in cases:
        for p in c.pool_configs.values():
            key = (c.model, c.gpu, int(p.get("tp", 1)), str(p.get("precision", "bf16")),
                   str(p.get("kv_dtype", "auto")), int(p.get("ep", 1)),
                   int(p.get("attn_dp", 1)))
            keys.setdefault(key, []).append(str(c.info.get("where", c.name)))
    if steps is not None:
        path = steps.attrs.get("path", "steps")
        for line, r in rows(steps):  # (as `read_steps` built each row's pool)
            key = (str(r["model"]), str(r["gpu"]), int(r["tp"]),
                   text_or(r.get("precision"), "bf16"), text_or(r.get("kv_dtype"), "auto"), 1, 1)
            keys.setdefault(key, []).append(f"{path}: line {line}")
    said: dict[tuple, list[str]] = {}
    for (model, gpu, tp, prec, kvd, ep, dp), wheres in keys.items():
        try:
            lat = build_latency_model(model, gpu, tp, engine, precision=prec, kv_dtype=kvd,
                                      ep=ep, attn_dp=dp)
        except ConfigError:  # (the fit names the row)
            continue
        label = str(getattr(lat, "calibration", "")).split(": ", 1)[-1]  # (less the engine)
        parts = [t.strip() for t in label.split(";") if "uncalibrated" in t]
        if parts:
            said.setdefault((gpu, prec, "; ".join(parts)), []).extend(wheres)
    for (gpu, prec, what), wheres in said.items():
        more = f" (and {len(wheres) - 1} more row(s) alike)" if len(wheres) > 1 else ""
        warn(f"{wheres[0]}{more}: {gpu} {prec} kernels are estimated, not measured, under "
             f"engine {engine} ({what}): fitted on them, the constants (CPU "
             f"and launch floors) absorb the estimate's error; time the kernels first "
             f"(kernels=DIR gpu={gpu})")


def _validation_fit_cases(cfg: dict[str, Any]) -> list:
    """The fit split of the measured set `cfg['validation']` (`wrpsim.validate`'s set
    modules), only its cases on `cfg['gpu']` when that is given."""
    from wrpsim.validate.__main__ import collect_cases

    cases, notes = collect_cases({"sets": [cfg["validation"]], "split": "fit", "fast": False,
                                  "engine": None, "mlenergy_dir": cfg["mlenergy_dir"],
                                  "silicon_csv": cfg.get("silicon_csv")})
    # why the set gave nothing, not the rows every run of it leaves out ("... left out: why")
    notes = [n for n in notes if " left out: " not in n]
    if cfg["gpu"]:
        cases = [c for c in cases if c.gpu == cfg["gpu"]]
        notes = [*notes, f"none on gpu {cfg['gpu']}"]
    if not cases:
        why = "; ".join(notes) or "it has no fit split"
        raise ConfigError(f"calibrate: validation={cfg['validation']}: no cases to fit ({why})")
    return cases


def default_out_dir(out_dir: Any) -> Path:
    """`out_dir` as given (relative to the current directory), or its default (module
    docstring): `$WRPSIM_CATALOG/engines`, else `results/calibrate/<date>/<time>/engines`."""
    import time

    from wrpsim.io import optional_path
    from wrpsim.paths import user_catalog

    given = optional_path(out_dir, "out_dir")  # (out_dir=0, [] or {} is refused, not the default)
    if given is not None:
        return given.expanduser()
    cat = user_catalog()
    if cat is not None:
        return cat / "engines"
    return Path(time.strftime("results/calibrate/%Y-%m-%d/%H-%M-%S")) / "engines"


def _current_tables(engine_file: Path, entry: dict) -> dict:
    """{table name: (Parquet bytes, its meta.json entry, folder)} of the GPU's current tables
    (`entry`'s `tables:` folder, `engines.find_tables_dir`), read into memory: what a new table
    folder for the GPU lacks is carried over from them."""
    from wrpsim.pool import engines as E

    rel = entry.get("tables")
    d = E.find_tables_dir(engine_file, rel) if rel else None
    if d is None or not (d / "meta.json").is_file():
        return {}
    info = json.loads((d / "meta.json").read_text()).get("tables") or {}
    return {name: ((d / f"{name}.parquet").read_bytes(), t, str(rel))
            for name, t in info.items() if (d / f"{name}.parquet").is_file()}


def _carry_over(folder: Path, meta: dict, kept: dict) -> None:
    """Complete a new table folder with the GPU's current tables of the operators it lacks
    (`_current_tables`: the same GPU's measurements, e.g. its collectives and MoE layers when the
    new folder times GEMMs and attention only), each marked `carried_from` in meta.json; and
    drop Parquet files of an earlier compaction into the same folder that the new meta.json
    does not list."""
    for name, (data, info, rel) in kept.items():
        if name not in meta["tables"]:
            (folder / f"{name}.parquet").write_bytes(data)
            meta["tables"][name] = {**info, "carried_from": info.get("carried_from") or rel}
    for f in folder.glob("*.parquet"):
        if f.stem not in meta["tables"]:
            f.unlink()
    (folder / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


def _reference(raw: dict, gpu: str) -> str:
    """The reference GPU whose tables (moved over by the roofline ratio) time the operators a
    new `gpu` table folder lacks: the engine's own `roofline:` for `gpu` where it names one;
    else the engine's default where it is on the same kind of scale-up link; else, of the GPUs
    with complete tables of their own on that kind of link (a PCIe card's collectives from
    another PCIe card's, not NVLink's), the nearest in memory bandwidth; else the default."""
    import math

    from wrpsim.pool.catalog import gpus

    entries = raw.get("gpus") or {}
    old = entries.get(gpu) or {}
    if old.get("roofline"):
        return str(old["roofline"])
    catalog = gpus()
    default = str(raw.get("default_roofline", "h100-80gb"))
    me = catalog[gpu]
    same = sorted(g for g, e in entries.items() if g != gpu and g in catalog
                  and "tables" in (e or {}) and "roofline" not in e
                  and catalog[g].scaleup == me.scaleup)
    if default in same or not same:
        return default
    return min(same, key=lambda g: (abs(math.log(catalog[g].mem_bw_gbs / me.mem_bw_gbs)), g))


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    """Do the steps of a parsed config; return the JSON summary."""
    from wrpsim.pool import engines as E
    from wrpsim.pool.catalog import get_gpu

    steps, cases = None, []  # read the inputs first: bad input stops before anything is written
    for key in ("steps", "benchmarks"):
        if cfg[key] is not None and not isinstance(cfg[key], str):
            raise ConfigError(f"calibrate: {key} must be the path of one CSV file, "
                              f"got {cfg[key]!r}")
    if cfg["fit"] is not None and not cfg["fit"]:
        raise ConfigError("calibrate: fit must name at least one constant (null: the default "
                          "set), got []")
    for key in ("steps", "benchmarks"):  # (empty: none given; the path as the reader opens it)
        given = Path(cfg[key]) if cfg[key] else None
        if given is not None and not given.is_file():
            what = "is a folder, not a CSV file" if given.is_dir() else "names no file" + (
                "" if given.is_absolute() else
                f" (a relative path is read from the current directory, {Path.cwd()})")
            raise ConfigError(f"calibrate: {key}={cfg[key]} {what}")
    if cfg["steps"] or cfg["benchmarks"] or cfg["validation"]:
        from wrpsim.calibrate.measured import benchmark_cases, read_steps

        steps = read_steps(cfg["steps"]) if cfg["steps"] else None
        cases = benchmark_cases(cfg["benchmarks"]) if cfg["benchmarks"] else []
        if cfg["benchmarks"] and not cases:
            raise ConfigError(f"{cfg['benchmarks']}: no usable row left to fit (each was left "
                              f"out: see the warnings)")
        if cfg["validation"]:
            cases += _validation_fit_cases(cfg)
    from wrpsim.io import make_dir

    out_dir = make_dir(default_out_dir(cfg["out_dir"]), "out_dir")
    E.register_engine_dir(out_dir)
    path, raw = _engine_yaml(out_dir, cfg["engine"], cfg["base"])
    result: dict[str, Any] = {"engine": cfg["engine"], "file": str(path.resolve())}
    if out_dir.name == "engines":
        result["catalog"] = str(out_dir.parent.resolve())  # WRPSIM_CATALOG=<this> finds it
    if cfg["kernels"]:
        from wrpsim.calibrate import aic, llmss

        gpu = str(cfg["gpu"])
        get_gpu(gpu)
        tables = out_dir / cfg["engine"] / gpu
        entry = {"tables": str(tables.relative_to(out_dir))}
        srcs = cfg["kernels"] if isinstance(cfg["kernels"], list) else [cfg["kernels"]]
        old = (raw.get("gpus") or {}).get(gpu) or {}
        if "allreduce_fusion_mb" in old:  # (vLLM's size limits there, not a measurement)
            entry["allreduce_fusion_mb"] = old["allreduce_fusion_mb"]
        kept = _current_tables(path, old)  # (read before the new tables may overwrite them)
        if all(llmss.is_profile(s) for s in srcs):
            meta = _as_calibrate(llmss.compact, srcs, tables, gpu=get_gpu(gpu))
            _carry_over(tables, meta, kept)
            if old.get("roofline") or not {"allreduce", "moe"} <= set(meta["tables"]):
                entry["roofline"] = _reference(raw, gpu)
        elif len(srcs) == 1:
            meta = _as_calibrate(aic.compact, srcs[0], tables, gpu=get_gpu(gpu))
            _carry_over(tables, meta, kept)
            if old.get("roofline"):  # (the engine's reference for what the tables lack, kept)
                entry["roofline"] = str(old["roofline"])
            elif not {"allreduce", "moe"} <= set(meta["tables"]):
                # a folder without collectives or MoE tables (GEMMs and attention only): those
                # operators from a reference GPU's tables by the roofline ratio, as for profiles
                ref = _reference(raw, gpu)
                if ref != gpu:
                    entry["roofline"] = ref
        else:
            raise ConfigError("calibrate: kernels: a list names LLMServingSim profiles only "
                              "(of one GPU: their layouts merged, MoE models' MoE block added)")
        raw.setdefault("gpus", {})[gpu] = entry
        result["tables"] = {k: v["rows"] for k, v in meta["tables"].items()}
        # where the GPU's other operators come from: its earlier tables, a reference GPU
        result["gpu_entry"] = dict(entry)
        carried = sorted(k for k, v in meta["tables"].items() if v.get("carried_from"))
        if carried:
            result["carried_over"] = carried
    created = not path.is_file()
    if cfg["kernels"] or created:
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        E.clear_caches()
    if cfg["steps"] or cfg["benchmarks"] or cfg["validation"]:
        from wrpsim.calibrate.fit import fit_constants

        _warn_estimated(cfg["engine"], cases, steps)
        fitted, report = fit_constants(cfg["engine"], cases, steps, cfg["fit"])
        rows = report.pop("rows")
        result["fitted"], result["error_pct"] = fitted, report
        result["rows_csv"] = str(_write_rows(path, rows).resolve())
        mistake = _unit_check(rows, result["rows_csv"])
        if mistake:
            if created and not cfg["kernels"]:  # (the engine file this run made)
                path.unlink(missing_ok=True)
                E.clear_caches()
            raise ConfigError(mistake)
        _warn_fit(report, result["rows_csv"], fitted, cfg["fit"])
        _warn_nothing(cfg, report, result["rows_csv"], created=created)
        if cfg["write"] and fitted:
            _write_constants(path, raw, {**fitted, **report.get("lowered", {})})
            _note_fit(path, cfg, report)
            E.clear_caches()
    if not cfg["write"] and not cfg["kernels"]:
        result["written"] = False
    elif out_dir.name != "engines":
        warn(f"calibrate: out_dir {out_dir} is not a folder named 'engines', so no catalog "
             f"finds {cfg['engine']!r}: runs look for engines in $WRPSIM_CATALOG/engines "
             f"(e.g. out_dir={out_dir / 'engines'} and WRPSIM_CATALOG={out_dir})")
    return result


def main(argv: list[str] | None = None) -> int:
    """Entry point: one JSON line; bad input one line on stderr, status 2."""
    return verb_main(lambda a: run(parse_args(a)), argv, verb="calibrate", doc=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
