"""Monotone fits of measured kernel times: more work never takes less time, and one bad
measurement does not move its neighbours.

A kernel's time grows with its work — attention with batch and length, a fused MoE with
tokens — but measured tables are not monotone everywhere: CUDA-event timings carry noise
(a clock ramp, another process, an unlucky tile choice) of a few % and the odd cell several
times its neighbours (AIConfigurator's A100 decode-attention row at batch 1 reads 44.6 µs at 7
cached tokens, 12 µs on either side). A running maximum made the tables monotone by raising every
larger cell to the largest one before it, so that one cell set a floor over the whole region
beyond it (A100 Qwen3-30B-A3B TP 4 decode attention 3.6 x its measurements; L40S up to 10 x);
a running minimum from the other end (the GEMM tables' lower envelope) would let one fast cell
pull the region before it down instead. Here the fit is the least-absolute-deviations
non-decreasing fit in log time (isotonic regression by pool-adjacent-violators with pool
medians): cells that violate the order are pooled with the cells they violate and take the
pool's median, so a single slow outlier among well-ordered neighbours takes their value and
moves nothing else, a single fast one pulls the cells just before it down to the pool's lower
median (`[1, 2, 0.1, 4]` fits as `[1, 1, 1, 4]`: where the fit is not unique, the lower value),
and cells already in order are kept exactly as measured. On a (batch, length)
grid the fit alternates over the two axes until it settles, and a final running maximum removes
what is left of a violation.
"""

from __future__ import annotations

import numpy as np

#: alternations of the two axes' fits (they settle in 2-4 on the shipped tables)
MAX_ROUNDS = 16


def isotonic(y: np.ndarray) -> np.ndarray:
    """A least-absolute-deviations non-decreasing fit of the 1-D sequence `y`: pool adjacent
    violators, each pool replaced by its median (the lower median of an even pool, so that
    every value is one of `y`'s and a pool of two keeps its smaller)."""
    pools: list[list[float]] = []
    values: list[float] = []
    for v in np.asarray(y, dtype=np.float64).tolist():
        pool, m = [v], v
        while values and values[-1] > m:
            pool = pools.pop() + pool
            values.pop()
            pool.sort()
            m = pool[(len(pool) - 1) // 2]
        pools.append(pool)
        values.append(m)
    return np.repeat(np.array(values), [len(p) for p in pools])


def monotone_curve(t: np.ndarray) -> np.ndarray:
    """Times (> 0) along increasing work, fitted non-decreasing in log time (module docstring);
    cells the fit leaves in place keep their exact value."""
    t = np.asarray(t, dtype=np.float64)
    if t.size < 2:
        return t.copy()
    with np.errstate(divide="ignore"):  # (a zero cell is -inf: it fits as zero)
        z0 = np.log(t)
    z = isotonic(z0)
    return np.maximum.accumulate(np.where(z == z0, t, np.exp(z)))


def monotone_grid(t: np.ndarray) -> np.ndarray:
    """Times (> 0) on a (batch, length) grid, fitted non-decreasing along both axes in log time
    (module docstring); cells the fit leaves in place keep their exact value."""
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(divide="ignore"):
        z0 = np.log(t)
    z = z0
    for _ in range(MAX_ROUNDS):
        before = z
        z = np.apply_along_axis(isotonic, 0, z) if z.shape[0] > 1 else z
        z = np.apply_along_axis(isotonic, 1, z) if z.shape[1] > 1 else z
        if np.array_equal(z, before):
            break
    out = np.where(z == z0, t, np.exp(z))
    return np.maximum.accumulate(np.maximum.accumulate(out, axis=0), axis=1)
