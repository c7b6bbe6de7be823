"""Per-instance block-hash prefix cache sharing the instance's KV blocks (vLLM/SGLang style).

A request's `hash_ids` name its prompt's prefix blocks of `block_tokens` tokens each (the last
may be partial); equal leading ids mean equal leading content. When a sequence finishes or is
preempted, the KV blocks holding its prompt become cache entries (one per id) instead of being
freed. A later sequence whose leading ids are cached *pins* those entries and skips their
prefill. Entries nobody pins are evictable, least recently used first, whenever the instance
needs blocks (or the cache exceeds `capacity_blocks`).

Accounting: entry blocks are part of the ledger's `used` blocks; the ledger's `evictable` counts
the blocks of unpinned entries, so `available = free + evictable`.
"""

from __future__ import annotations

from collections import OrderedDict

from wrpsim.pool.kvcache import KVLedger


class PrefixCache:
    """LRU cache of prefix blocks keyed by hash id, with pin counts (see module docstring)."""

    def __init__(self, ledger: KVLedger, block_tokens: int, capacity_blocks: int | None = None):
        self.ledger = ledger
        self.block_tokens = block_tokens
        self.capacity = capacity_blocks
        self._blocks: dict[int, int] = {}  # id -> KV blocks of the entry
        self._pins: dict[int, int] = {}  # id -> pin count (> 0 only)
        self._lru: OrderedDict[int, None] = OrderedDict()  # unpinned ids, oldest first
        self.size_blocks = 0
        self.inserted = 0
        self.evicted = 0
        ledger.evictor = self.evict

    def __contains__(self, hid: int) -> bool:
        return hid in self._blocks

    def match(self, ids) -> int:
        """Number of leading `ids` present in the cache."""
        k = 0
        blocks = self._blocks
        for hid in ids:
            if hid not in blocks:
                break
            k += 1
        return k

    def pin(self, ids) -> None:
        """Pin cached entries (they must be present) so they cannot be evicted."""
        for hid in ids:
            n = self._pins.get(hid, 0)
            if n == 0:
                del self._lru[hid]
                self.ledger.evictable -= self._blocks[hid]
            self._pins[hid] = n + 1

    def unpin(self, ids) -> None:
        """Undo `pin`; entries no longer pinned become the most recently used evictable ones."""
        for hid in ids:
            n = self._pins[hid] - 1
            if n:
                self._pins[hid] = n
            else:
                del self._pins[hid]
                self._lru[hid] = None
                self.ledger.evictable += self._blocks[hid]

    def insert(self, hid: int, blocks: int) -> None:
        """Add an unpinned entry made of `blocks` blocks already counted as used in the ledger."""
        self._blocks[hid] = blocks
        self._lru[hid] = None
        self.ledger.evictable += blocks
        self.size_blocks += blocks
        self.inserted += 1

    def evict(self, need: int, now: float) -> None:
        """Evict LRU entries until the ledger has `need` free blocks (or nothing is evictable)."""
        ledger = self.ledger
        while ledger.capacity - ledger.used < need and self._lru:
            self._drop_oldest(now)

    def trim(self, now: float) -> None:
        """Evict LRU entries while the cache holds more than `capacity_blocks`."""
        if self.capacity is not None:
            while self.size_blocks > self.capacity and self._lru:
                self._drop_oldest(now)

    def _drop_oldest(self, now: float) -> None:
        hid, _ = self._lru.popitem(last=False)
        blocks = self._blocks.pop(hid)
        self.ledger.evictable -= blocks
        self.size_blocks -= blocks
        self.evicted += 1
        self.ledger.release(blocks, now)
