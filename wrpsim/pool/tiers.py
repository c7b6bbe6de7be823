"""Lower KV-cache tiers below HBM: host DRAM per instance and a fleet-wide remote KV pool.

When the prefix cache evicts an unpinned entry from HBM it is *demoted* instead of lost: to the
instance's host-DRAM tier if it has one, and from there (when DRAM is full) to the remote pool
(Mooncake-style store shared by every instance of the model), if configured; what falls out of
the last tier is gone. A later request whose prefix is found in a lower tier *loads* those
entries back into HBM before its prefill (LMCache-style blocking retrieval): the iteration
that admits it is longer by bytes per GPU / link bandwidth per GPU (PCIe for DRAM, the NIC for
the remote pool). An entry may sit in HBM and in the remote pool at once (a copy on purpose);
within one instance it is in one tier at a time.
"""

from __future__ import annotations

from collections import OrderedDict


class TierStore:
    """An LRU store of prefix entries (id -> KV blocks) with a capacity in blocks."""

    def __init__(self, name: str, capacity_blocks: int, bytes_per_s_per_gpu: float):
        self.name = name
        self.capacity = capacity_blocks
        self.rate = bytes_per_s_per_gpu
        self._lru: OrderedDict[int, int] = OrderedDict()
        self.used = 0
        self.peak = 0
        self.loaded_blocks = 0
        self.stored_blocks = 0

    def __contains__(self, hid: int) -> bool:
        return hid in self._lru

    def blocks(self, hid: int) -> int:
        """Blocks of entry `hid` (which must be present)."""
        return self._lru[hid]

    def put(self, hid: int, blocks: int) -> list[tuple[int, int]]:
        """Store an entry as most recently used; return the entries evicted to make room."""
        out = []
        if blocks > self.capacity:
            return [(hid, blocks)]
        if hid in self._lru:
            self.used -= self._lru.pop(hid)
        while self.used + blocks > self.capacity:
            old, b = self._lru.popitem(last=False)
            self.used -= b
            out.append((old, b))
        self._lru[hid] = blocks
        self.used += blocks
        self.stored_blocks += blocks
        self.peak = max(self.peak, self.used)
        return out

    def take(self, hid: int) -> int:
        """Remove entry `hid` (it moves up to HBM); return its blocks."""
        b = self._lru.pop(hid)
        self.used -= b
        self.loaded_blocks += b
        return b

    def clear(self) -> None:
        """Forget every entry (the host failed)."""
        self._lru.clear()
        self.used = 0

    def discard(self, hid: int) -> None:
        """Drop entry `hid` if present (a fresher copy now lives in HBM)."""
        b = self._lru.pop(hid, None)
        if b is not None:
            self.used -= b

    def peek(self, hid: int) -> int:
        """Blocks of `hid` for a copy up to HBM that leaves the entry here (shared pools)."""
        b = self._lru[hid]
        self._lru.move_to_end(hid)
        self.loaded_blocks += b
        return b
