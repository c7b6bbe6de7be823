"""Build a workload (the canonical trace frame) from its plain-dict config.

A workload config is what one YAML of the `workloads/` catalog holds (Hydra group `workload`)::

    name: azure-conv-2023
    source:                          # where the requests come from
      kind: azure                    # azure | mooncake | generic | ragpulse | agent_rounds
      path: traces/azure_conv_2023.csv   # | synthetic | sessions | closed_loop | constant_rate
                                         # (generated); paths relative to the YAML's folder
    hash_block_tokens: null          # flat transform keys, overridable as workload.<key>=...
    prefix_ids: null
    prefix_reuse: null
    start_s: null
    end_s: null
    sample_fraction: null
    max_requests: null
    rate_scale: 1.0
    max_prompt_tokens: null
    max_output_tokens: null
    model: null
    model_mix: null
    outcomes: null                   # per-prompt correctness joined on (workload.outcomes)
    categories: null                 # category mix / complexity (workload.categories)
    accuracy: null                   # per-(model, category) accuracy table -> outcomes
    signals: null                    # jailbreak / pii / tags / language / ... (workload.signals)

`source` of a trace kind takes `path` and the loader options of `loaders.load_trace` (`format`,
`columns`, `time_unit`, `time_format`, `hash_block_tokens`, `cache`; the record kinds their
own); `kind: synthetic` takes the keys documented in `synthetic`, `kind: sessions` those of
`sessions`, `kind: closed_loop` those of `closed_loop` (which also rejects the transform keys it
cannot honour) and `kind: constant_rate` those of `constant_rate`. The transform keys are applied
in the order documented in `transforms`.

`hash_block_tokens` (top level): null keeps the source's own block size (Mooncake 512, RAGPulse
512, generated ids 16); a value re-blocks a trace's ids, or is the size the `ragpulse`,
`agent_rounds`, `sessions` sources and `prefix_ids` generate ids at. A frame with hash ids
always carries `attrs["hash_block_tokens"]`.

`build_trace` returns the workload as `TraceColumns` (`wrpsim.workload.columns`), what a run
replays: a trace source whose parse is cached and transforms that have a column form (all but
`prefix_ids`, `outcomes`, `categories`, `accuracy`, `signals`) never import pandas.
`build_workload` returns the same workload as the canonical DataFrame.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wrpsim.errors import ConfigError, unknown_choice, unknown_key, vllm_hint, warn
from wrpsim.workload.columns import TraceColumns
from wrpsim.workload.loaders import GENERATING_KINDS, KINDS, load_columns, source_options
from wrpsim.workload.prefix import check_block_tokens
from wrpsim.workload.request import TRACE_COLUMNS
from wrpsim.workload.transforms import TRANSFORM_KEYS, apply_transforms
from wrpsim.workload.validate import validate_columns

if TYPE_CHECKING:
    import pandas as pd

#: Generated sources: kind -> (module, generator function, what it makes). The generators
#: build DataFrames (pandas); a module is imported when its kind is used.
GENERATORS = {
    "closed_loop": ("wrpsim.workload.closed_loop", "generate_closed_loop", "closed-loop clients"),
    "constant_rate": ("wrpsim.workload.constant_rate", "generate_constant_rate",
                      "constant-rate stages"),
    "sessions": ("wrpsim.workload.sessions", "generate_sessions", "synthetic sessions"),
    "synthetic": ("wrpsim.workload.synthetic", "generate", "synthetic workload"),
}
SOURCE_KINDS = tuple(sorted((*KINDS, *GENERATORS)))
TOP_KEYS = ("name", "description", "source", *TRANSFORM_KEYS)


def workloads_dir() -> Path:
    """The `workloads/` catalog directory (see `wrpsim.paths`; falls back to the checkout's)."""
    from wrpsim.paths import catalog_dir

    try:
        return catalog_dir("workloads")
    except ConfigError:
        here = Path(__file__).resolve().parents[2] / "workloads"
        if here.is_dir():
            return here
        raise


def catalog_folders() -> list[Path]:
    """The workload catalog folders: the shipped one, then `$WRPSIM_CATALOG/workloads` when the
    user's catalog has one (a YAML there replaces a shipped one of the same name)."""
    from wrpsim.paths import user_catalog

    dirs = [workloads_dir()]
    user = user_catalog()
    if user is not None and (user / "workloads").is_dir():
        dirs.append(user / "workloads")
    return dirs


def workload_file(name: Any) -> Path | None:
    """The catalog YAML of workload `name` (the user's catalog first), or None."""
    if not isinstance(name, str) or not name or "/" in name:
        return None
    from wrpsim.paths import option_file

    return option_file(catalog_folders(), name)


def name_not_stem(path: Path, declared: Any) -> str | None:
    """The warning for a workload YAML at `path` whose `name:` (`declared`) is not its file stem,
    the option a user types (`workload=<stem>`), else None: a run is labelled by `name`
    (`workload_label`: summary.json, report and sweep tables) and its relative paths are looked
    up beside the YAML that `name` names (`workload_base`), so a copied YAML whose `name:` was
    left as the original's ran as that workload's under its label."""
    stem = Path(path).stem
    if declared == stem:
        return None
    if declared is None:
        return (f"{path}: has no name:, so a run of workload={stem} is labelled '' in its "
                f"results; set name: {stem} in the file")
    other = workload_file(declared)
    beside = (f" and looks its relative paths up beside {other} first" if other is not None
              and other != Path(path) else "")
    return (f"{path}: name: {declared!r} is not the file stem {stem!r}: a run of "
            f"workload={stem} is labelled {declared!r} in its results{beside}; set name: "
            f"{stem} in the file")


def warn_name_not_stem(option: Any, overrides=()) -> None:
    """Warn (`name_not_stem`) when catalog workload `option`'s YAML has another `name:`, unless
    the command line's `overrides` name the run (`workload.name=`, a one-off run's label)."""
    path = workload_file(option)
    if path is None or any(
            str(o).lstrip("+~").startswith("workload.name=") for o in overrides):
        return
    from wrpsim.yamlfast import omegaconf_load

    try:
        node = omegaconf_load(path)
    except Exception:  # (an unreadable YAML is reported where it is composed)
        return
    message = name_not_stem(path, node.get("name") if isinstance(node, dict) else None)
    if message:
        warn(message)


def workload_base(name: Any) -> Path:
    """The folder relative paths of workload `name` resolve against: that of its catalog YAML
    (`workload_file`), else the shipped `workloads/`."""
    path = workload_file(name)
    return path.parent if path is not None else workloads_dir()


def workload_label(cfg: Mapping[str, Any]) -> str:
    """The name a run reports for workload config `cfg`: its `name`, or `<name>:<file name>`
    when its source path is not the one its catalog YAML names (a run on one's own trace that
    overrides only `workload.source.path` keeps the other settings of workload `name`)."""
    cfg = _plain(cfg) or {}
    name = str(cfg.get("name") or "")
    src = cfg.get("source")
    path = src.get("path") if isinstance(src, Mapping) else None
    yaml_file = workload_file(name)
    if not path or yaml_file is None:
        return name
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException
    from yaml import YAMLError

    from wrpsim.yamlfast import omegaconf_load

    try:  # (OmegaConf.load's steps, parsed by libyaml: the composition parsed it already)
        obj = omegaconf_load(yaml_file)
        if obj is not None and not isinstance(obj, (list, dict, str)):
            raise OSError(f"Invalid loaded object type: {type(obj).__name__}")
        node = OmegaConf.create() if obj is None else OmegaConf.create(obj)
        shipped = OmegaConf.to_container(node, resolve=True) or {}
    except (OSError, YAMLError, OmegaConfBaseException):  # reported where it is loaded
        return name
    own = (shipped.get("source") or {}).get("path") if isinstance(shipped, Mapping) else None
    if own is not None and _same_file(yaml_file.parent, str(own), str(path)):
        return name
    return f"{name}:{Path(str(path)).name}"


def _same_file(base: Path, a: str, b: str) -> bool:
    """Whether paths `a` and `b` (relative ones against `base`) name one file, however spelled
    (`./traces/x.csv`, an absolute path, a link)."""
    pa_, pb = (p if (p := Path(x).expanduser()).is_absolute() else base / p for x in (a, b))
    try:
        return pa_.resolve() == pb.resolve()
    except OSError:
        return str(pa_) == str(pb)


def _plain(cfg: Any) -> Any:
    """An OmegaConf DictConfig as a plain resolved dict; anything else unchanged."""
    if type(cfg).__name__ == "DictConfig":
        from omegaconf import OmegaConf

        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def source_keys(kind: Any) -> tuple[str, ...]:
    """The keys `workload.source` takes for source kind `kind` (none for an unknown kind)."""
    if not isinstance(kind, str):
        return ()
    if kind in GENERATORS:
        return tuple(import_module(GENERATORS[kind][0]).SOURCE_KEYS)
    if kind in KINDS:
        return ("kind", "path", *(o for o in source_options(kind)
                                  if not (kind in GENERATING_KINDS and o == "hash_block_tokens")))
    return ()


def misplaced_source_key(key: Any, source: Any) -> bool:
    """Whether `key`, given at the workload's top level where it is unknown, is a key of
    `workload.source` for that source's kind (`workload.concurrency` for a closed loop)."""
    kind = source.get("kind") if isinstance(source, Mapping) else None
    return key in source_keys(kind)


def resolve_data_path(raw: str, field: str, noun: str, folders: list[Path],
                      folders_are: str, short: str) -> Path:
    """The file a workload names (a trace, a length CDF): an absolute path (or `~`) as given;
    `./x` or `../x` in the current directory only (`Path` drops a leading ./, so the text is
    tested); another relative path in the first of `folders` that holds it (a workload's own
    folder first: the shipped files), else in the current directory (a user's `...=my.csv`),
    with a warning when both hold one (`short` names the folders there). `ConfigError` naming
    `field`, the `noun` and where it was looked for (`folders_are` says what the folders are)
    when none does."""
    path = Path(raw).expanduser()
    if raw.startswith(("./", "../", ".\\", "..\\")):
        if not path.exists():
            raise ConfigError(f"{field}: {noun} {raw!r} not found in the current directory "
                              f"{Path.cwd()}")
        return path.resolve()
    if path.is_absolute():
        if not path.exists():
            raise ConfigError(f"{field}: {noun} {raw!r} not found")
        return path
    found = next((f / path for f in folders if (f / path).exists()), None)
    if found is not None:
        if path.exists() and not path.resolve().samefile(found):
            warn(f"{field}: {raw!r} is both {found} ({short}, used) and "
                 f"{path.resolve()} (current directory); write ./{raw} for the current "
                 f"directory's file")
        return found
    if path.exists():
        return path.resolve()
    where = " nor in ".join(str(f) for f in folders)
    raise ConfigError(f"{field}: {noun} {str(path)!r} not found in {where} ({folders_are}) nor "
                      f"in the current directory {Path.cwd()}")


def _source(src: Mapping, seed: int, base: Path, block: int | None) -> tuple[TraceColumns, str]:
    """The trace of `workload.source` and the name errors give it."""
    if not isinstance(src, Mapping):
        raise ConfigError(f"workload.source: expected a mapping with a kind, got {src!r}")
    kind = src.get("kind")
    if kind not in SOURCE_KINDS:
        raise unknown_choice("workload.source.kind", kind, SOURCE_KINDS)
    if kind in GENERATORS:
        module, name, what = GENERATORS[kind]
        gen = getattr(import_module(module), name)
        if kind == "synthetic":
            df = gen(src, seed, base, field="workload.source")
        elif kind == "sessions":
            df = gen(src, seed, block, field="workload.source")
        else:
            df = gen(src, seed, field="workload.source")
        return TraceColumns.from_frame(df), what
    allowed = source_keys(kind)
    options = allowed[2:]
    for key in src:
        if key not in allowed:
            raise unknown_key(f"workload.source.{key}", key, allowed)
    if not src.get("path"):
        raise ConfigError(f"workload.source.path: a trace file is required for kind {kind}")
    base_first = [base, *(f for f in reversed(catalog_folders()) if f != base)]
    path = resolve_data_path(str(src["path"]), "workload.source.path", "trace file", base_first,
                             "the workload catalog folders", "workload catalog")
    opts = {k: src[k] for k in options if src.get(k) is not None}
    if kind in GENERATING_KINDS and block is not None:
        opts["hash_block_tokens"] = block
    try:
        cols = load_columns(path, kind=kind, **opts)
        if "think_s" in cols.columns and "session_id" not in cols.columns:
            warn(f"{path}: the trace has think times (think_s) but no session_id: think "
                 f"times pace the rounds of a session, so without one every row is sent at "
                 f"its arrival_s (map session_id, or ignore the column with "
                 f"++workload.source.columns.think_s=null)")
        return cols, str(path)
    except ConfigError as e:  # the loaders name an option as source.<key> or <key>: the config
        msg = str(e)          # has it under workload.source
        key = re.match(r"\w*", msg).group()
        if key == "source":
            msg = f"workload.{msg}"
        elif key in options or key == "columns":
            msg = f"workload.source.{msg}"
        raise ConfigError(msg) from None


#: a trace longer than this with fewer requests per second than `SPARSE_RPS` is suspect (a
#: millisecond column read as seconds), as is one gap longer than `GAP_S` that is most of it
SPAN_S, SPARSE_RPS, GAP_S = 86_400.0, 0.01, 3_600.0
#: ... and at least DENSE_MIN requests at over DENSE_RPS a second on average (seconds read as
#: milliseconds: 20,000 requests of ten minutes arrived within 0.6 s)
DENSE_MIN, DENSE_RPS = 1_000, 2_000.0


def odd_arrivals(arrival_s, where: str) -> str | None:
    """A warning for arrival times (as replayed: after the transforms) a user most likely did
    not mean, else None: a day or more of trace at under one request per 100 s (milliseconds
    read as seconds: 200 requests became 26 hours), or one request an hour or more away from
    all the others, at either end, that far from them is most of the trace (a mistyped
    timestamp: one `1000000000` made a 200-request trace 31.7 years long, and its cost with
    it). Two batches hours apart are not flagged. (Arrivals too dense: `dense_arrivals`.)"""
    import numpy as np

    a = np.sort(np.asarray(arrival_s, dtype=np.float64))
    if a.size < 3:
        return None
    span = float(a[-1] - a[0])
    for gap, lone, rest in ((a[1] - a[0], a[0], "first"), (a[-1] - a[-2], a[-1], "last")):
        if gap >= GAP_S and gap > 0.5 * span:
            return (f"{where}: the {rest} of {a.size:,} arrivals (at {lone:,.3f} s) is "
                    f"{gap:,.0f} s from all the others, most of the trace's {span:,.0f} s: a "
                    f"mistyped timestamp? The run simulates (and pays for) the whole span")
    if span >= SPAN_S and a.size / span < SPARSE_RPS:
        return (f"{where}: {a.size:,} requests over {span:,.0f} s ({a.size / span:.2g} "
                f"requests/s): if the file's timestamps are milliseconds or microseconds, set "
                f"++workload.source.time_unit=ms (or us)")
    return None


def dense_arrivals(arrival_s, where: str) -> str | None:
    """A warning for a file whose own arrivals (before the transforms: a `rate_scale` is
    meant) come `DENSE_MIN` or more at over `DENSE_RPS` a second on average — seconds read as
    milliseconds put 20,000 requests of ten minutes within 0.6 s — else None."""
    import numpy as np

    a = np.asarray(arrival_s, dtype=np.float64)
    if a.size < DENSE_MIN:
        return None
    span = float(a.max() - a.min())
    if span > 0 and a.size / span <= DENSE_RPS:
        return None
    rate = "all at one instant" if span <= 0 else f"{a.size / span:,.0f} requests/s"
    return (f"{where}: the file's {a.size:,} requests arrive in {span:,.3g} s ({rate}, more "
            f"than an LLM service receives): if its timestamps are seconds, or ms, set "
            f"++workload.source.time_unit=s (or ms) to match")


def build_trace(cfg: Mapping[str, Any], seed: int,
                base_dir: str | Path | None = None) -> TraceColumns:
    """Return the validated canonical trace of workload config `cfg` for run seed `seed`, as
    `TraceColumns` (module docstring: which configs import pandas).

    `cfg` is the plain dict of a workload YAML (a DictConfig is converted). Relative paths are
    resolved against `base_dir` (default: the folder of the catalog YAML named `cfg["name"]`,
    the user's catalog's where it has one, else the shipped `workloads/`). Same `cfg` and `seed`
    give an identical trace. Raises `ConfigError` for unknown keys or kinds (naming the field
    and the valid choices) or bad values, and `TraceError` for bad trace content.
    """
    cfg = _plain(cfg)
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"workload: expected a mapping, got {type(cfg).__name__}")
    for key in cfg:
        if key in TOP_KEYS:
            continue
        if misplaced_source_key(key, cfg.get("source")):
            raise ConfigError(f"workload.{key}: unknown key {key!r}; valid keys: "
                              f"{', '.join(TOP_KEYS)}; did you mean workload.source.{key}?")
        source = cfg.get("source")
        bench = vllm_hint(key, list(source), "workload.source") if isinstance(
            source, Mapping) else ""  # a `vllm bench serve` argument given one level up
        if bench:
            raise ConfigError(f"workload.{key}: unknown key {key!r}; valid keys: "
                              f"{', '.join(TOP_KEYS)}{bench}")
        raise unknown_key(f"workload.{key}", key, TOP_KEYS)
    base = Path(base_dir) if base_dir is not None else workload_base(cfg.get("name"))
    block = cfg.get("hash_block_tokens")
    if block is not None:
        block = check_block_tokens(block, "workload.hash_block_tokens")
    trace, where = _source(cfg.get("source"), int(seed), base, block)
    if cfg["source"]["kind"] == "closed_loop":
        from wrpsim.workload.closed_loop import check_transforms

        check_transforms(cfg)
    if cfg["source"]["kind"] not in GENERATORS:  # the file's own rate, before rate_scale
        dense = dense_arrivals(trace["arrival_s"], where)
        if dense:
            warn(dense)
    try:
        trace = apply_transforms(trace, cfg, int(seed), base).select(TRACE_COLUMNS)
    except ConfigError as e:  # the transforms name their key; the config has it under workload
        key = re.match(r"\w*", str(e)).group()  # the message's first word: its key, if any
        raise ConfigError(f"workload.{e}" if key in TRANSFORM_KEYS else str(e)) from None
    if len(trace) == 0:
        raise ConfigError(f"workload {cfg.get('name', '?')}: no request left after the "
                          "transforms (check start_s/end_s, sample_fraction, max_requests)")
    if cfg["source"]["kind"] not in GENERATORS:  # a file's timestamps, as the run replays them
        odd = odd_arrivals(trace["arrival_s"], where)
        if odd:
            warn(odd)
    return validate_columns(trace, source=where)


def build_workload(cfg: Mapping[str, Any], seed: int,
                   base_dir: str | Path | None = None) -> pd.DataFrame:
    """`build_trace` as the canonical DataFrame (same contract and errors)."""
    return build_trace(cfg, seed, base_dir).to_frame()


def list_workloads(base_dir: str | Path | None = None) -> list[str]:
    """Names (file stems) of the workload YAMLs in `base_dir`, else in the catalog (shipped and
    the user's `$WRPSIM_CATALOG/workloads`), sorted."""
    dirs = [Path(base_dir)] if base_dir is not None else catalog_folders()
    return sorted({p.stem for d in dirs for p in d.glob("*.yaml")})


def load_workload(name: str, seed: int = 0, base_dir: str | Path | None = None,
                  **overrides: Any) -> pd.DataFrame:
    """Build catalog workload `name` (a YAML stem; the user's catalog `$WRPSIM_CATALOG` is
    searched too unless `base_dir` is given) with flat key `overrides` applied. Relative paths
    resolve against the folder of the YAML."""
    from omegaconf import OmegaConf

    names = list_workloads(base_dir)
    if name not in names:
        raise unknown_choice("workload", name, names)
    base = Path(base_dir) if base_dir is not None else workload_base(name)
    cfg = OmegaConf.to_container(OmegaConf.load(base / f"{name}.yaml"), resolve=True)
    odd = name_not_stem(base / f"{name}.yaml", cfg.get("name"))
    if odd:
        warn(odd)
    cfg.update(overrides)
    return build_workload(cfg, seed, base)
