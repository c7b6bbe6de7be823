"""Closed-form leaf-spine results (the network oracles of shared/guide/oracles.md).

Pure functions, exact where the formula is exact (`fractions.Fraction` for the balls-in-bins
distribution), used by the tests to check the engines and by the docs' tables.
"""

from __future__ import annotations

from fractions import Fraction
from math import factorial

import numpy as np


def one_flow_latency_s(nbytes: int, rate_bps: float, pkt_bytes: int, hops: int,
                       prop_s: list[float]) -> float:
    """Oracle 1: T_min = M/C + (h − 1)·S_pkt/C + Σ d_i (one flow, empty fabric, equal rates)."""
    return nbytes * 8 / rate_bps + (hops - 1) * pkt_bytes * 8 / rate_bps + sum(prop_s)


def expected_distinct_bins(n: int, m: int) -> float:
    """Oracle 3: expected number of distinct next hops used by n uniformly hashed flows over m:
    m·(1 − (1 − 1/m)^n)."""
    return m * (1 - (1 - 1 / m) ** n)


def max_load_cdf(n: int, m: int, k: int) -> Fraction:
    """Oracle 4: P(max load ≤ k) for n balls in m bins, (n!/m^n)·[x^n](Σ_{j≤k} x^j/j!)^m."""
    if k >= n:
        return Fraction(1)
    if k < 0 or (k == 0 and n > 0) or k * m < n:
        return Fraction(0)
    base = [Fraction(1, factorial(j)) for j in range(k + 1)]
    poly = [Fraction(1)]
    for _ in range(m):
        out = [Fraction(0)] * min(len(poly) + k, n + 1)
        for i, a in enumerate(poly):
            if a:
                for j, b in enumerate(base):
                    if i + j > n:
                        break
                    out[i + j] += a * b
        poly = out
    coef = poly[n] if n < len(poly) else Fraction(0)
    return coef * factorial(n) / Fraction(m) ** n


def max_load_cdf_float(n: int, m: int, k: int) -> float:
    """P(max load ≤ k) in floating point, by throwing the balls bin by bin: bin b takes
    Binomial(r, 1/(m − b)) of the r balls left (equal to `max_load_cdf`, fast for large n, m)."""
    from scipy.stats import binom

    if k >= n:
        return 1.0
    r = np.arange(n + 1)
    j = np.arange(k + 1)[:, None]
    valid = r[None, :] >= j
    src = np.where(valid, r[None, :] - j, 0)
    p = (r <= k).astype(float)  # the last bin: it must take all r balls left
    for bins_left in range(2, m + 1):
        pmf = np.where(valid, binom.pmf(j, r[None, :], 1 / bins_left), 0.0)
        p = (pmf * p[src]).sum(axis=0)
    return float(p[n])


def expected_max_load(n: int, m: int, groups: int = 1) -> float:
    """E[max load] of n balls in m bins; with `groups` > 1 the expected maximum over that many
    independent such experiments (Σ_k P(max > k))."""
    total = float(-(-n // m))  # the max load is at least ceil(n/m)
    for k in range(-(-n // m), n):
        tail = 1 - max_load_cdf_float(n, m, k) ** groups
        total += tail
        if tail < 1e-13:
            break
    return total


def oversubscription(hosts_per_leaf: int, host_bps: float, spines: int, uplink_bps: float
                     ) -> float:
    """Oracle 9: σ = H·C_host / (S·C_uplink)."""
    return hosts_per_leaf * host_bps / (spines * uplink_bps)


def spray_interleaf_rate(sigma: float, host_bps: float) -> float:
    """Oracle 9: per-host inter-leaf throughput under ideal spraying, min(1, 1/σ)·C_host."""
    return min(1.0, 1.0 / sigma) * host_bps


def spray_cct_failed_s(flow_bytes: float, hosts_per_leaf: int, spines: int, failed: int,
                       host_bps: float, uplink_bps: float) -> float:
    """Completion time of a permutation of equal flows under ideal spraying when one leaf has
    `failed` of its S spine links down (both directions) and the others none:
    max(M/C_host, H·M / ((S − f)·C_uplink)) — the failed leaf's H flows share its S − f working
    uplinks (and downlinks); every other link carries less."""
    return max(flow_bytes * 8 / host_bps,
               hosts_per_leaf * flow_bytes * 8 / ((spines - failed) * uplink_bps))


def permutation_max_load_mc(leaves: int, hosts: int, spines: int, subflows: int = 1,
                            trials: int = 2000, seed: int = 0, failed: int = 0) -> float:
    """Oracles 5–6 by Monte Carlo: E[max over the 2L leaf uplink/downlink groups of the most
    loaded link's bytes] relative to ideal spraying on the healthy fabric, for a permutation of
    equal flows (every host to a host on another leaf), each flow split into `subflows`
    uniformly hashed equal parts. `failed` > 0: leaf 0's links to spines 0..failed−1 are down
    (both directions), so flows from or to leaf 0 hash over the other S − failed spines."""
    rng = np.random.default_rng(seed)
    L, H, S, k = leaves, hosts, spines, subflows
    src_leaf = np.repeat(np.arange(L), H)
    ideal = max(H / S, 1.0)
    out = np.empty(trials)
    for t in range(trials):
        dst_leaf = src_leaf[rng.permutation(L * H)]
        while (bad := np.flatnonzero(dst_leaf == src_leaf)).size:
            j = rng.integers(0, L * H, size=bad.size)
            dst_leaf[bad], dst_leaf[j] = dst_leaf[j], dst_leaf[bad].copy()
        spine = rng.integers(0, S, size=(L * H, k))
        if failed:
            hit = (src_leaf == 0) | (dst_leaf == 0)
            spine[hit] = failed + rng.integers(0, S - failed, size=(int(hit.sum()), k))
        up = np.zeros((L, S))
        down = np.zeros((L, S))
        np.add.at(up, (np.repeat(src_leaf, k), spine.ravel()), 1.0 / k)
        np.add.at(down, (np.repeat(dst_leaf, k), spine.ravel()), 1.0 / k)
        out[t] = max(up.max(), down.max(), 1.0) / ideal
    return float(out.mean())


def ring_collective_s(kind: str, n: int, nbytes: float, rate_bps: float, alpha_s: float = 0.0,
                      latency_s: float = 0.0) -> float:
    """Ring all-reduce, all-gather or reduce-scatter of S = `nbytes` per rank over n ranks whose
    ring links run at `rate_bps` with nothing else on them: every step moves S/n per rank and
    waits α (per-step latency) + the path latency, so 2(n − 1)·(S/(n·B) + α + ℓ) for
    all-reduce and (n − 1)·(S/(n·B) + α + ℓ) for the others (the α-β model)."""
    steps = 2 * (n - 1) if kind == "allreduce_ring" else n - 1
    return steps * (nbytes * 8 / (n * rate_bps) + alpha_s + latency_s)


def tree_allreduce_s(n: int, nbytes: float, rate_bps: float, alpha_s: float = 0.0,
                     chunks: int = 1, latency_s: float = 0.0) -> float:
    """Binomial-tree all-reduce (reduce to the root, then broadcast) over n ranks, links at
    `rate_bps`: unpipelined (chunks = 1) 2⌈log2 n⌉·(S/B + α + ℓ), exact for n a power of two on
    an uncongested fabric. With c > 1 pieces a lower bound: the larger of the root's link,
    ⌈log2 n⌉·S/B, and one piece's chain through the tree, 2⌈log2 n⌉·(S/(c·B) + α + ℓ)."""
    depth = (n - 1).bit_length()
    chain = 2 * depth * (nbytes * 8 / (chunks * rate_bps) + alpha_s + latency_s)
    return chain if chunks == 1 else max(depth * nbytes * 8 / rate_bps, chain)


def alltoall_bound_s(n: int, nbytes: float, rate_bps: float, alpha_s: float = 0.0) -> float:
    """All-to-all of S = `nbytes` per rank (S/n to every other rank) over NICs at `rate_bps`:
    every NIC sends and receives (n − 1)/n·S, so at least α + (n − 1)·S/(n·B) — the time when
    the fabric's bisection is not the bottleneck (ranks on a non-blocking fabric)."""
    return alpha_s + (n - 1) * nbytes * 8 / (n * rate_bps)


def collective_bus_factor(kind: str, n: int) -> float:
    """NCCL's bus-bandwidth factor: busbw = algbw × this (2(n − 1)/n for all-reduce, (n − 1)/n
    for all-gather, reduce-scatter and all-to-all), so a link-rate-bound run shows busbw ≈ B."""
    return (2 if kind.startswith("allreduce") else 1) * (n - 1) / n
