"""The per-instance state of one request (a *sequence*) inside the engine.

A sequence is WAITING in the instance's queue, PREFILL while its prompt (or, after a preemption,
its prompt plus the tokens generated so far) is being processed in chunks, DECODE while it
generates one token per decode step, and DONE once all `output_tokens` exist.

While decoding, counters are kept relative to the instance's decode-step counter `s`:
tokens generated `gen(s) = gen0 + s - s0`, cached tokens `kv(s) = kv0 + s - s0`, and the sequence
is finished when `s` reaches `s_fin = s0 + output_tokens - gen0`.
"""

from __future__ import annotations

from wrpsim.workload.request import Request

WAITING, PREFILL, DECODE, DONE = 0, 1, 2, 3


class Seq:
    """Mutable engine state of one request on one instance."""

    __slots__ = (
        "admit_s",
        "arrived_s",
        "ask_s",
        "blocks",
        "c0",
        "cost_usd",
        "done",
        "dst_blocks",
        "e0",
        "energy_j",
        "enq_s",
        "first_token_s",
        "gen",
        "gpu_s",
        "grant_s",
        "handoff",
        "heap_no",
        "hit_blocks",
        "hit_tokens",
        "kv0",
        "kv_ready",
        "pinned",
        "preemptions",
        "prefill_end_s",
        "prefill_inst",
        "promote",
        "qoe",
        "req",
        "reserved",
        "s0",
        "s_fin",
        "second_token_s",
        "shared",
        "state",
        "target",
        "win",
        "xfer",
        "xfer_bytes",
    )

    def __init__(self, req: Request):
        self.req = req
        self.target = req.prompt_tokens  # tokens to (re)compute in prefill
        self.done = 0  # prefill tokens computed so far
        self.gen = 0  # output tokens generated (valid outside DECODE)
        self.kv0 = 0
        self.s0 = 0
        self.s_fin = 0
        self.state = WAITING
        self.blocks = 0  # blocks held while PREFILL, or reserved for life (orca)
        self.win = 0  # window or Mamba-state blocks held here (`wrpsim.pool.window`)
        self.reserved = False
        self.admit_s: float | None = None
        self.enq_s = -1.0  # when it joined this instance's waiting queue (schedule lag)
        self.first_token_s: float | None = None
        self.preemptions = 0
        self.heap_no = 0  # identifies its entry in the instance's finish heap (while decoding)
        self.shared = 0  # leading tokens read from pinned prefix-cache entries (not own blocks)
        self.pinned: tuple[int, ...] = ()  # prefix-cache ids this sequence pins
        self.promote: tuple[int, ...] | list = ()  # lower-tier ids to load at admission
        self.hit_blocks = 0  # prefix-cache ids matched at first admission
        self.hit_tokens = 0  # prompt tokens whose prefill the cache saved at first admission
        self.second_token_s: float | None = None
        self.handoff = None  # decode instance that takes over after the prompt (disaggregated)
        self.kv_ready = False  # waiting with its KV cache already here (sent by a prefill inst.)
        self.xfer = 0  # where its hand-off stands (wrpsim.pool.handoff: NONE … SENT)
        self.dst_blocks = 0  # blocks its decode instance reserved for its KV
        self.grant_s: float | None = None  # when they were reserved
        self.prefill_inst: str | None = None  # "pool/index" of the prefill instance, if any
        self.prefill_end_s: float | None = None
        self.arrived_s: float | None = None  # when its KV arrived here from its prefill inst.
        self.ask_s: float | None = None  # when its decode instance was asked for the blocks
        self.xfer_bytes = 0.0
        # attributed resources (see Instance._charge) and the streaming-QoE meter
        self.gpu_s = 0.0
        self.energy_j = 0.0
        self.cost_usd = 0.0
        self.c0 = 0.0  # the instance's per-decoder share counters when this decoder joined
        self.e0 = 0.0
        self.qoe = None  # a wrpsim.metrics.qoe.QoEMeter once the first token is out
