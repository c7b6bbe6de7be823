"""A second source for the GEMM tables: Vidur's per-operator profiles (microsoft/vidur @ 7d47513,
`data/profiling/compute/{h100,a100}/<model>/mlp.csv`, MIT; 2024 PyTorch kernels) against the
H100 and A100 GEMM tables of engine vllm-0.24 (AIConfigurator; docs/validation.md, "A second
source for the GEMM tables").

Run from the repository root, given a copy of Vidur's `data/profiling/compute` folder:

    python docs/experiments/vidur_gemm_check.py /path/to/vidur/data/profiling/compute

Every row of every `mlp.csv` (one layer of a model at `num_tokens` tokens and TP degree) gives
four projection GEMMs (QKV = `attn_pre_proj`, O = `attn_post_proj`, gate/up = `mlp_up_proj`,
down = `mlp_down_proj`; median times, ms); each is timed by `Kernels.gemm` at the same (m, n, k)
in BF16. Prints, per GPU, the number of GEMMs and the median absolute and signed error (%;
negative: the tables are faster than Vidur measured), for m <= 64 and m > 64. Writes nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from wrpsim.pool.engines import get_engine, kernels_for

GPUS = {"h100": "h100-80gb", "a100": "a100-80gb"}
OPS = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")


def shapes(r) -> dict[str, tuple[int, int]]:
    """(n, k) of the four projections on one GPU of the row's TP degree."""
    tp, h = int(r["num_tensor_parallel_workers"]), int(r["n_embd"])
    hd = h // int(r["n_head"])
    q, kv = int(r["n_head"]) // tp, max(1, int(r["n_kv_head"]) // tp)
    inter = int(r["n_expanded_embd"]) // tp
    up = (2 if r["use_gated_mlp"] else 1) * inter
    return {"attn_pre_proj": ((q + 2 * kv) * hd, h), "attn_post_proj": (h, q * hd),
            "mlp_up_proj": (up, h), "mlp_down_proj": (h, inter)}


def errors(compute_dir: Path, vidur_gpu: str) -> pd.DataFrame:
    k = kernels_for(get_engine("vllm-0.24"), GPUS[vidur_gpu])
    rows = []
    for f in sorted(compute_dir.glob(f"{vidur_gpu}/*/*/mlp.csv")):
        for _, r in pd.read_csv(f).iterrows():
            m = int(r["num_tokens"])
            for op, (n, kk) in shapes(r).items():
                pred_ms = float(k.gemm("bf16", n, kk)(m)) * 1e3
                rows.append((f.parent.name, m, op, (pred_ms / r[f"time_stats.{op}.median"] - 1)
                             * 100))
    return pd.DataFrame(rows, columns=["model", "m", "op", "err"])


def main() -> None:
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit("usage: python docs/experiments/vidur_gemm_check.py VIDUR_COMPUTE_DIR")
    root = Path(sys.argv[1])
    print("| GPU | GEMMs | median abs / signed, m <= 64 | m > 64 | all |")
    print("|---|---|---|---|---|")
    for vg, g in GPUS.items():
        e = errors(root, vg)
        if e.empty:
            continue
        cells = []
        for sel in (e["m"] <= 64, e["m"] > 64, np.ones(len(e), bool)):
            x = e.loc[sel, "err"]
            cells.append(f"{x.abs().median():.1f} / {x.median():+.1f}")
        print(f"| {g} | {len(e)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
