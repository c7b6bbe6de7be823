"""Inter-token latency (ITL) distribution of an instance: one sample per decode iteration.

Every decoding sequence in an iteration receives one token when the iteration ends, so the
iteration's duration is the gap since that sequence's previous token (streamed as it is made).
The log keeps (duration, sequences) pairs and answers weighted quantiles: the ITL percentiles a
benchmark client such as ML.ENERGY's or `vllm bench serve` measures over all tokens. Enabled per
instance (`Instance.itl`) by tools that need it (`wrpsim.validate`); off in ordinary runs.
"""

from __future__ import annotations

import numpy as np


class ItlLog:
    """Weighted samples of inter-token gaps (see module docstring). Recording is cheap (the
    hot loop calls it once per stretch of iterations): a run's cumulative end times are kept
    as given and turned into gaps when a quantile is asked for."""

    def __init__(self) -> None:
        self._one_d: list[float] = []  # single iterations: duration, sequences
        self._one_w: list[float] = []
        self._cums: list[np.ndarray] = []  # runs: cumulative end times, sequences
        self._cum_w: list[float] = []

    def add(self, duration_s: float, seqs: int) -> None:
        """One iteration of `duration_s` that gave `seqs` decoding sequences a token."""
        if seqs > 0:
            self._one_d.append(float(duration_s))
            self._one_w.append(float(seqs))

    def add_run(self, cum: np.ndarray | None, total_s: float, n: int, seqs: int) -> None:
        """`n` decode-only iterations of `seqs` sequences; `cum` their cumulative end times
        (None for a single iteration of `total_s`)."""
        if seqs <= 0 or n <= 0:
            return
        if cum is None:
            self.add(total_s, seqs)
            return
        ends = np.array(cum[:n], dtype=np.float64)
        if len(ends):
            self._cums.append(ends)
            self._cum_w.append(float(seqs))

    def merge(self, other: ItlLog) -> None:
        self._one_d += other._one_d
        self._one_w += other._one_w
        self._cums += other._cums
        self._cum_w += other._cum_w

    def _samples(self) -> tuple[np.ndarray, np.ndarray]:
        """(gaps, weights): the single iterations', then every run's (each run's first gap
        from its start, the others between consecutive ends)."""
        d, w = [np.array(self._one_d, dtype=np.float64)], [np.array(self._one_w)]
        if self._cums:
            cum = np.concatenate(self._cums)
            lens = np.array([len(c) for c in self._cums])
            first = np.concatenate(([0], np.cumsum(lens)[:-1]))
            gaps = np.diff(cum, prepend=0.0)
            gaps[first] = cum[first]
            d.append(gaps)
            w.append(np.repeat(np.array(self._cum_w), lens))
        return np.concatenate(d), np.concatenate(w)

    @property
    def tokens(self) -> float:
        """Tokens the samples cover (the sum of weights)."""
        return float(sum(self._one_w) + sum(
            w * len(c) for w, c in zip(self._cum_w, self._cums)))

    def quantile(self, q: float) -> float:
        """The token-weighted `q`-quantile of the gaps (NaN without samples)."""
        if not self._one_d and not self._cums:
            return float("nan")
        d, w = self._samples()
        order = np.argsort(d, kind="stable")
        cw = np.cumsum(w[order])
        return float(d[order][np.searchsorted(cw, q * cw[-1], side="left")])
