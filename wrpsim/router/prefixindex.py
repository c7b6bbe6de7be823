"""The router's own index of the prefixes it sent to an instance (approximate prefix cache).

A gateway does not read an engine's prefix cache; it remembers which prompts it sent where.
SGLang's cache-aware router keeps an approximate radix tree of the requests it routed, with a
size limit and eviction, and llm-d's approximate prefix-cache scorer keeps an LRU index of the
block hashes it routed to each pod. `PrefixIndex` is that index for one instance: the prefix-hash
ids of the requests this router dispatched there, least recently sent evicted first once it
holds `capacity` ids (`wrpsim.router.feed` sizes it to what the instance's prefix cache can
hold, HBM and host-DRAM tiers together). It knows nothing of the engine's evictions, so it can
claim a prefix the engine has dropped, and misses nothing the router sent.
"""

from __future__ import annotations

from collections import OrderedDict


class PrefixIndex:
    """LRU set of prefix-hash ids sent to one instance (see the module docstring)."""

    __slots__ = ("_ids", "capacity")

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self._ids: OrderedDict[int, None] = OrderedDict()

    def sent(self, hash_ids) -> None:
        """Remember the ids of a prompt sent to the instance (most recent last)."""
        if not hash_ids or self.capacity <= 0:
            return
        ids = self._ids
        for hid in hash_ids:
            if hid in ids:
                ids.move_to_end(hid)
            else:
                ids[hid] = None
        while len(ids) > self.capacity:
            ids.popitem(last=False)

    def match(self, hash_ids) -> int:
        """Leading ids of `hash_ids` this index holds."""
        k = 0
        ids = self._ids
        for hid in hash_ids or ():
            if hid not in ids:
                break
            k += 1
        return k

    def __len__(self) -> int:
        return len(self._ids)
