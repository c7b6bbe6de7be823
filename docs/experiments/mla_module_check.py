"""The MLA layer composed from GEMM and attention tables against the measured MLA module
(docs/validation.md, "MLA attention"): the figures quoted there, from the shipped tables only.

Run from the repository root:

    python docs/experiments/mla_module_check.py

For DeepSeek-V3 on H100, H200 and B200 (engine vllm-0.24) at 16, 64 and 128 heads per GPU (TP
8, 2, 1), BF16 KV and FP8-block projections, prints per measured cell the module's time
(`mla_decode` / `mla_prefill` tables, AIConfigurator) and the composition wrpsim used before
them — the four projection GEMMs at the cell's tokens plus the attention tables moved to MLA's
head layout (`attention.composed_mla_grids`) — and their ratio; then the module's smallest
measured time at one head per GPU (batch 1), the fixed part the model does not take. Writes
nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from wrpsim.pool.engines import build_latency_model
from wrpsim.pool.kernels import attention, operators

GPUS = ("h100-80gb", "h200-141gb", "b200-180gb")
DECODE = [(b, s) for b in (1, 8, 32, 128) for s in (1024, 8192)]
PREFILL = [(b, s) for b in (1, 4) for s in (512, 2048, 8192)]


def _at(grid, b: float, s: float) -> float:
    return float(np.interp(s, grid.s, grid.row(b)))


def main() -> None:
    for gpu in GPUS:
        for tp in (8, 2, 1):
            lat = build_latency_model("deepseek-v3", gpu, tp, precision="fp8_block",
                                      kv_dtype="bf16")
            k, heads = lat.kernels, 128 // tp
            pre_c, dec_c = attention.composed_mla_grids(lat)
            for phase, cells, comp in (("decode", DECODE, dec_c), ("prefill", PREFILL, pre_c)):
                grid, gemm = k.mla(phase, "bf16", "fp8_block", heads)
                curves = [k.gemm(gemm, n, kk) for n, kk in operators.mla_projections(lat)]
                rows = []
                for b, s in cells:
                    tokens = b if phase == "decode" else b * s
                    proj = sum(float(c(tokens)) for c in curves)
                    meas, composed = _at(grid, b, s), proj + _at(comp, b, s)
                    rows.append(f"b{b} s{s}: {meas * 1e6:.0f} / {composed * 1e6:.0f} us "
                                f"({composed / meas:.2f})")
                print(f"{gpu} heads {heads:3d} {phase:7s} measured / composed: "
                      + "; ".join(rows))
        one = lat.kernels.mla("decode", "bf16", "bf16", 1)
        if one is not None:
            print(f"{gpu}: module at one head, batch 1, shortest context: "
                  f"{one[0].t[0, 0] * 1e6:.0f} us (BF16 projections)")


if __name__ == "__main__":
    main()
