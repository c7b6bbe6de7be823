"""How wrpsim times an attention layout its kernel tables did not measure, checked on the tables
(docs/validation.md, "Attention layouts the tables lack").

A GPU's decode-attention table (AIConfigurator's, `pools/catalog/engines/vllm-0.24/<gpu>/
attn_decode.parquet`) measures layouts of up to 8 KV heads a GPU; a model with more (Llama-2-7B
and other multi-head-attention models: 32 at TP 1) is timed from a measured one. Two rules:

- `nearest`: the nearest measured layout (log distance in heads, KV heads and 4 x head width)
  at the same batch, the time above the kernel's fixed latency scaled by the ratio of the two
  layouts' roofline times (KV bytes) — wrpsim's rule until 2026-12-06;
- `per-batch`: the measured layout with the same query heads per KV head and head width, at
  `kv_heads / its KV heads` times the batch — the kernels' work items are (sequence, KV head)
  pairs, so b sequences of k x the KV heads are k x b sequences of the measured layout
  (`wrpsim.pool.kernels.tables._attn_layout`; falls back to `nearest` where no such layout
  was measured).

Every measured layout with 8 KV heads is held out (removed from the table with every layout
of more than 4, or more than 2, KV heads: extrapolating by 2 x or 4 x the KV heads, as
Llama-2-7B's 32 at TP 1 are 4 x the table's 8), timed from the rest by both rules, and
compared with its own measured cells
(those of at least 20 us, where the time is the kernel's work, not its launch), per GPU: median
and 90th-percentile absolute error, and the median signed (positive: the rule slower).

    python docs/experiments/attention_layout_check.py [prefill]

`prefill`: the same for the prefill-attention table (which measures up to 64 KV heads).
About 5 s on 2 cores.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from wrpsim.pool.catalog import gpus
from wrpsim.pool.kernels import tables as T

ROOT = Path(__file__).resolve().parents[2] / "pools/catalog/engines/vllm-0.24"
GPUS = ("h100-80gb", "h200-141gb", "b200-180gb", "a100-80gb", "l40s-48gb")
HELD_KV = 8
MIN_S = 20e-6


#: wrpsim's layout rule, which `check` replaces in turn by the two below
_attn_layout = T._attn_layout


def _nearest(cfgs, heads, kv_heads, head_dim, same_ratio=False):
    """The `nearest` rule, for either table: `_attn_layout` without its same-ratio branch."""
    return _attn_layout(cfgs, heads, kv_heads, head_dim, same_ratio=False)


def _per_batch(cfgs, heads, kv_heads, head_dim, same_ratio=False):
    """The `per-batch` rule, for either table."""
    return _attn_layout(cfgs, heads, kv_heads, head_dim, same_ratio=True)


def check(gpu: str, table: str, known_kv: int) -> dict:
    """Errors of both rules on `gpu`'s held-out layouts, timed from the layouts of at most
    `known_kv` KV heads (see module doc)."""
    size = "ctx" if table == "attn_decode" else "isl"
    cols = T.read_cols(ROOT / gpu / f"{table}.parquet")
    cols = cols.where((cols["window"] == 0) & (cols["kv_dtype"] == "bf16"))
    held = cols.where(cols["kv_heads"] == HELD_KV)
    rest = cols.where(cols["kv_heads"] <= known_kv)
    layouts = np.unique(np.stack([held["heads"], held["kv_heads"], held["head_dim"]], axis=1),
                        axis=0)
    out = {}
    for name, rule in (("nearest", _nearest), ("per-batch", _per_batch)):
        errs = []
        saved, T._attn_layout = T._attn_layout, rule
        try:
            k = T.Kernels(ROOT / gpu, gpus()[gpu])
            k._cache[table] = rest
            for h, kvh, d in layouts:
                grid = k._attn(table, "bf16", int(h), int(kvh), int(d))
                m = held.where((held["heads"] == h) & (held["head_dim"] == d))
                for b, s, ms in zip(m["batch"], m[size], m["ms"]):
                    if ms * 1e-3 < MIN_S:
                        continue
                    t = float(np.interp(float(s), grid.s, grid.row(float(b))))
                    errs.append(t / (ms * 1e-3) - 1.0)
        finally:
            T._attn_layout = saved
        e = np.array(errs)
        out[name] = (len(e), 100 * np.median(np.abs(e)), 100 * np.percentile(np.abs(e), 90),
                     100 * np.median(e))
    return out


def main(table: str) -> None:
    print(f"{table}: layouts with {HELD_KV} KV heads held out")
    print("| GPU | timed from | cells | nearest: median / p90 / signed % | "
          "per-batch: median / p90 / signed % |")
    print("|---|---|---|---|---|")
    for known in (4, 2):
        for gpu in GPUS:
            r = check(gpu, table, known)
            n = r["nearest"][0]
            cells = [" / ".join(f"{v:+.1f}" if i == 2 else f"{v:.1f}"
                                for i, v in enumerate(r[k][1:]))
                     for k in ("nearest", "per-batch")]
            print(f"| {gpu} | ≤ {known} KV heads | {n} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main("attn_prefill" if sys.argv[1:] == ["prefill"] else "attn_decode")
