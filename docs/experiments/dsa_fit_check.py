"""DeepSeek Sparse Attention's fitted constants against the measured module they are fitted
to, with held-out cells (docs/validation.md, "DeepSeek Sparse Attention against its measured
module").

For each GPU whose shipped tables measured DeepSeek-V3.2's attention module (vLLM 0.24: H100,
H200, B200), each KV dtype and each head count a GPU holds at TP 8 / 4 / 2 (16 / 32 / 64
heads), the prompt cells of `DSA_FIT_MIN_TOKENS` tokens and more are split by batch: the fit
(`dsa_prefill_fit`: seconds per top-k slot, per picked key, per scored pair) is made on the
batches 1, 4, 16, 64, 256 and tested on 2, 8, 32, 128, whose cells it never saw; the shipped
model fits on all. Printed per case: the median and 90th percentile of the absolute error
of the held-out fit on the held-out cells and of the shipped fit on every fitted cell (the
largest errors are cells whose measured growth is small: the module's time there is mostly
its own launches); the held-out median / 90th percentile over the cells that grew by 1 ms or
more; then the decode indexer's growth from 2,048 to the longest measured context at
batches 1 / 8 / 64 / 256 (the model's per-batch slope against the measured module). A few
seconds on 2 cores.

    python docs/experiments/dsa_fit_check.py
"""

from __future__ import annotations

import statistics

import numpy as np

from wrpsim.pool.catalog import get_gpu, get_model
from wrpsim.pool.engines import get_engine, kernels_for
from wrpsim.pool.kernels import attention
from wrpsim.pool.kernels.attention import (
    DSA_FIT_MIN_TOKENS,
    dsa_prefill_fit,
    dsa_prefill_terms,
)
from wrpsim.pool.kernels.model import EngineConstants, KernelLatency

FIT_BATCHES = (1, 4, 16, 64, 256)


def _errors(pre, coef, mask, least: float = 0.0) -> list[float]:
    """Absolute % errors of `coef`'s terms against the grid's growth on `mask`'s cells (those
    whose growth is at least `least` seconds)."""
    bp, sp = np.meshgrid(pre.b, pre.s, indexing="ij")
    mask = mask & (pre.t - pre.t[0, 0] >= least)
    grow = (pre.t - pre.t[0, 0])[mask]
    model = dsa_prefill_terms(bp[mask], sp[mask], 2048.0) @ coef
    return [100.0 * abs(m / g - 1.0) for m, g in zip(model, grow) if g > 0]


def main() -> None:
    m = get_model("deepseek-v3.2")
    print("| GPU | KV | heads a GPU | held-out fit on held-out cells: median / p90 | shipped "
          "fit on its cells: median / p90 | held-out, cells of >= 1 ms | decode growth 2k -> "
          "longest, model vs measured, batch 1 / 8 / 64 / 256 |")
    print("|---|---|---|---|---|---|---|")
    held_all, fit_all = [], []
    for gpu in ("h100-80gb", "h200-141gb", "b200-180gb"):
        kernels = kernels_for(get_engine("vllm-0.24"), gpu)
        for kv in ("auto", "fp8"):
            for tp in (8, 4, 2):
                try:
                    lat = KernelLatency(m, get_gpu(gpu), tp, kernels, EngineConstants(),
                                        precision="fp8_block", kv_dtype=kv)
                except Exception:  # (does not fit the GPUs at this tp)
                    continue
                if not lat._dsa_tables:
                    continue
                pre, _ = attention.mla_module_grids(lat, "dsa")
                bp, sp = np.meshgrid(pre.b, pre.s, indexing="ij")
                cells = (np.ones(bp.shape, bool) if pre.measured is None
                         else pre.measured) & (bp * sp >= DSA_FIT_MIN_TOKENS)
                fit_rows = np.isin(bp, FIT_BATCHES)
                held = dsa_prefill_fit(pre, 2048.0, use=fit_rows)
                e_held = _errors(pre, held, cells & ~fit_rows)
                e_big = _errors(pre, held, cells & ~fit_rows, least=1e-3)
                shipped = np.array([lat._dsa_pair, lat._dsa_pick, lat._idx_pre]) / 61
                e_fit = _errors(pre, shipped, cells)
                held_all += e_held
                fit_all += e_fit
                dec, _ = kernels.dsa("decode", "fp8" if kv == "fp8" else "bf16", "fp8_block",
                                     128 // tp)
                top = float(dec.s[-1])
                dg = []
                for b in (1, 8, 64, 256):
                    want = float(np.interp(top, dec.s, dec.row(float(b)))
                                 - np.interp(2048.0, dec.s, dec.row(float(b))))
                    got = (lat._decode_attn1(b, top) - lat._decode_attn1(b, 2048.0)) / 61
                    dg.append(f"{100 * (got / want - 1):+.0f} %")
                print(f"| {gpu} | {kv} | {128 // tp} | {statistics.median(e_held):.0f} / "
                      f"{np.percentile(e_held, 90):.0f} % | {statistics.median(e_fit):.0f} / "
                      f"{np.percentile(e_fit, 90):.0f} % | {statistics.median(e_big):.0f} / "
                      f"{np.percentile(e_big, 90):.0f} % | {' / '.join(dg)} |", flush=True)
    print(f"all cases: held-out median {statistics.median(held_all):.1f} %, shipped-fit median "
          f"{statistics.median(fit_all):.1f} % ({len(held_all)} held-out cells, "
          f"{len(fit_all)} fitted)")


if __name__ == "__main__":
    main()
