"""The packet engine: store-and-forward packets through FIFO ports, in integer picoseconds.

Model. A connection sends `ceil(bytes/mtu)` data packets (the last one shorter), each carrying
`header_bytes` of headers on top of its payload, from its NIC. Every port is a FIFO with a rate,
a propagation delay and a buffer: a packet enqueued at time t starts serialising when the port is
free and reaches the next node `tx + prop` after that. A data packet that finds the port's unsent
work plus itself above the buffer overflows: the transport decides whether it is dropped or
trimmed to its header (`transport.py`). Data packets are ECN-marked when they find more than
`ecn_bdp` × the port's BDP of backlog. The receiver answers every data packet with a control
packet (ACK or NACK, `ack_bytes` on the wire) that travels back through the same spine and
queues FIFO behind data at every port on the way (control packets are never dropped; a port's
buffer check counts them). The NIC queue is unbounded. A trimmed header skips the queues (a
priority class) and reaches the receiver after `header_bytes` of serialisation and the
propagation delay of every remaining hop. The transports (`transport=`: uec, dctcp, roce) are
the classes of the engine's chain in their own modules (`transport.py`); sprayed connections
pick an entropy value per packet (`entropy.py`).

Implementation. Events are `(t, kind, conn, seq, hop, ev, size, flags, path)` tuples. `DATA`
and `CTRL` events are a packet entering port `path[hop]` of its path tuple (`paths[ev]` of its
connection for data, `rpaths[ev]` for control; `(path id, port, ..., port, END)`, see
`TransportBase._path_tuple`); reaching the mark `END` is its arrival at the receiving NIC.
(Tuples, not one list per packet updated from hop to hop: lists save ~2 % of the instructions
but cost ~10 % of the wall time of sprayed runs, whose buckets are large: two allocations per
event and one more pointer to follow for each sort key, which `itemgetter` reads straight
from a tuple.) `TRIM` is a trimmed header at the receiver; `TIMER` a loss timer (`size` holds
the loss time); both sit at their path's END, so the hop loop meets them only in its arrival
branch. Since a port is FIFO, a packet's departure is known when it is enqueued (`busy`), so
each hop is one event. Per-port and per-connection state lives in flat lists; the bytes each
port has carried are counted per path and derived on reading (`pbytes`).

The event queue is a calendar: events are appended to buckets of `width` picoseconds, where
`width` is no more than the smallest delay between an event and any event it causes (one
propagation delay plus a one-byte serialisation, or the RTO). A bucket is therefore complete
once the earlier ones are processed; it is sorted by time (a stable sort, so ties keep their
creation order) and run. This is exactly the order of a (time, creation number) heap.

Driving contract (identical standalone and under SimPy): `add(conn, t)` at a time no earlier
than any processed event; `run(limit, inclusive, stop_at_done)` processes events in time order
up to `limit` and returns `[(t, conn_id)]` of finished connections (stopping after the first one
when `stop_at_done`); `peek()` is the next event's time.
"""

from __future__ import annotations

import heapq
import random
from bisect import bisect_right
from operator import itemgetter

from wrpsim.network.topology import PS_PER_S, LeafSpine, tx_ps
from wrpsim.network.transport import CONN_FIELDS, CTRL, DATA, DCTCP, TRIM, UEC
from wrpsim.network.uec import UecMixin
from wrpsim.rng import stream

INF = 1 << 62
BITPS = 8 * PS_PER_S
_time = itemgetter(0)
_CONN_SLOTS = tuple("c_" + name for name in CONN_FIELDS)  # (a class body of a compiled class
#                                                           cannot hold a generator)


def _index(lst: list, e: tuple) -> int:
    """Position of the object `e` in `lst` (by identity: equal events may precede it)."""
    return next(i for i, x in enumerate(lst) if x is e)


class PacketEngine(UecMixin):
    """Packet-level simulation of connections on a `LeafSpine` (module docstring)."""

    # slots: ~70 attributes are too many for CPython's shared-key instance dicts, whose
    # attribute reads the interpreter can specialise; slot reads it always can. Compiled,
    # `transport.pxd` declares them as the struct fields of the chain's root, `TransportBase`
    __slots__ = ("topo", "cfg", "mtu", "hdr", "wire", "window", "wmax", "rto_ps", "rng", "seed",
                 "rate", "prop", "txf", "bufps", "ecnps", "busy", "pathlist", "pathb", "cutb",
                 "pdrops", "ptrims", "pmarks", "pmaxq", "ctrl_packets", "width", "buckets",
                 "bheap", "now", "nconns", "tkind", "rwnd",
                 "target_ps", "ack", "acktx", "pi_gain", "sacking", "salts", "_evpaths", "_rev",
                 *_CONN_SLOTS)

    def __init__(self, topo: LeafSpine, seed: int = 0):
        cfg = topo.cfg
        self.topo, self.cfg = topo, cfg
        self.mtu = cfg.mtu_bytes
        self.hdr = cfg.header_bytes
        self.wire = cfg.mtu_bytes + cfg.header_bytes
        self.window = topo.window_packets
        self.wmax = float(self.window)  # the window's ceiling as the float windows compare to
        self.rto_ps = max(1, round(cfg.rto_us * 1e6))
        self.rng = random.Random(int(stream(seed, "network.entropy").integers(0, 1 << 62)))
        self.seed = seed
        n = topo.nports
        self.rate = list(topo.rate)
        self.prop = list(topo.prop)
        self.txf = [tx_ps(self.wire, r) for r in self.rate]
        self.bufps = [INF if b is None else b * BITPS // r for b, r in zip(topo.buffer, self.rate)]
        self.ecnps = [INF if topo.buffer[p] is None else
                      round(cfg.ecn_bdp * topo.bdp_bytes(self.rate[p])) * BITPS // self.rate[p]
                      for p in range(n)]
        self.busy = [0] * n
        self.pdrops = [0] * n
        self.ptrims = [0] * n
        self.pmarks = [0] * n
        self.pmaxq = [0] * n
        self.ctrl_packets = 0
        lag = min([self.rto_ps] + [d + tx_ps(1, r) for d, r in zip(self.prop, self.rate)])
        self.width = max(1, lag // 16)  # any width <= lag is exact; smaller buckets cache better
        self.buckets: dict[int, list[tuple]] = {}
        self.bheap: list[int] = []
        self.now = 0
        self.nconns = 0
        for name in CONN_FIELDS:
            setattr(self, "c_" + name, [])
        self._bind_transport(cfg.transport)

    def set_background(self, p: int, bps: float) -> None:
        """Port `p` also carries `bps` bits per second this engine does not simulate (a packet
        window's fluid flows, `crosstraffic.py`): packets enqueued from now on are serialised at
        the rest of its line rate (never below 1/1000 of it), against the same buffer and ECN
        thresholds in bytes. Packets already queued keep their departure times."""
        r0 = self.topo.rate[p]
        r = max(r0 // 1000, 1, int(r0 - bps))
        if r == self.rate[p]:
            return
        self.rate[p] = r
        self.txf[p] = tx_ps(self.wire, r)
        self.acktx[p] = tx_ps(self.ack, r)
        if self.topo.buffer[p] is not None:
            self.bufps[p] = self.topo.buffer[p] * BITPS // r
            self.ecnps[p] = round(self.cfg.ecn_bdp * self.topo.bdp_bytes(r0)) * BITPS // r

    @property
    def pbytes(self) -> list[int]:
        """Bytes enqueued so far at each port (data packets with their headers, resends and
        control packets; not trimmed headers), as a new list. Counted per path, not per hop:
        `pathb` has the bytes that entered each path's first port, `cutb` those that a full
        buffer stopped at hop h of path i (key (i, h)); the packets still on the way, whose
        events wait at the hop they reach next, have not reached that port either."""
        stops: dict[int, dict[int, int]] = {}  # path id -> {hop: bytes stopped before it}
        for (pid, hop), n in self.cutb.items():
            stops.setdefault(pid, {})[hop] = n
        for lst in self.buckets.values():
            for e in lst:
                if e[1] <= CTRL:
                    at = stops.setdefault(e[8][0], {})
                    at[e[4]] = at.get(e[4], 0) + e[6]
        out = [0] * self.topo.nports
        for pt, b in zip(self.pathlist, self.pathb):
            if not b:
                continue
            at = stops.get(pt[0])
            for hop in range(1, len(pt) - 1):
                if at is not None:
                    b -= at.get(hop, 0)
                out[pt[hop]] += b
        return out

    def _stop_after(self, lst: list, e: list, bi: int) -> None:
        """`run` stops after event `e` of bucket `bi` (being run, in `lst`): put the rest back,
        ahead of the bucket's events past the limit if `run` put those back already."""
        rest = lst[_index(lst, e) + 1:]
        later = self.buckets.get(bi)
        if later is not None:
            self.buckets[bi] = rest + later
        elif rest:
            self.buckets[bi] = rest
            heapq.heappush(self.bheap, bi)

    def peek(self) -> int | None:
        """Time of the next event (ps), or None when idle."""
        return min(ev[0] for ev in self.buckets[self.bheap[0]]) if self.bheap else None

    def run(self, limit: int | None = None, inclusive: bool = True,
            stop_at_done: bool = False) -> list[tuple[int, int]]:
        """Process events up to `limit` (ps; None: until idle); finished connections."""
        lim = INF if limit is None else (limit if inclusive else limit - 1)
        return _run(self, lim, stop_at_done)


def _run(eng: PacketEngine, lim: int, stop_at_done: bool) -> list[tuple[int, int]]:
    """`PacketEngine.run` up to `lim` (ps, inclusive). A function of its own so that, compiled,
    `packet.pxd` can give its locals C types: times, port indices and hop numbers as C integers
    (`long long` picoseconds: every time here is an int below 2⁶³, or Cython's conversion raises
    OverflowError; floor division keeps Python's rounding, no `cdivision`), the engine's lists
    as `list`, and the engine itself as its extension type, whose fields it reads and whose
    transport handlers it calls as C methods (by the transport's number `tkind`). Values that
    only pass through (connection, sequence, EV, size) stay objects, so the events it builds
    reuse them instead of boxing new ints."""
    buckets, bheap, W = eng.buckets, eng.bheap, eng.width
    hpush, hpop = heapq.heappush, heapq.heappop
    busy, txf, rate, prop, bufps, ecnps = (eng.busy, eng.txf, eng.rate, eng.prop,
                                           eng.bufps, eng.ecnps)
    pmaxq, pmarks, cutb = eng.pmaxq, eng.pmarks, eng.cutb
    wire, acktx = eng.wire, eng.acktx
    tk, sack = eng.tkind, eng.sacking
    kdata, kctrl, ktrim = DATA, CTRL, TRIM  # (C ints compiled; fast locals in Python)
    kuec, kdctcp = UEC, DCTCP
    done: list[tuple[int, int]] = []
    last = eng.now
    stop = False
    while bheap and not stop:
        bi = bheap[0]
        if bi * W > lim:
            break
        hpop(bheap)
        lst = buckets.pop(bi)
        lst.sort(key=_time)
        if lst[-1][0] > lim:  # the limit falls in this bucket: put its later events back
            i = bisect_right(lst, lim, key=_time)
            buckets[bi] = lst[i:]
            hpush(bheap, bi)
            del lst[i:]
            stop = True
            if not lst:
                break
        for e in lst:
            t, kind, c, k, hop, ev, size, fl, path = e
            # (hot tests jump over short blocks only: CPython 3.11 specialises a compare
            # only when its jump needs no EXTENDED_ARG, i.e. skips < 256 code units)
            p = path[hop]
            if p < 0:  # END: at the receiving NIC (where TRIM and TIMER events always are)
                if kind == kctrl:
                    if tk == kuec:
                        eng._uec_ctrl(c, k, ev, fl, t)
                    elif tk == kdctcp:
                        eng._dctcp_ctrl(c, k, ev, fl, t)
                    else:
                        eng._roce_ctrl(c, k, ev, fl, t)
                elif kind == kdata:
                    if (eng._sack_recv(c, k, ev, fl, t, False) if sack else
                            eng._roce_recv(c, k, ev, fl, t, False)):
                        done.append((t, c))
                        if stop_at_done:
                            eng._stop_after(lst, e, bi)
                            stop = True
                            break
                elif kind == ktrim:  # (only uec trims)
                    eng._sack_recv(c, k, ev, fl, t, True)
                elif tk == kdctcp:  # TIMER (uec loses nothing: it has no timer)
                    eng._dctcp_timer(c, k, size, t)
                else:
                    eng._roce_timer(c, k, size, t)
                continue
            b = busy[p]
            if kind == kctrl:  # `ack` bytes, serialised in `acktx[p]`; never dropped
                if b > t:
                    q = b - t
                    if q > pmaxq[p]:
                        pmaxq[p] = q
                    b += acktx[p]
                else:
                    b = t + acktx[p]
            else:
                tx = txf[p] if size == wire else -(-size * BITPS // rate[p])
                if b > t:
                    q = b - t
                    if q + tx > bufps[p]:
                        key = (path[0], hop)  # (`pbytes`)
                        cutb[key] = cutb.get(key, 0) + size
                        if tk == kuec:
                            eng._uec_loss(c, k, hop, ev, t)
                        else:  # (dctcp and roce drop)
                            eng._drop(c, k, hop, ev, t)
                        continue
                    if q > ecnps[p]:
                        fl = 1
                        pmarks[p] += 1
                    if q > pmaxq[p]:
                        pmaxq[p] = q
                    b += tx
                else:
                    b = t + tx
            busy[p] = b
            arr = b + prop[p]
            bi2 = arr // W
            try:
                buckets[bi2].append((arr, kind, c, k, hop + 1, ev, size, fl, path))
            except KeyError:  # the first event of its bucket
                buckets[bi2] = [(arr, kind, c, k, hop + 1, ev, size, fl, path)]
                hpush(bheap, bi2)
        last = t  # the time of the last event run
    if last > eng.now:
        eng.now = last
    return done
