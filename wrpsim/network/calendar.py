"""The packet engine's events and their calendar queue, in flat arrays of 64-bit integers.

Events. An event is one row of `STRIDE` integers of `ev` (slot s: `ev[s * STRIDE + F_*]`):

    F_T     its time (ps)
    F_NEXT  the next free slot (while the slot is free)
    F_CONN  the connection's id          F_SEQ   the packet's sequence number
    F_EV    the entropy value it carries F_SIZE  its bytes on the wire (TIMER: the loss time)
    F_PATH  where its path starts in the engine's path table (`TransportBase._path`)
    F_META  kind | flags << 2 | hop << 4 (kinds and flags: `transport.py`)

A packet keeps its slot from its NIC to its receiver: each hop rewrites its time and hop and
links it into its next bucket, so the hop loop allocates nothing. Slots come from a free list
(`alloc`) and go back to it (`release`); the arrays double when it runs dry (`_grow`). One row
is one cache line, and the rows of the packets in flight are all the memory the hop loop reads
besides the ports.

Calendar. Time is cut into buckets of `width` ps. Bucket b (b >= `cur`, the bucket being run)
is a list in ring slot `b & mask` while b < cur + nb, the ring's horizon, and waits in the
overflow heap `ovf` (ordered by bucket, then creation) beyond it; buckets move from the heap
into the ring as `cur` advances, before any event of theirs could be appended to the ring
directly, so every bucket's list is in creation order. A list is a chain of blocks of `BLK`
entries (`bkey`, `bslot`, linked by `bnext`; `nin[r]` entries), each entry an event's slot and
its key: its time offset in the bucket over its rank in the list (distinct keys whose order is
the (time, creation) order), so filling and emptying a bucket reads no event row. `width` is
no more than the smallest delay between an event and any event it causes (`PacketEngine`), so
a bucket is complete once the earlier ones have run: `take` hands out the next bucket's slots
sorted by key — exactly the order of a (time, creation number) heap.

Contract: `add(t, ...)` (or `alloc`, fill the row, `push(s)`) only for a time in bucket `cur` or
later; `take(lim)` returns how many slots of the next bucket it put in `order` (0 when no event
of it is due by `lim` ps, or there is none; the caller puts back those past `lim`), so `cur`
never passes the bucket of the last event run and any time from then on may be pushed;
`putback(i, n)` returns `order[i:n]`, not run, to the front of bucket `cur`; `peek` is the
next event's time (None when empty).
"""

from __future__ import annotations

import heapq
from array import array

try:
    import cython
except ImportError:  # pure Python without Cython installed
    from wrpsim import _cyshim as cython

if not cython.compiled:  # (compiled, the .pxd's enum)
    STRIDE, F_T, F_NEXT, F_CONN, F_SEQ, F_EV, F_SIZE, F_PATH, F_META = 8, 0, 1, 2, 3, 4, 5, 6, 7
    SMALL = 48  # buckets of at most this many events are sorted by insertion
    BLK = 32  # entries per block of a bucket's list


#: the names of a row's fields, in order (for inspection: `EventQueue.row`)
ROW = ("t", "next", "conn", "seq", "ev", "size", "path", "meta")


def zeros(n: int) -> array:
    """An array('q') of n zeros."""
    return array("q", bytes(8 * n))


class EventQueue:
    """The event rows and their calendar (module docstring)."""

    __slots__ = ("bfree", "bkey", "bnext", "bslot", "cap", "cnt", "count", "cur", "ev", "free",
                 "head", "kbuf", "keys", "mask", "nb", "nblk", "nin", "order", "ovf", "passes",
                 "seq", "tail", "tmp", "width")

    def __init__(self, width: int, horizon: int, cap: int = 1024):
        """`width`: a bucket's span (ps); `horizon`: how many buckets ahead events are usually
        pushed (the ring gets the next power of two, at least 64, at most 2**16)."""
        if not 1 <= width < 1 << 31:
            raise ValueError(f"bucket width {width} ps: must be in [1, 2**31)")
        self.width = width
        self.passes = max(1, ((width - 1).bit_length() + 7) // 8)  # bytes of an offset
        self.cnt = zeros(256)
        nb = 64
        while nb < horizon and nb < 1 << 16:
            nb <<= 1
        self.nb, self.mask = nb, nb - 1
        self.head = array("q", [-1]) * nb
        self.tail = array("q", [-1]) * nb
        self.nin = zeros(nb)
        cap = max(1, cap)
        self.nblk = 0
        self.bfree = -1
        self.bkey = self.bslot = self.bnext = zeros(0)
        self._grow_blocks(nb + cap // BLK + 1)
        self.count = 0
        self.cur = 0
        self.ovf: list[tuple[int, int, int]] = []
        self.seq = 0
        self.cap = 0
        self.free = -1
        self.ev = zeros(0)
        self.order = zeros(0)
        self.tmp = self.keys = self.kbuf = zeros(0)
        self._grow(cap)

    def _grow(self, cap: int) -> None:
        """Room for `cap` events: a copy of the rows and of `order` (a handler may grow the
        queue while a bucket is run), the new slots on the free list."""
        old = self.cap
        ev = zeros(cap * STRIDE)
        for i in range(old * STRIDE):
            ev[i] = self.ev[i]
        for s in range(old, cap):
            ev[s * STRIDE + F_NEXT] = s + 1 if s + 1 < cap else self.free
        order = zeros(cap)
        for i in range(old):
            order[i] = self.order[i]
        self.ev = ev
        self.free = old
        self.cap = cap
        self.order = order
        self.tmp, self.keys, self.kbuf = zeros(cap), zeros(cap), zeros(cap)

    def _grow_blocks(self, nblk: int) -> None:
        """Room for `nblk` blocks: a copy of the blocks, the new ones on the free block list."""
        old = self.nblk
        bkey, bslot, bnext = zeros(nblk * BLK), zeros(nblk * BLK), zeros(nblk)
        for i in range(old * BLK):
            bkey[i] = self.bkey[i]
            bslot[i] = self.bslot[i]
        for i in range(old):
            bnext[i] = self.bnext[i]
        for k in range(old, nblk):
            bnext[k] = k + 1 if k + 1 < nblk else self.bfree
        self.bkey, self.bslot, self.bnext = bkey, bslot, bnext
        self.bfree = old
        self.nblk = nblk

    def alloc(self) -> int:
        """A free slot (its row's fields are whatever they were)."""
        s = self.free
        if s < 0:
            self._grow(2 * self.cap)
            s = self.free
        self.free = self.ev[s * STRIDE + F_NEXT]
        return s

    def add(self, t: int, conn: int, seq: int, ev: int, size: int, path: int,
            meta: int) -> int:
        """A new event at `t` ps with these fields, linked into its bucket; returns its slot."""
        s = self.alloc()
        row = s * STRIDE
        ev_ = self.ev
        ev_[row + F_T] = t
        ev_[row + F_CONN] = conn
        ev_[row + F_SEQ] = seq
        ev_[row + F_EV] = ev
        ev_[row + F_SIZE] = size
        ev_[row + F_PATH] = path
        ev_[row + F_META] = meta
        self.push(s)
        return s

    def release(self, s: int) -> None:
        """Slot `s` is free again."""
        self.ev[s * STRIDE + F_NEXT] = self.free
        self.free = s

    def push(self, s: int) -> None:
        """Append slot `s` to the bucket of its time (bucket `cur` or later), with its key:
        its time offset in the bucket over its rank there."""
        t = self.ev[s * STRIDE + F_T]
        b = t // self.width
        if b - self.cur >= self.nb:
            heapq.heappush(self.ovf, (b, self.seq, s))
            self.seq += 1
            return
        r = b & self.mask
        k = self.nin[r]
        if k & (BLK - 1) == 0:  # (the bucket's last block is full, or it has none)
            blk = self.bfree
            if blk < 0:
                self._grow_blocks(2 * self.nblk)
                blk = self.bfree
            self.bfree = self.bnext[blk]
            self.bnext[blk] = -1
            if k == 0:
                self.head[r] = blk
            else:
                self.bnext[self.tail[r]] = blk
            self.tail[r] = blk
        pos = self.tail[r] * BLK + (k & (BLK - 1))
        self.bkey[pos] = (t - b * self.width) << 32 | k
        self.bslot[pos] = s
        self.nin[r] = k + 1
        self.count += 1

    def _gather(self, r: int) -> int:
        """Empty ring slot `r` into `keys` and `tmp` (the slots, by rank); returns how many."""
        n = self.nin[r]
        keys, slots, bkey, bslot = self.keys, self.tmp, self.bkey, self.bslot
        blk = self.head[r]
        i = 0
        while blk >= 0:
            pos = blk * BLK
            m = n - i
            if m > BLK:
                m = BLK
            for j in range(m):
                keys[i + j] = bkey[pos + j]
                slots[i + j] = bslot[pos + j]
            i += m
            nxt = self.bnext[blk]
            self.bnext[blk] = self.bfree
            self.bfree = blk
            blk = nxt
        self.head[r] = self.tail[r] = -1
        self.nin[r] = 0
        self.count -= n
        return n

    def _next_bucket(self) -> int:
        """The next bucket that holds an event (-1 when there is none)."""
        if self.count == 0:
            return self.ovf[0][0] if self.ovf else -1
        b = self.cur
        head, mask = self.head, self.mask
        while head[b & mask] < 0:
            b += 1
        return b

    def take(self, lim: int) -> int:
        """Make the next bucket `cur` and put its slots, sorted by time, in `order[:n]`;
        returns n (0, nothing changed, when none of its events is due by `lim` ps)."""
        b = self._next_bucket()
        if b < 0 or b * self.width > lim:
            return 0
        if lim < (b + 1) * self.width - 1 and self._earliest(b) > lim:
            return 0  # (nothing due: `cur` must not pass the time of the last event run)
        self.cur = b
        ovf = self.ovf
        while ovf and ovf[0][0] - b < self.nb:  # buckets that came within the horizon
            s = heapq.heappop(ovf)[2]
            self.push(s)
        n = self._gather(b & self.mask)
        self._sort(n)
        order, slots, keys = self.order, self.tmp, self.keys
        low = 0xFFFFFFFF  # (the rank's bits; a C integer compiled)
        for i in range(n):
            order[i] = slots[keys[i] & low]
        return n

    def _sort(self, n: int) -> None:
        """Sort `keys[:n]`: each key is an event's time offset in its bucket (below `width`,
        < 2**31) over its rank in the bucket's list (< 2**32), so the keys are distinct and
        their order is the (time, creation) order. Compiled: up to `SMALL` keys by insertion;
        more by a least-significant-digit radix sort of the offsets, one stable counting pass
        per byte of `width - 1` (`passes`) through `kbuf` — the keys start in rank order, so
        stable passes leave ties in it. Pure Python: `sorted`."""
        if not cython.compiled:
            self.keys[:n] = array("q", sorted(self.keys[:n]))
            return
        keys = self.keys
        if n <= SMALL:
            for i in range(1, n):
                k = keys[i]
                j = i - 1
                while j >= 0 and keys[j] > k:
                    keys[j + 1] = keys[j]
                    j -= 1
                keys[j + 1] = k
            return
        cnt = self.cnt
        src, dst = keys, self.kbuf
        shift = 32
        for _ in range(self.passes):
            for d in range(256):
                cnt[d] = 0
            for i in range(n):
                cnt[(src[i] >> shift) & 255] += 1
            o = 0
            for d in range(256):
                c = cnt[d]
                cnt[d] = o
                o += c
            for i in range(n):
                k = src[i]
                d = (k >> shift) & 255
                dst[cnt[d]] = k
                cnt[d] += 1
            src, dst = dst, src
            shift += 8
        if self.passes & 1:  # (the sorted keys are in `kbuf`)
            for i in range(n):
                keys[i] = src[i]

    def putback(self, i: int, n: int) -> None:
        """Return `order[i:n]` (taken, not run) to the front of bucket `cur` (as a run leaves
        it: empty, since nothing it runs can cause an event in its own bucket; events found
        there anyway go back behind them)."""
        r = self.cur & self.mask
        later = []
        if self.nin[r]:
            m = self._gather(r)
            self._sort(m)
            later = [self.tmp[self.keys[j] & 0xFFFFFFFF] for j in range(m)]
        order = self.order
        for j in range(i, n):
            self.push(order[j])
        for s in later:
            self.push(s)

    def peek(self) -> int | None:
        """Time of the next event (ps), or None when there is none."""
        b = self._next_bucket()
        return None if b < 0 else self._earliest(b)

    def _earliest(self, b: int) -> int:
        """The earliest time in bucket `b` (which holds an event: in the ring, or, beyond its
        horizon, in the overflow heap)."""
        ev = self.ev
        t = -1
        if b - self.cur >= self.nb:
            for entry in self.ovf:
                if entry[0] == b:
                    s = entry[2]
                    if t < 0 or ev[s * STRIDE] < t:
                        t = ev[s * STRIDE]
            return t
        for s in self._bucket_slots(b & self.mask):
            if t < 0 or ev[s * STRIDE] < t:
                t = ev[s * STRIDE]
        return t

    def _bucket_slots(self, r: int) -> list[int]:
        """The slots in ring slot `r`, by rank (the bucket stays as it is)."""
        out = []
        blk, n, i = self.head[r], self.nin[r], 0
        while blk >= 0:
            out += [self.bslot[blk * BLK + j] for j in range(min(BLK, n - i))]
            i += BLK
            blk = self.bnext[blk]
        return out

    def pending(self) -> list[int]:
        """The slots of every event not yet run (any order)."""
        out = [s for _, _, s in self.ovf]
        for r in range(self.nb):
            out += self._bucket_slots(r)
        return out

    def taken(self, n: int) -> list[int]:
        """`order[:n]`: the slots `take` handed out (for inspection)."""
        return [self.order[i] for i in range(n)]

    def row(self, s: int) -> tuple:
        """Slot `s`'s fields (`ROW`: t, next, conn, seq, ev, size, path, meta), for
        inspection."""
        return tuple([self.ev[s * STRIDE + f] for f in range(STRIDE)])
