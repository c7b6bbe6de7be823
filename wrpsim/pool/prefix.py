"""Per-instance block-hash prefix cache sharing the instance's KV blocks (vLLM/SGLang style).

A request's `hash_ids` name its prompt's prefix blocks of `block_tokens` tokens each (the last
may be partial); equal leading ids mean equal leading content. A sequence's full prompt blocks
become cache entries (one per id), pinned by it, as soon as a prefill chunk has computed them
(`SequenceSetMixin._share_computed`, as vLLM V1's `cache_full_blocks`); when it finishes or is
preempted its pins are undone and the rest of its prompt's blocks (the last, partial one, and
any it could not share) become entries instead of being freed (`_release`). A later sequence
whose leading ids are cached — also while their first holder still runs — *pins* those entries
and skips their prefill. Entries nobody pins are evictable, least recently used first,
whenever the instance needs blocks (or the cache exceeds `capacity_blocks`).

Accounting: entry blocks are part of the ledger's `used` blocks; the ledger's `evictable` counts
the blocks of unpinned entries, so `available = free + evictable`. With lower tiers
(`wrpsim.pool.tiers`), evicted entries are demoted to host DRAM and then to the remote pool, and
`match` also finds entries there; `promote` brings one back into HBM, pinned.
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
        self.dram = None  # TierStore of this instance's host memory, or None
        self.remote = None  # TierStore shared by the fleet's instances of the model, or None
        self.block_bytes_per_gpu = 0.0  # bytes of one KV block on each GPU (load times)
        ledger.evictor = self.evict

    def __contains__(self, hid: int) -> bool:
        return hid in self._blocks

    def match(self, ids) -> int:
        """Number of leading `ids` present in HBM or a lower tier."""
        k = 0
        blocks, dram, remote = self._blocks, self.dram, self.remote
        for hid in ids:
            if hid not in blocks and (dram is None or hid not in dram) and (
                    remote is None or hid not in remote):
                break
            k += 1
        return k

    def lower_blocks(self, hid: int) -> int:
        """Blocks of an entry found only in a lower tier (0 if it is in HBM)."""
        if hid in self._blocks:
            return 0
        if self.dram is not None and hid in self.dram:
            return self.dram.blocks(hid)
        return self.remote.blocks(hid)

    def promote(self, ids, now: float) -> tuple[float, int]:
        """Load lower-tier entries `ids` (found there by `match`, none in HBM) into HBM, each
        pinned once; return (load time in seconds, blocks loaded). Every entry is taken from
        its tier before any HBM block is allocated: an allocation evicts HBM entries down to
        DRAM, whose overflow would otherwise drop a later entry of the same prefix on the
        way (lost, with no remote tier behind it)."""
        found = []
        for hid in ids:
            if self.dram is not None and hid in self.dram:
                found.append((hid, self.dram.take(hid), self.dram.rate))
            else:
                found.append((hid, self.remote.peek(hid), self.remote.rate))
        seconds, total = 0.0, 0
        for hid, blocks, rate in found:
            self.ledger.allocate(blocks, now)
            self._blocks[hid] = blocks
            self._pins[hid] = 1
            self.size_blocks += blocks
            seconds += blocks * self.block_bytes_per_gpu / rate
            total += blocks
        return seconds, total

    def pin(self, ids) -> None:
        """Pin cached entries (they must be present) so they cannot be evicted."""
        for hid in ids:
            n = self._pins.get(hid, 0)
            if n == 0:
                del self._lru[hid]
                self.ledger.evictable -= self._blocks[hid]
            self._pins[hid] = n + 1

    def reset(self) -> None:
        """Forget every entry and this instance's DRAM tier (its node failed; blocks are
        released by the ledger's own reset). The shared remote tier survives."""
        self._blocks.clear()
        self._pins.clear()
        self._lru.clear()
        self.size_blocks = 0
        if self.dram is not None:
            self.dram.clear()

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
        """Add an unpinned entry made of `blocks` blocks already counted as used in the ledger
        (a stale copy in this instance's DRAM tier is dropped)."""
        if self.dram is not None:
            self.dram.discard(hid)
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
        if self.dram is not None:
            for old, b in self.dram.put(hid, blocks):
                if self.remote is not None:
                    self.remote.put(old, b)
        elif self.remote is not None:
            self.remote.put(hid, blocks)
