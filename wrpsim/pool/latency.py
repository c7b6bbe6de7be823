"""The latency/power model contract used by instances.

An instance asks its `LatencyModel` for the duration of one scheduler iteration (a batch that may
mix prefill chunks and decode steps) and for the per-GPU power drawn meanwhile. Implementations:
`wrpsim.pool.kernels.model.KernelLatency` (operators timed from measured kernel tables: the
default engines; a registered virtual subclass, since compiled it is an extension type, which
cannot derive from this ABC: it inherits none of the defaults below and defines every method
itself), `wrpsim.pool.perf.AnalyticalLatency` (the 2023 roofline calibrated on the
Splitwise profile: engine `splitwise-2023`) and `wrpsim.pool.constant.ConstantLatency` (fixed
times, for queueing oracles).

Contract: methods are pure functions of their arguments (no randomness, no simulated time), cheap
enough for the engine's hot loop (scalar float arithmetic, no pandas), and `decode_run_s` equals
calling `iteration_s` once per step.
"""

from __future__ import annotations

import abc

import numpy as np


class LatencyModel(abc.ABC):
    """Time and power of scheduler iterations on one instance (one model replica on `tp` GPUs)."""

    #: tensor-parallel degree: number of GPUs of the instance
    tp: int

    def encoder_s(self, vision, images: int) -> float:
        """Seconds of the vision encoder (`wrpsim.pool.modelspec.VisionSpec`) on `images`
        images (`wrpsim.pool.vision`); a model without a GPU behind it (constant) charges 0."""
        return 0.0

    @abc.abstractmethod
    def iteration_s(
        self, prefill_tokens: int, prefill_attn: float, decode_seqs: int, decode_ctx: int,
        prefill_seqs: int = 1,
    ) -> float:
        """Seconds for one iteration.

        `prefill_tokens`: prompt tokens processed this iteration (sum of prefill chunks).
        `prefill_attn`: causal attention work of those chunks, sum over chunks of c*(p + (c+1)/2)
        for a chunk of c tokens after p tokens already in the KV cache (token-pairs).
        `decode_seqs`: sequences doing one decode step; `decode_ctx`: the sum of their context
        lengths (tokens already in their KV cache). `prefill_seqs`: the number of prompt chunks
        (sequences prefilling) when `prefill_tokens` > 0. An iteration with no work takes 0 s.
        """

    def breakdown(
        self, prefill_tokens: int, prefill_attn: float, decode_seqs: int, decode_ctx: int,
        prefill_seqs: int = 1,
    ) -> dict[str, float]:
        """Seconds of the iteration `iteration_s` describes, by where they go: operator
        (GEMMs, attention, collectives ...) or overhead, each key a term of the model with a
        physical meaning, every value >= 0, the values summing to `iteration_s` (up to
        rounding). The default has one term, `iteration`, for a model without an operator
        view (fixed times)."""
        return {"iteration": self.iteration_s(prefill_tokens, prefill_attn, decode_seqs,
                                              decode_ctx, prefill_seqs)}

    def decode_run_s(self, batch: int, ctx0: int, n: int) -> np.ndarray:
        """Durations of `n` consecutive decode-only iterations of `batch` sequences.

        The summed context is `ctx0` at the first step and grows by `batch` each step. The default
        loops over `iteration_s`; implementations vectorise it.
        """
        return np.array(
            [self.iteration_s(0, 0.0, batch, ctx0 + k * batch) for k in range(n)], dtype=np.float64
        )

    def decode_run_linear(self, batch: int, ctx0: int, n: int) -> tuple[float, float] | None:
        """(a, b) when step k of the run of `decode_run_s` lasts a + b k and
        `decode_run_cum_s` is exactly a (k + 1) + b k (k + 1) / 2 at step k (evaluated in
        float64 as a·K + b·(K (K − 1) / 2) with K = k + 1), so a caller may compute the end
        times it needs instead of the array; None (the default) when not."""
        return None

    def decode_run_cum_s(self, batch: int, ctx0: int, n: int) -> np.ndarray:
        """End times of `n` consecutive decode-only iterations, measured from the start of the
        first: the cumulative sum of `decode_run_s` (implementations may compute it directly)."""
        return np.cumsum(self.decode_run_s(batch, ctx0, n))

    @abc.abstractmethod
    def power_w(
        self, prefill_tokens: int, decode_seqs: int, decode_ctx: int | None = None,
        duration_s: float | None = None, prefill_attn: float | None = None,
        prefill_seqs: int = 1,
    ) -> float:
        """Average power of ONE GPU of the instance during an iteration of that composition.

        `decode_ctx` is the summed context of the decoding sequences, as for `iteration_s`; when
        None, an implementation-defined typical context is assumed. `duration_s`, when the
        caller knows it, is the iteration's duration (models whose power depends on it then
        need not recompute it). `prefill_attn` is the prompt chunks' attention work as
        `iteration_s` took it (None: fresh prompts, T (T + 1) / 2); models without an
        attention term may ignore it. `prefill_seqs` is the number of prompt chunks holding
        the prefill tokens (`iteration_s`'s); models without per-sequence work may ignore it.
        """

    def decode_power_w(self, decode_seqs: int, decode_ctx: int, duration_s: float) -> float:
        """`power_w(0, decode_seqs, decode_ctx, duration_s)`: a decode-only iteration (the
        engine asks once per decode run; implementations may cache what depends on the batch
        only)."""
        return self.power_w(0, decode_seqs, decode_ctx, duration_s)

    #: True when the engine schedules iteration N + 1 while iteration N runs (vLLM's async
    #: scheduling): a request that arrives during N can join N + 2 at the earliest
    schedule_lag: bool = False

    def frontend_s(self, prompt_tokens: int) -> float:
        """Seconds the engine's API server spends on a request before the engine sees it
        (HTTP handling, tokenization); added to its TTFT by the dispatcher. Default 0."""
        return 0.0

    def frontend_work_s(self, prompt_tokens: int) -> float:
        """The part of `frontend_s` that is the API server's own CPU work on the prompt
        (tokenization), done one request at a time (`wrpsim.pool.frontend`). Default 0."""
        return 0.0

    def frontend_stream_s(self) -> float:
        """The API server's CPU seconds per output token it streams back (detokenizing and
        sending every token of every running request): the background load under which the
        front end handles a new request (`wrpsim.pool.frontend`). Default 0."""
        return 0.0

    def handover_s(self) -> float:
        """Seconds from a prompt's end on a prefill instance of this engine until the decode
        engine pulls its KV in a `serialized` hand-off, spent outside the GPUs' steps (the
        engine's and the router's orchestration: `EngineConstants.handover_us`). Default 0."""
        return 0.0

    @abc.abstractmethod
    def idle_power_w(self) -> float:
        """Power of one GPU of the instance while it holds the model but runs no iteration."""
