"""`python -m wrpsim.validate [key=value ...]`: replay every measured set and tabulate errors.

Replays the measured sets the repository ships (`pools/measured/`: AIConfigurator's silicon
vLLM benchmarks, the LLMServingSim vLLM runs) and, when their data is given or found, ML.ENERGY
and the inference-perf runs of inference-sim/training (see `wrpsim.validate.sets`), each case
through the simulator under its engine, and writes into `out_dir` (relative to the current
directory; default `results/validate/<date>/<time>`, or `<time>-1`, `<time>-2`, … when taken:
`wrpsim.io.fresh_dir`):
`validation_cases.csv` (one row per case and metric: measured, simulated, error),
`validation_summary.csv` / `.md` (per set, GPU and split: cases, median and 90th-percentile
absolute % error of TTFT, TPOT, ITL, end-to-end latency and power), `validation_models.csv` /
`.md` (the same per catalog model, with the median signed error: which way wrpsim errs for
that model), `worst.csv` and, for cases whose benchmark published its average batch
(ML.ENERGY), `validation_batches.csv` (that batch against the sequences the replay ran on
average over the same steady window: `batch_rows`; a note counts the replays below 0.95 of
it). The summary
table is printed, then one `note:` line per set left out and per kind of measured row not
replayed (with its count and why); the last line of stdout is one JSON object (cases, goals
met, notes, files). Keys and
defaults: conf/validate.yaml. Bad input prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wrpsim.cli import apply_flat, load_defaults, verb_main
from wrpsim.errors import ConfigError, boolean, did_you_mean

SETS = ("silicon", "silicon_disagg", "llmservingsim", "mlenergy", "inference_perf")
#: the sets `wrpsim.calibrate validation=` reads (with a fit split, or the shipped ones): the
#: inference-perf runs are all test cases, read from a clone calibrate is not given
CALIBRATION_SETS = ("silicon", "silicon_disagg", "llmservingsim", "mlenergy")
SPLITS = ("all", "fit", "test")
#: most worker processes `jobs` may start (each replays whole cases; more than the machine's
#: cores only queue)
MAX_JOBS = 256


def _defaults() -> dict[str, Any]:
    """The defaults of conf/validate.yaml."""
    return load_defaults("validate")


def parse_args(argv: list[str]) -> dict[str, Any]:
    """conf/validate.yaml with the overrides of `argv` applied, checked."""
    cfg = apply_flat(_defaults(), argv, "validate")
    sets = cfg["sets"]
    if sets is not None and not isinstance(sets, (str, list, tuple)):
        raise ConfigError(f"validate: sets must be a name or a list of names of "
                          f"{', '.join(SETS)}, got {sets!r}")
    sets = [sets] if isinstance(sets, str) else list(sets or [])
    bad = [s for s in sets if s not in SETS]
    if not sets:
        raise ConfigError(f"validate: sets must name at least one of {', '.join(SETS)}, "
                          f"got {cfg['sets']!r}")
    if bad:
        hint = did_you_mean(bad[0], SETS) if isinstance(bad[0], str) else ""
        raise ConfigError(f"validate: sets: unknown value(s) {bad}; valid choices: "
                          f"{', '.join(SETS)}{hint}")
    twice = sorted({s for s in sets if sets.count(s) > 1})
    if twice:  # (each of its cases was replayed and counted twice)
        raise ConfigError(f"validate: sets names {', '.join(twice)} more than once")
    cfg["sets"] = sets
    if cfg["split"] not in SPLITS:
        hint = did_you_mean(cfg["split"], SPLITS) if isinstance(cfg["split"], str) else ""
        raise ConfigError(f"validate: split: unknown value {cfg['split']!r}; valid choices: "
                          f"{', '.join(SPLITS)}{hint}")
    boolean("validate: fast", cfg["fast"])
    from wrpsim.io import optional_path

    for k, reader in (("mlenergy_dir", "mlenergy"), ("inference_perf_dir", "inference_perf")):
        # (0, [] or {} was taken as null; a folder no chosen set reads was silently ignored)
        if optional_path(cfg[k], k) is not None and reader not in sets:
            raise ConfigError(f"validate: {k} is read by the {reader} set only, which "
                              f"sets={sets} leaves out; add it to sets or drop {k}")
    csv = optional_path(cfg.get("silicon_csv"), "silicon_csv")
    if csv is not None:
        if not {"silicon", "silicon_disagg"} & set(sets):
            raise ConfigError(f"validate: silicon_csv is read by the silicon and silicon_disagg "
                              f"sets only, which sets={sets} leaves out")
        cfg["silicon_csv"] = str(silicon_csv(csv, sets))
    if isinstance(cfg["jobs"], bool) or not isinstance(cfg["jobs"], int) or \
            not 1 <= cfg["jobs"] <= MAX_JOBS:
        raise ConfigError(f"validate: jobs must be an integer in [1, {MAX_JOBS}] (worker "
                          f"processes), got {cfg['jobs']!r}")
    if cfg["engine"] is not None:
        from wrpsim.pool.engines import get_engine

        try:
            get_engine(str(cfg["engine"]))
        except ConfigError as e:  # (as the keys above: "validate: engine: ...")
            raise ConfigError(f"validate: {e}") from None
    return cfg


#: the columns of AIConfigurator's silicon_sample.csv that both silicon sets read, the
#: aggregated set's own, and the disaggregated set's (`wrpsim.validate.disagg.DISAGG_COLUMNS`)
SILICON_COLUMNS = ("backend", "model_path", "system", "precision", "isl", "osl",
                   "silicon_ttft_ms", "silicon_tpot_ms")
AGGREGATED_COLUMNS = ("backend_version", "silicon_data_source", "gemm_quant_mode",
                      "moe_quant_mode", "batch_size", "tp_size", "attention_dp_size",
                      "moe_tp_size", "moe_ep_size")


def silicon_csv(value, sets=("silicon",), verb: str = "validate") -> Path:
    """`value`, a CSV in the layout of AIConfigurator's silicon_sample.csv with the columns
    the chosen `sets` read (the aggregated set's where `silicon` is among them, else the
    disaggregated set's); `ConfigError` naming the file and what is wrong otherwise, said as
    `verb`'s (the command the user ran)."""
    import pandas as pd

    from wrpsim.validate.disagg import DISAGG_COLUMNS

    p = Path(str(value)).expanduser()
    if not p.is_file():
        raise ConfigError(f"{verb}: silicon_csv: {p} names no file")
    try:
        head = pd.read_csv(p, nrows=1)
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{verb}: silicon_csv: {p}: not a CSV file ({e})") from None
    need = SILICON_COLUMNS + (AGGREGATED_COLUMNS if "silicon" in sets else DISAGG_COLUMNS)
    missing = [c for c in need if c not in head.columns]
    if missing:
        raise ConfigError(f"{verb}: silicon_csv: {p}: missing column(s) {missing} of "
                          f"AIConfigurator's silicon_sample.csv")
    return p


def mlenergy_root(value, verb: str = "validate") -> Path | None:
    """The ML.ENERGY data folder: `value`, or ../shared/data/measured/mlenergy next to the
    checkout when it exists; `ConfigError` for a given folder without llm_configs.csv, said
    as `verb`'s (the command the user ran)."""
    if value:
        p = Path(str(value)).expanduser()
        if not (p / "llm_configs.csv").is_file():
            raise ConfigError(f"{verb}: mlenergy_dir: {p} has no llm_configs.csv")
        return p
    from wrpsim.paths import catalog_root

    p = catalog_root().parent / "shared" / "data" / "measured" / "mlenergy"
    return p if (p / "llm_configs.csv").is_file() else None


def inference_perf_root(value) -> Path | None:
    """The inference-perf runs' folder (a clone of github.com/inference-sim/training): `value`,
    or None when not given; `ConfigError` for a folder without experiment folders."""
    if not value:
        return None
    from wrpsim.validate.inference_perf import experiment_dirs

    p = Path(str(value)).expanduser()
    if not p.is_dir() or not experiment_dirs(p):
        raise ConfigError(f"validate: inference_perf_dir: {p} holds no experiment folder "
                          f"(default_args/<run>/exp-config.yaml: a clone of "
                          f"github.com/inference-sim/training)")
    return p


def collect_cases(cfg: dict[str, Any]) -> tuple[list, list[str]]:
    """The cases of the chosen sets and split, and notes on sets left out."""
    from wrpsim.validate.disagg import disagg_cases
    from wrpsim.validate.inference_perf import inference_perf_cases
    from wrpsim.validate.llmservingsim import llmservingsim_cases
    from wrpsim.validate.mlenergy import mlenergy_cases
    from wrpsim.validate.silicon import silicon_cases

    cases, notes = [], []
    for name in cfg["sets"]:
        if name in ("silicon", "silicon_disagg"):
            skipped: dict[str, int] = {}
            path = Path(cfg["silicon_csv"]) if cfg.get("silicon_csv") else None
            got = (silicon_cases if name == "silicon" else disagg_cases)(skipped=skipped,
                                                                          path=path)
            notes += [f"{name}: {n} row(s) left out: {why}" for why, n in skipped.items()]
        elif name == "llmservingsim":
            got = llmservingsim_cases()
        elif name == "inference_perf":
            root = inference_perf_root(cfg.get("inference_perf_dir"))
            if root is None:
                notes.append("inference_perf: skipped (its data is not shipped; give "
                             "inference_perf_dir=, a clone of github.com/inference-sim/training)")
                continue
            skipped = {}
            got = inference_perf_cases(root, skipped)
            notes += [f"inference_perf: {n} stage(s) left out: {why}"
                      for why, n in skipped.items()]
        else:
            root = mlenergy_root(cfg["mlenergy_dir"])
            if root is None:
                notes.append("mlenergy: skipped (its data is not shipped; give mlenergy_dir=)")
                continue
            skipped: dict[str, int] = {}
            got = mlenergy_cases(root, skipped)
            notes += [f"mlenergy: {n} run(s) left out: {why}" for why, n in skipped.items()]
        if cfg["split"] != "all":
            got = [c for c in got if c.split == cfg["split"]]
        if cfg["fast"]:
            got = got[::8]
        if cfg["engine"] is not None:
            from wrpsim.pool.engines import get_engine

            if get_engine(str(cfg["engine"])).kind == "analytical":
                from wrpsim.pool.catalog import get_model

                def plain(p: dict) -> bool:  # BF16, no EP / DP, every layer MHA, no settings
                    m = get_model(p["model"])
                    return (p.get("precision", "bf16") == "bf16"
                            and p.get("kv_dtype", "auto") in ("auto", "bf16")
                            and p.get("ep", 1) == 1 and p.get("attn_dp", 1) == 1
                            and "latency" not in p and not (m.mamba_layers or m.mla))

                keep = [c for c in got if all(map(plain, c.pool_configs.values()))]
                if len(keep) < len(got):
                    notes.append(f"{name}: {len(got) - len(keep)} cases left out (engine "
                                 f"{cfg['engine']} models only BF16 weights and KV, ep 1, "
                                 f"attn_dp 1, attention layers (no Mamba, no MLA) and none of "
                                 f"the serving engine's settings such as CUDA-graph mode)")
                got = keep
        cases += got
    return cases, notes


def run_case(args) -> dict:
    """Simulate one case (picklable for worker processes)."""
    case, engine = args
    from wrpsim.validate.replay import simulate

    sim = simulate(case, engine)
    return {"set": case.set, "name": case.name, "gpu": case.gpu, "model": case.model,
            "split": case.split, "measured": case.measured, "simulated": sim,
            "calibration": sim.get("calibration", ""),
            "avg_batch": case.info.get("avg_batch")}


def batch_rows(rows: list[dict]) -> list[dict]:
    """Per case whose benchmark published its average batch (ML.ENERGY's `avg_batch_size`
    over its steady state): that and the sequences the replay ran on average over the same
    window (`replay.running_avg`). Not an error metric of the table: a diagnostic of why a
    case's ITL is off — a replay running fewer sequences (its KV cache holds less, say) than
    the server did decodes faster for that reason alone."""
    out = []
    for r in rows:
        meas, sim = r.get("avg_batch"), r["simulated"].get("batch_avg")
        if meas is not None and sim is not None and meas == meas and meas > 0:
            out.append({"set": r["set"], "gpu": r["gpu"], "model": r["model"],
                        "split": r["split"], "case": r["name"], "measured_batch": meas,
                        "simulated_batch": sim, "ratio": sim / meas})
    return out


#: a replay below this share of its server's published average batch is called out
BATCH_SHORT = 0.95


def batch_notes(batches: list[dict]) -> list[str]:
    """One note per set whose replays ran, in some cases, fewer sequences at once than their
    servers did (`batch_rows`' ratio below `BATCH_SHORT`): their ITL errs short for that reason
    alone, whatever the step time."""
    out = []
    for name in sorted({b["set"] for b in batches}):
        rows = [b for b in batches if b["set"] == name]
        short = sum(b["ratio"] < BATCH_SHORT for b in rows)
        if short:
            out.append(f"{name}: {short} of {len(rows)} replays ran fewer sequences at once "
                       f"than their server (below {BATCH_SHORT:g} of its published average "
                       f"batch; validation_batches.csv): their ITL is short for that reason")
    return out


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    """Replay the cases, write the tables; return the JSON summary."""
    from wrpsim.io import output_dir
    from wrpsim.validate.table import goals_met, long_errors, markdown, per_model, summary, worst

    cases, notes = collect_cases(cfg)
    if not cases:  # every chosen set lacks its data or was filtered empty: nothing was checked
        raise ConfigError("validate: no case to replay: "
                          + ("; ".join(n for n in notes if "skipped" in n or "left out" in n)
                             or f"sets={list(cfg['sets'])} with split={cfg['split']} hold none"))
    work = [(c, cfg["engine"]) for c in cases]
    with output_dir(cfg["out_dir"], "results/validate") as out:
        if cfg["jobs"] > 1 and len(work) > 1:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(cfg["jobs"]) as ex:
                rows = list(ex.map(run_case, work, chunksize=4))
        else:
            rows = [run_case(w) for w in work]
    errors = long_errors(rows)
    tab = summary(errors)
    files = {"cases_csv": out / "validation_cases.csv",
             "summary_csv": out / "validation_summary.csv",
             "summary_md": out / "validation_summary.md", "worst_csv": out / "worst.csv",
             "models_csv": out / "validation_models.csv",
             "models_md": out / "validation_models.md"}
    errors.to_csv(files["cases_csv"], index=False)
    tab.to_csv(files["summary_csv"], index=False)
    files["summary_md"].write_text(markdown(tab))
    models = per_model(errors)
    models.to_csv(files["models_csv"], index=False)
    files["models_md"].write_text(markdown(models))
    worst(errors).to_csv(files["worst_csv"], index=False)
    batches = batch_rows(rows)
    if batches:
        import pandas as pd

        files["batches_csv"] = out / "validation_batches.csv"
        pd.DataFrame(batches).to_csv(files["batches_csv"], index=False)
        notes = notes + batch_notes(batches)
    print(markdown(tab), end="")
    for n in notes:
        print(f"note: {n}")
    calib = sorted({r["calibration"] for r in rows if r["calibration"]})
    given = {"silicon_csv": cfg["silicon_csv"]} if cfg.get("silicon_csv") else {}
    return {"cases": len(rows), "goals_met": goals_met(tab), "notes": notes,
            "calibrations": calib, **given, **{k: str(v) for k, v in files.items()}}


def main(argv: list[str] | None = None) -> int:
    """Entry point: the table, then one JSON line; bad input one line on stderr, status 2."""
    return verb_main(lambda a: run(parse_args(a)), argv, verb="validate", doc=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
