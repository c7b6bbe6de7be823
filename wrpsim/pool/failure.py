"""Instance failure and repair: what a crashed replica loses and how it comes back.

Mixed into `Instance`. `fail()` takes the instance down at the current simulated time: the
iteration in progress never completes (its time is not counted as busy; the iterations of a
planned decode run that did end before the failure are, and its `trace.json` slice is cut to
them), every sequence on the
instance — queued, prefilling, decoding, done and waiting for a decode instance's reservation,
or whose KV transfer to it is under way — is handed to `lost_handler` (the run's
`wrpsim.failures.FailureInjector`, which retries, reroutes or drops it by policy; the hand-off
details are in `handoff.py`), and its HBM KV cache, prefix cache and host-DRAM tier are emptied
(a node crash; the fleet's remote KV pool survives). `recover()` brings it back empty. While
down the instance draws no power and is left out of every router's candidate lists
(`Fleet.set_down`).

Simplifications: KV transfers that already left a prefill instance complete even if that
instance fails meanwhile; the work of the interrupted iteration is lost, not charged.
"""

from __future__ import annotations

from wrpsim.pool.accounting import AccountingMixin


class FailureMixin(AccountingMixin):
    """Failure state of `Instance` (see module docstring)."""

    __slots__ = ()  # (the attributes are `Instance`'s slots)

    def _init_failure(self) -> None:
        self.down = False
        self.down_since = 0.0
        self.down_s = 0.0  # total time down, before the current outage
        self.failures = 0
        self.epoch = 0  # failures so far: callbacks scheduled before a failure check it
        self.lost_handler = None  # callable(seq, instance) for sequences lost to a failure

    def fail(self) -> list:
        """Go down now; return the sequences that were on the instance (see module docstring)."""
        now = self.env.now
        self.cut_off(now)  # the traced slice ends with the iterations that ran
        self.settle()
        seqs = list(self.running.values()) + list(self.waiting)
        for seq in seqs:
            self.transfer.abandon(seq)
            seq.win = 0  # its window / state blocks go with the ledger (`kv.reset` below)
        seqs += self._fail_handoffs(now)
        self._count(-self._in_system)
        self._token += 1  # the stretch in progress never ends
        self.busy = False
        self.waiting.clear()
        self.running.clear()
        self.prefilling.clear()
        self._heap.clear()
        self._fresh.clear()
        self._late = None
        self._chunks = []
        self._load_s = 0.0
        self.n_dec = 0
        self._ctx_const = 0
        self.kv.reset(now)
        if self.prefix is not None:
            self.prefix.reset()
        self.down = True
        self.down_since = now
        self.failures += 1
        self.epoch += 1
        return seqs

    def recover(self) -> None:
        """Come back up, empty."""
        if self.down:
            self.down = False
            self.down_s += self.env.now - self.down_since

    def downtime(self, now: float) -> float:
        """Seconds down over [0, now]."""
        return self.down_s + (now - self.down_since if self.down else 0.0)
