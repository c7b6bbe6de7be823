"""Iteration-level batch scheduling policies (continuous batching).

At every iteration boundary an instance asks its policy what the next iteration does:
which prompt chunks to prefill, and whether its decoding sequences take a step. Policies:

- ``sarathi``: chunked prefill, decode-first, stall-free (Sarathi-Serve; vLLM v1's default).
  Every decoding sequence steps; the rest of the token budget goes to prompt chunks, first of
  partially prefilled sequences, then of newly admitted ones (FCFS).
- ``vllm``: prefill-prioritised without chunking (vLLM v0's default). When waiting prompts can
  be admitted, an iteration prefills whole prompts only (decodes stall); otherwise it decodes.
- ``orca``: iteration-level mixing of whole prompts with decode steps (Orca); KV for prompt and
  all output is reserved at admission, so it never preempts.

KV blocks are allocated on demand (vLLM's paged cache); when a decode step cannot get blocks,
the most recently admitted running sequence is preempted and later recomputed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from wrpsim.errors import ConfigError, check_keys, unknown_choice

POLICIES = ("sarathi", "vllm", "orca")


#: upper bounds (far above any engine's setting; beyond them the latency tables, sized by the
#: budget, would not fit in memory): tokens per iteration, running sequences, tokens per block
MAX_TOKEN_BUDGET = 1 << 20
MAX_SEQS = 1 << 16
MAX_BLOCK_SIZE = 4096


@dataclass(frozen=True)
class SchedulerConfig:
    """Per-instance scheduler settings.

    `token_budget`: max tokens (prefill chunk tokens + one per decoding sequence) per iteration.
    `max_seqs`: max running sequences. `block_size`: tokens per KV block. `gpu_mem_util`: fraction
    of GPU memory the engine may use; `reserve_gib`: activation/workspace memory per GPU that
    the KV cache leaves (None: as vLLM's start-up profile keeps for these `max_seqs` and
    `token_budget`, `wrpsim.pool.kernels.sizes.profile_reserve_gib`; 3.5 GiB under the 2023
    engine).
    `watermark`: fraction of KV blocks kept free when admitting new prompts (vLLM's 1 %).
    """

    policy: str = "sarathi"
    token_budget: int = 2048
    max_seqs: int = 256
    block_size: int = 16
    gpu_mem_util: float = 0.9
    reserve_gib: float | None = None
    watermark: float = 0.01

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise unknown_choice("scheduler.policy", self.policy, POLICIES)
        for name, top in (("token_budget", MAX_TOKEN_BUDGET), ("max_seqs", MAX_SEQS),
                          ("block_size", MAX_BLOCK_SIZE)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= top:
                raise ConfigError(f"scheduler.{name} must be an integer in 1..{top:,}, "
                                  f"got {v!r}")
        if self.max_seqs > self.token_budget:
            raise ConfigError(
                f"scheduler.max_seqs ({self.max_seqs}) must be <= scheduler.token_budget "
                f"({self.token_budget}): every running sequence needs a token each decode step"
            )
        if not 0.0 < self.gpu_mem_util <= 1.0:
            raise ConfigError(f"scheduler.gpu_mem_util must be in (0, 1], got {self.gpu_mem_util}")
        r = self.reserve_gib
        if r is not None and (isinstance(r, bool) or not isinstance(r, (int, float))
                              or not math.isfinite(r) or r < 0):
            raise ConfigError(f"scheduler.reserve_gib must be a number >= 0 (GiB) or null "
                              f"(vLLM's profiled reserve), got {r!r}")
        if not 0.0 <= self.watermark < 1.0:
            raise ConfigError(f"scheduler.watermark must be in [0, 1), got {self.watermark}")

    @classmethod
    def from_dict(cls, d: dict | None, where: str = "scheduler") -> SchedulerConfig:
        """Build from a config mapping, naming unknown keys and the valid ones."""
        d = dict(d or {})
        valid = cls.__dataclass_fields__.keys()
        check_keys(d, valid, where)
        try:
            return cls(**d)
        except ConfigError as e:  # name the field where the config has it
            raise ConfigError(str(e).replace("scheduler.", f"{where}.")) from None
