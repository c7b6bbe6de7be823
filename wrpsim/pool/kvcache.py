"""Paged KV-cache block accounting for one instance.

Blocks hold `block_size` tokens. A sequence with `kv` tokens in its cache holds ceil(kv/block_size)
blocks. All decoding sequences of an instance advance one token per decode step together, so the
ledger keeps, instead of per-sequence counters, a histogram of their *phases*: a sequence whose
cache holds `kv` tokens at decode-step counter `s` has phase (kv - 1 - s) mod block_size, and at
step counter `s` its residue (kv - 1) mod block_size is (phase + s) mod block_size. A step needs a
new block exactly for the sequences whose residue is block_size - 1, so the blocks needed by `n`
steps of the whole decode batch are q·B + (sequences with residue >= block_size - m) for
n = q·block_size + m — O(block_size) work however large the batch is.

Invariant: 0 <= used <= capacity at every boundary (allocation beyond it raises).
"""

from __future__ import annotations


class KVLedger:
    """Block counts, peak and time-weighted occupancy of one instance's paged KV cache."""

    __slots__ = ("_area", "_hist", "_t_last", "block_size", "capacity", "decoders", "evictable",
                 "evictor", "peak", "used")

    def __init__(self, block_size: int, capacity_blocks: int):
        self.block_size = block_size
        self.capacity = capacity_blocks
        self.used = 0
        self.peak = 0
        self.decoders = 0  # sequences in the phase histogram
        self.evictable = 0  # used blocks a prefix cache can free on demand
        self.evictor = None  # callable(need_free_blocks, now) that frees evictable blocks
        self._hist = [0] * block_size  # number of decoding sequences per phase
        self._area = 0.0  # integral of used blocks over time
        self._t_last = 0.0

    @property
    def free(self) -> int:
        """Blocks not held by any sequence or cache entry."""
        return self.capacity - self.used

    @property
    def available(self) -> int:
        """Blocks that can be allocated now: free plus evictable cache blocks."""
        return self.capacity - self.used + self.evictable

    def blocks_for(self, tokens: int) -> int:
        """Blocks needed to hold `tokens` tokens."""
        return -(-tokens // self.block_size)

    def _advance(self, now: float) -> None:
        self._area += self.used * (now - self._t_last)
        self._t_last = now

    def allocate(self, blocks: int, now: float) -> None:
        """Take `blocks` free blocks at time `now`."""
        used = self.used  # (read and written once: called for every stretch of iterations)
        if blocks > self.capacity - used:
            if self.evictor is not None:
                self.evictor(blocks, now)
                used = self.used
            if blocks > self.capacity - used:
                raise RuntimeError(f"KV over-allocation: {blocks} > {self.capacity - used} free")
        self._area += used * (now - self._t_last)  # (`_advance`, inlined: hot loop)
        self._t_last = now
        used += blocks
        self.used = used
        if used > self.peak:
            self.peak = used

    def release(self, blocks: int, now: float) -> None:
        """Return `blocks` blocks at time `now`."""
        self._area += self.used * (now - self._t_last)  # (`_advance`, inlined: hot loop)
        self._t_last = now
        self.used -= blocks
        assert self.used >= 0, "KV ledger went negative"

    # --- decoding-batch phase histogram -------------------------------------------------------
    def add_decoder(self, kv: int, step: int) -> None:
        """Register a sequence that starts decoding with `kv` cached tokens at counter `step`."""
        self._hist[(kv - 1 - step) % self.block_size] += 1
        self.decoders += 1

    def remove_decoder(self, kv0: int, step0: int) -> None:
        """Unregister a sequence registered by `add_decoder(kv0, step0)`."""
        self._hist[(kv0 - 1 - step0) % self.block_size] -= 1
        self.decoders -= 1

    def step_blocks(self, step: int, n: int) -> int:
        """New blocks the decoding batch needs to run `n` steps starting at step counter `step`."""
        bs = self.block_size
        q, m = divmod(n, bs)
        total = q * self.decoders
        if m:
            # residue r = (phase + step) % bs needs a block within m steps iff r >= bs - m:
            # the phases (r - step) % bs of those m residues, a circular slice of the histogram
            hist = self._hist
            lo = (bs - m - step) % bs
            hi = lo + m
            total += sum(hist[lo:hi]) if hi <= bs else sum(hist[lo:]) + sum(hist[:hi - bs])
        return total

    def next_step_blocks(self, step: int) -> int:
        """`step_blocks(step, 1)`: new blocks the decoding batch needs for its next step (the
        sequences whose residue is block_size - 1)."""
        bs = self.block_size
        if bs == 1:
            return self.decoders
        return self._hist[(bs - 1 - step) % bs]

    def max_steps(self, step: int, limit: int) -> int:
        """Largest n <= `limit` such that `step_blocks(step, n)` <= available blocks."""
        free = self.capacity - self.used + self.evictable
        batch = self.decoders
        if batch == 0:
            return limit
        bs = self.block_size
        q = free // batch
        if q * bs >= limit:
            return limit
        rem = free - q * batch
        m = 0
        tail = 0
        hist = self._hist
        while m < bs - 1:
            nxt = tail + hist[(bs - 1 - m - step) % bs]
            if nxt > rem:
                break
            tail = nxt
            m += 1
        return min(limit, q * bs + m)

    def reset(self, now: float) -> None:
        """Forget every block and decoder (the instance failed); statistics are kept."""
        self.release(self.used, now)
        self.decoders = 0
        self.evictable = 0
        self._hist = [0] * self.block_size

    def occupancy_integral(self, now: float) -> float:
        """Integral of used blocks over [0, now] (block-seconds)."""
        self._advance(now)
        return self._area
