"""Answer quality carried by the workload: replayed per-prompt outcomes and accuracy tables.

A request's `outcomes` is a mapping {model: correctness in [0, 1]}: 1/0 where a real per-prompt
outcome is replayed, an expected accuracy where only a per-(model, category) table is known. The
quality metrics (`wrpsim.metrics.quality`) and the routers that learn from feedback read it; a
router never sees it before it decides unless its own predictor is told to (see
`wrpsim.router.predict`).

Transform `outcomes:` joins a per-prompt outcomes file (RouteLLM's evaluation results) onto the
trace, one file row per request::

    outcomes:
      path: ../routers/data/routellm_outcomes_mixtral_vs_gpt4.csv  # relative to workloads/
      models: {small: mixtral-8x7b, large: gpt4-class}  # file column correct_<key> -> model
      chars_per_token: 4.0        # prompt tokens = ceil(prompt_chars / ratio) + overhead
      prompt_overhead_tokens: 0
      prompt: outcomes            # outcomes: prompt length from the file | trace: keep the trace's
      output: null                # null: keep the trace's | {benchmark: fitted dist spec}
      order: shuffle              # shuffle (stream workload.outcomes) | file
      split: null                 # null: every row | a value of the file's `split` column

The file needs `category`, `prompt_chars` and the `correct_<key>` columns (`benchmark` when
`output` is given). Requests take the file's rows in a random permutation (`order: shuffle`) or
in file order; a trace longer than the file starts a new permutation when one is used up.
`split: test` keeps only the file rows whose `split` column is `test` (a router fitted on the
`train` rows is then evaluated on prompts it was not fitted on); without it every row is used.
The 4 characters per token ratio is OpenAI's rule of thumb for English text (tiktoken averages
≈ 4 characters per token on English prose).

Transform `accuracy:` (a path, or a mapping with `path`) fills `outcomes` from a per-(model,
category) accuracy table for requests that have none (`read_accuracy` for the formats).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wrpsim.errors import ConfigError, integer, number, unknown_choice
from wrpsim.workload.lengths import draw_dist

OUTCOME_KEYS = ("path", "models", "chars_per_token", "prompt_overhead_tokens", "prompt", "output",
                "order", "split")


def _path(value: Any, base: Path, field: str) -> Path:
    if not value or not isinstance(value, (str, Path)):
        raise ConfigError(f"{field}: a file path is required, got {value!r}")
    p = Path(str(value)).expanduser()
    p = p if p.is_absolute() else base / p
    if not p.is_file():
        raise ConfigError(f"{field}: file not found: {p}")
    return p


def in_unit(value: Any) -> bool:
    """Whether `value` is a correctness score: a number (not a bool) in [0, 1]."""
    return (isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, (bool, np.bool_)) and 0.0 <= value <= 1.0)


def read_accuracy(path: str | Path) -> dict[str, dict[str, float]]:
    """Per-(model, category) accuracy: {model: {category: accuracy}} (category "*": default).

    CSV: a `category` (or `domain`) column, an optional `n` column, and one column per model
    named by its catalog name. YAML: ``{models: {model: {category: acc}}, default: {model:
    acc}}``. Accuracies must lie in [0, 1].
    """
    path = Path(path)
    table: dict[str, dict[str, Any]] = {}
    if path.suffix in (".yaml", ".yml"):
        import yaml

        from wrpsim.errors import check_keys, yaml_error

        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(yaml_error(path, exc)) from None
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{path}: an accuracy file must be a mapping with keys models, "
                              f"default, got a {type(raw).__name__}")
        check_keys(raw, ("models", "default"), str(path))
        models, default = raw.get("models") or {}, raw.get("default") or {}
        if not isinstance(models, Mapping) or not isinstance(default, Mapping):
            raise ConfigError(f"{path}: models must map model -> {{category: accuracy}} and "
                              f"default model -> accuracy")
        for model, cats in models.items():
            if not isinstance(cats or {}, Mapping):
                raise ConfigError(f"{path}: models.{model} must map category -> accuracy, "
                                  f"got {cats!r}")
            table[str(model)] = {str(c): a for c, a in (cats or {}).items()}
        for model, acc in default.items():
            table.setdefault(str(model), {})["*"] = acc
    else:
        df = pd.read_csv(path)
        key = "category" if "category" in df.columns else "domain"
        if key not in df.columns:
            raise ConfigError(f"{path}: an accuracy table needs a category column")
        for col in df.columns:
            if col in (key, "n"):
                continue
            num = pd.to_numeric(df[col], errors="coerce")
            table[str(col)] = {c: (float(v) if np.isfinite(v) else raw_v) for c, v, raw_v
                               in zip(df[key].astype(str), num, df[col])}
    for model, cats in table.items():
        for cat, acc in cats.items():
            if isinstance(acc, str):  # YAML reads '0.7' quoted, or 5e-1, as text
                try:
                    acc = float(acc)
                except ValueError:
                    pass
            if not in_unit(acc):
                raise ConfigError(f"{path}: accuracy of {model} on {cat} must be a number in "
                                  f"[0, 1], got {acc!r}")
            cats[cat] = float(acc)
    return table


def lookup(table: Mapping[str, Mapping[str, float]], model: str, category: str | None,
           default: float | None = None) -> float | None:
    """Accuracy of `model` on `category` from a `read_accuracy` table (its "*" row, else
    `default`, when the category is missing)."""
    cats = table.get(model)
    if cats is None:
        return default
    if category is not None and category in cats:
        return cats[category]
    return cats.get("*", default)


def join_outcomes(df: pd.DataFrame, spec: Mapping, rng: np.random.Generator,
                  base: Path) -> pd.DataFrame:
    """The trace with per-prompt outcomes joined on (see the module docstring)."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"outcomes: expected a mapping with keys {', '.join(OUTCOME_KEYS)}")
    for key in spec:
        if key not in OUTCOME_KEYS:
            raise unknown_choice(f"outcomes.{key}", key, OUTCOME_KEYS)
    src = pd.read_csv(_path(spec.get("path"), base, "outcomes.path"))
    split = spec.get("split")
    if split is not None:
        if "split" not in src.columns:
            raise ConfigError("outcomes.split: the outcomes file has no split column")
        values = sorted(src["split"].astype(str).unique())
        if str(split) not in values:
            raise unknown_choice("outcomes.split", split, values)
        src = src[src["split"].astype(str) == str(split)]  # (its index: the file's rows)
    models = spec.get("models")
    if not isinstance(models, Mapping) or not models:
        raise ConfigError("outcomes.models: map each correct_<key> column to a model name")
    for k, mod in models.items():
        if not isinstance(mod, str) or not mod.strip():
            raise ConfigError(f"outcomes.models.{k}: a model name (catalog name), got {mod!r}")
    for col in ("category", "prompt_chars", *(f"correct_{k}" for k in models)):
        if col not in src.columns:
            raise ConfigError(f"outcomes.path: column {col} missing; found "
                              f"{', '.join(src.columns)}")
    where = f"outcomes.path ({spec.get('path')})"
    file_rows = src.index.to_numpy()  # (0-based data rows of the file, before the split filter)
    src = src.reset_index(drop=True)
    if src.empty:
        raise ConfigError(f"{where}: the file holds no rows")
    _check_column(src, "prompt_chars", where, file_rows, lo=0.0, hi=None)
    for k in models:  # a score per prompt: 0 / 1 (or true / false), or a fraction in between
        _check_column(src, f"correct_{k}", where, file_rows, lo=0.0, hi=1.0)
    ratio = number("outcomes.chars_per_token", spec.get("chars_per_token", 4.0), 0.0,
                   strict_lo=True, finite=True)
    overhead = integer("outcomes.prompt_overhead_tokens", spec.get("prompt_overhead_tokens", 0),
                       0)
    order = spec.get("order", "shuffle")
    if order not in ("shuffle", "file"):
        raise unknown_choice("outcomes.order", order, ("file", "shuffle"))
    n, m = len(df), len(src)
    if n == 0:  # (no request left after the time window: `build_trace` says so)
        return df
    if order == "file":
        idx = np.arange(n) % m
    else:
        idx = np.concatenate([rng.permutation(m) for _ in range(-(-n // m))])[:n]
    rows = src.iloc[idx].reset_index(drop=True)
    out = df.copy()
    out["category"] = pd.Series(rows["category"].astype(str).tolist(), dtype=object)
    prompt_mode = spec.get("prompt", "outcomes")
    if prompt_mode not in ("outcomes", "trace"):
        raise unknown_choice("outcomes.prompt", prompt_mode, ("outcomes", "trace"))
    if prompt_mode == "outcomes":
        chars = rows["prompt_chars"].to_numpy(dtype=np.float64)
        out["prompt_tokens"] = (np.ceil(chars / ratio) + overhead).clip(1).astype(np.int64)
        if "hash_ids" in out.columns:
            out = out.drop(columns=["hash_ids"])
    if spec.get("output") is not None:
        out["output_tokens"] = _outputs(rows, spec["output"], rng)
    cols = {str(mod): rows[f"correct_{k}"].astype(float).to_numpy() for k, mod in models.items()}
    out["outcomes"] = pd.Series([{k: float(v[i]) for k, v in cols.items()} for i in range(n)],
                                dtype=object)
    return out


def _check_column(src: pd.DataFrame, col: str, where: str, file_rows: np.ndarray, lo: float,
                  hi: float | None) -> None:
    """Every cell of `col` a finite number in [lo, hi] (true / false read as 1 / 0), else one
    line naming the file's line (`file_rows`: each row's 0-based data row in the file; the
    header is line 1)."""
    vals = src[col]
    if vals.dtype == bool:
        vals = vals.astype(np.float64)
    elif not pd.api.types.is_numeric_dtype(vals):  # 'True' / 'False' beside numbers: text
        vals = vals.map(lambda v: {"true": 1.0, "false": 0.0}.get(str(v).strip().lower(), v))
    num = pd.to_numeric(vals, errors="coerce").astype(np.float64)
    bad = ~np.isfinite(num) | (num < lo) | ((num > hi) if hi is not None else False)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        rule = f"in [{lo:g}, {hi:g}] (or true / false)" if hi is not None else f">= {lo:g}"
        got = src[col].iloc[i]
        got = repr(got) if isinstance(got, str) else f"{got}"
        raise ConfigError(f"{where}: line {int(file_rows[i]) + 2}: {col} must be a number "
                          f"{rule}, got {got}")
    src[col] = num


def _outputs(rows: pd.DataFrame, spec: Any, rng: np.random.Generator) -> np.ndarray:
    if not isinstance(spec, Mapping) or "benchmark" not in rows.columns:
        raise ConfigError("outcomes.output: expected {benchmark: {dist: ...}} and a benchmark "
                          "column in the file")
    bench = rows["benchmark"].astype(str).to_numpy()
    out = np.ones(len(rows), dtype=np.int64)
    for name in sorted(set(bench)):
        if name not in spec:
            raise ConfigError(f"outcomes.output: no length distribution for benchmark {name!r}; "
                              f"given: {', '.join(sorted(spec))}")
        sel = bench == name
        out[sel] = draw_dist(spec[name], rng, int(sel.sum()), f"outcomes.output.{name}")
    return out


def expected_outcomes(df: pd.DataFrame, spec: Any, base: Path) -> pd.DataFrame:
    """Fill `outcomes` from an accuracy table for rows without outcomes (needs `category`)."""
    path = spec.get("path") if isinstance(spec, Mapping) else spec
    table = read_accuracy(_path(path, base, "accuracy"))
    models = sorted(table)
    cats = df["category"].tolist() if "category" in df.columns else [None] * len(df)
    have = df["outcomes"].tolist() if "outcomes" in df.columns else [None] * len(df)
    filled = []
    for cat, o in zip(cats, have):
        if o is None:
            o = {m: a for m in models if (a := lookup(table, m, cat)) is not None} or None
        filled.append(o)
    out = df.copy()
    out["outcomes"] = pd.Series(filled, dtype=object)
    return out
