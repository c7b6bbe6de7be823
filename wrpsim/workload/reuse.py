"""Hash ids for traces that lack them: the `prefix_ids:` transform (session | synthetic).

Both modes replace the frame's `hash_ids` by prefix-consistent, deterministic ids at block size
B (the workload's `hash_block_tokens`, else the trace's own, else 16) and set
`attrs["hash_block_tokens"] = B`. Requests are taken in row (arrival) order. Every id list is a
prefix of an earlier list (or of a system prompt's list) followed by fresh ids, so equal ids
always mean equal prefixes.

`session` — multi-turn sessions from the `session_id` column (required). A session's turn t
extends the previous turn t-1 when it is longer (P_t > P_{t-1}): its prompt is the previous
prompt, the previous output (when P_t >= P_{t-1} + O_{t-1}; reasoning tokens that are not sent
back make it shorter) and new tokens, so it shares the previous turn's first floor(P_{t-1} / B)
blocks (an engine caches prompt blocks, so those are what a hit can reuse). A turn no longer
than the previous prompt cannot continue it (the context was truncated or restarted): it gets
fresh ids and starts a new chain. Rows without a session_id get fresh ids.

`synthetic` — a reuse model for traces with neither ids nor sessions (e.g. Azure), parameters
in `prefix_reuse:` (defaults in `REUSE_DEFAULTS`), draws from the named stream
`workload.prefix` (four independent uniform/choice draws per request, always all drawn, so
changing one parameter keeps the other draws). For request i with P_i prompt tokens:

- with probability `continue_prob` (q; never for the first request) it continues request j,
  drawn uniformly among the previous `continue_window` (W) requests: it shares j's first
  floor(min(P_j, P_i - 1) / B) blocks, and joins j's session;
- otherwise, with probability `share` (f), it starts with system prompt k of `tokens` (N) tokens,
  k drawn from `prefixes` (K) prompts with Zipf popularity p_k ∝ (k+1)^-s (`zipf_s`), and
  shares that prompt's first min(floor(N / B), floor((P_i - 1) / B)) blocks;
- otherwise all its ids are fresh.

A session_id column is added (continuation chains share it) when q > 0 and the trace has none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from wrpsim.errors import ConfigError, finite_number, unknown_choice
from wrpsim.rng import stream
from wrpsim.workload.prefix import IdMinter, n_blocks, set_block_tokens
from wrpsim.workload.request import TRACE_COLUMNS

MODES = ("session", "synthetic")
REUSE_DEFAULTS: dict[str, float | int] = {
    "share": 0.5, "tokens": 1024, "prefixes": 8, "zipf_s": 1.0, "continue_prob": 0.0,
    "continue_window": 16,
}
#: (low, high) of each key; the counts' highs are far past any workload (a prefix count of
#: 1e21 asked numpy for that many Zipf weights)
_LIMITS = {"share": (0.0, 1.0), "continue_prob": (0.0, 1.0), "zipf_s": (0.0, None),
           "tokens": (1, 10_000_000), "prefixes": (1, 10_000_000),
           "continue_window": (1, 10_000_000)}
_INTEGERS = ("tokens", "prefixes", "continue_window")


def reuse_params(spec: Mapping[str, Any] | None, field: str = "prefix_reuse") -> dict[str, Any]:
    """`REUSE_DEFAULTS` updated by `spec` (the `prefix_reuse:` mapping), checked; errors name
    `field`."""
    if spec is not None and not isinstance(spec, Mapping):
        raise ConfigError(f"{field}: expected a mapping like {{share: 0.5, tokens: 1024}}, "
                          f"got {spec!r}")
    out = dict(REUSE_DEFAULTS)
    for key, v in (spec or {}).items():
        if key not in REUSE_DEFAULTS:
            raise unknown_choice(f"{field}.{key}", key, REUSE_DEFAULTS)
        if v is None:
            continue
        low, high = _LIMITS[key]
        ok = finite_number(v)
        ok = ok and v >= low and (high is None or v <= high)
        if key in _INTEGERS:
            ok = ok and float(v).is_integer()
        if not ok:
            rng = f"in [{low}, {high:,}]" if high is not None else f">= {low}"
            kind = "an integer" if key in _INTEGERS else "a number"
            raise ConfigError(f"{field}.{key} must be {kind} {rng}, got {v!r}")
        out[key] = int(v) if key in _INTEGERS else float(v)
    return out


def session_ids(df: pd.DataFrame, block: int) -> pd.DataFrame:
    """`df` with session-chained hash ids (mode `session`, module docstring)."""
    if "session_id" not in df.columns:
        raise ConfigError("prefix_ids: session needs a session_id column and this trace has "
                          "none; use prefix_ids: synthetic")
    minter, last = IdMinter(), {}
    prompt = df["prompt_tokens"].tolist()
    out: list[list[int]] = []
    for i, s in enumerate(df["session_id"].tolist()):
        prev = last.get(s) if s is not None else None
        if prev is not None and prompt[i] > prompt[prev]:
            ids = minter.chain(out[prev], prompt[prev], prompt[i], block)
        else:
            ids = minter.fresh(n_blocks(prompt[i], block))
        out.append(ids)
        last[s] = i
    res = df.copy()
    res["hash_ids"] = pd.Series(out, dtype=object)
    return set_block_tokens(res, block)


def zipf_weights(k: int, s: float) -> np.ndarray:
    """Popularity of K prefixes: p_k = (k+1)^-s / sum_j (j+1)^-s, k = 0..K-1."""
    w = np.arange(1, k + 1, dtype=np.float64) ** -s
    return w / w.sum()


def synthetic_ids(df: pd.DataFrame, block: int, params: Mapping[str, Any],
                  rng: np.random.Generator) -> pd.DataFrame:
    """`df` with ids from the synthetic reuse model (mode `synthetic`, module docstring)."""
    n, p = len(df), params
    u_cont, back, u_share = rng.random(n), rng.random(n), rng.random(n)
    pick = rng.choice(int(p["prefixes"]), size=n, p=zipf_weights(int(p["prefixes"]), p["zipf_s"]))
    per = int(p["tokens"]) // block
    minter = IdMinter(int(p["prefixes"]) * per)
    prompt = df["prompt_tokens"].tolist()
    root = list(range(n))
    out: list[list[int]] = []
    for i in range(n):
        if i > 0 and u_cont[i] < p["continue_prob"]:
            j = i - 1 - int(back[i] * min(int(p["continue_window"]), i))
            ids = minter.chain(out[j], min(prompt[j], prompt[i] - 1), prompt[i], block)
            root[i] = root[j]
        elif u_share[i] < p["share"]:
            m = min(per, (prompt[i] - 1) // block)
            head = range(int(pick[i]) * per, int(pick[i]) * per + m)
            ids = minter.chain(head, m * block, prompt[i], block)
        else:
            ids = minter.fresh(n_blocks(prompt[i], block))
        out.append(ids)
    res = df.copy()
    res["hash_ids"] = pd.Series(out, dtype=object)
    if p["continue_prob"] > 0 and "session_id" not in res.columns:
        res["session_id"] = pd.Series([f"s{r}" for r in root], dtype=object)
        res = res[[c for c in TRACE_COLUMNS if c in res.columns]]
    return set_block_tokens(res, block)


def apply_prefix_ids(df: pd.DataFrame, mode: str, reuse: Mapping[str, Any] | None, block: int,
                     seed: int) -> pd.DataFrame:
    """Dispatch `prefix_ids: mode` (session | synthetic) at block size `block`."""
    if mode not in MODES:
        raise unknown_choice("prefix_ids", mode, MODES)
    if mode == "session":
        return session_ids(df, block)
    return synthetic_ids(df, block, reuse_params(reuse), stream(seed, "workload.prefix"))
