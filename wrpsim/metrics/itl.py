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
    """Weighted samples of inter-token gaps (see module docstring)."""

    def __init__(self) -> None:
        self._dur: list[np.ndarray] = []
        self._w: list[np.ndarray] = []

    def add(self, duration_s: float, seqs: int) -> None:
        """One iteration of `duration_s` that gave `seqs` decoding sequences a token."""
        if seqs > 0:
            self._dur.append(np.array([duration_s]))
            self._w.append(np.array([float(seqs)]))

    def add_run(self, cum: np.ndarray | None, total_s: float, n: int, seqs: int) -> None:
        """`n` decode-only iterations of `seqs` sequences; `cum` their cumulative end times
        (None for a single iteration of `total_s`)."""
        if seqs <= 0 or n <= 0:
            return
        if cum is None:
            self.add(total_s, seqs)
            return
        d = np.diff(cum[:n], prepend=0.0)
        self._dur.append(d)
        self._w.append(np.full(len(d), float(seqs)))

    def merge(self, other: ItlLog) -> None:
        self._dur += other._dur
        self._w += other._w

    @property
    def tokens(self) -> float:
        """Tokens the samples cover (the sum of weights)."""
        return float(sum(w.sum() for w in self._w))

    def quantile(self, q: float) -> float:
        """The token-weighted `q`-quantile of the gaps (NaN without samples)."""
        if not self._dur:
            return float("nan")
        d = np.concatenate(self._dur)
        w = np.concatenate(self._w)
        order = np.argsort(d, kind="stable")
        cw = np.cumsum(w[order])
        return float(d[order][np.searchsorted(cw, q * cw[-1], side="left")])
