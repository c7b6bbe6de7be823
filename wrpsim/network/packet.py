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

Implementation. Events are rows of integers in an `EventQueue` (`calendar.py`): a packet's
row holds its time, connection, sequence number, EV, size, flags, the offset of its path in the
engine's path table (`TransportBase._path`: the path's id, its ports, the mark `END`) and the
hop it is at. `DATA` and `CTRL` events are a packet entering the port of its hop; reaching the
mark `END` is its arrival at the receiving NIC. A packet keeps its row from its NIC to its
receiver: each hop rewrites the row's time and hop and links it into its next bucket. `TRIM` is
a trimmed header at the receiver; `TIMER` a loss timer (its size field holds the loss time,
its path `NOPATH`, whose hop 0 is `END`); both sit at `END`, so the hop loop meets them only in
its arrival branch. Since a port is FIFO, a packet's departure is known when it is enqueued
(`busy`), so each hop is one event. Per-port state lives in flat integer arrays, per-connection
state in one `ConnState` per connection (`connection.py`); the bytes each port has carried are
counted per path and derived on reading (`pbytes`).

The event queue is a calendar of buckets `width` picoseconds wide, where `width` is no more
than the smallest delay between an event and any event it causes (one propagation delay plus a
one-byte serialisation, or the RTO). A bucket is therefore complete once the earlier ones are
processed; it is sorted by time, ties in creation order, and run. This is exactly the order of
a (time, creation number) heap.

Driving contract (identical standalone and under SimPy): `add(conn, t)` at a time no earlier
than any processed event; `run(limit, inclusive, stop_at_done)` processes events in time order
up to `limit` and returns `[(t, conn_id)]` of finished connections (stopping after the first one
when `stop_at_done`); `peek()` is the next event's time.
"""

from __future__ import annotations

import random
from array import array

try:
    import cython
except ImportError:  # pure Python without Cython installed
    from wrpsim import _cyshim as cython

from wrpsim.network.calendar import EventQueue, zeros
from wrpsim.network.topology import PS_PER_S, LeafSpine, tx_ps
from wrpsim.network.uec import UecMixin
from wrpsim.rng import stream

if not cython.compiled:  # (compiled, the enums of `calendar.pxd` and `transport.pxd`)
    from wrpsim.network.calendar import F_CONN, F_EV, F_META, F_PATH, F_SEQ, F_SIZE, F_T, STRIDE
    from wrpsim.network.transport import CTRL, DATA, DCTCP, TRIM, UEC

INF = 1 << 62
BITPS = 8 * PS_PER_S


class PacketEngine(UecMixin):
    """Packet-level simulation of connections on a `LeafSpine` (module docstring)."""

    # slots: 42 attributes are too many for CPython's shared-key instance dicts, whose
    # attribute reads the interpreter can specialise; slot reads it always can. Compiled,
    # `transport.pxd` declares them as the struct fields of the chain's root, `TransportBase`
    __slots__ = (
        "_evpaths",
        "_rev",
        "ack",
        "acktx",
        "bufps",
        "busy",
        "cfg",
        "conns",
        "ctrl_packets",
        "cutb",
        "ecnps",
        "evp",
        "evp_a",
        "hdr",
        "mtu",
        "now",
        "pathb",
        "pathb_a",
        "pathlist",
        "pdrops",
        "pi_gain",
        "pmarks",
        "pmaxq",
        "pports",
        "pports_a",
        "prop",
        "ptrims",
        "q",
        "rate",
        "rng",
        "rto_ps",
        "rwnd",
        "sacking",
        "salts",
        "seed",
        "target_ps",
        "tkind",
        "topo",
        "txf",
        "window",
        "wire",
        "wmax",
    )

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
        self.rate = array("q", topo.rate)
        self.prop = array("q", topo.prop)
        self.txf = array("q", [tx_ps(self.wire, r) for r in topo.rate])
        self.bufps = array("q", [INF if b is None else b * BITPS // r
                                 for b, r in zip(topo.buffer, topo.rate)])
        self.ecnps = array("q", [INF if topo.buffer[p] is None else
                                 round(cfg.ecn_bdp * topo.bdp_bytes(topo.rate[p])) * BITPS //
                                 topo.rate[p] for p in range(n)])
        self.busy = zeros(n)
        self.pdrops = zeros(n)
        self.ptrims = zeros(n)
        self.pmarks = zeros(n)
        self.pmaxq = zeros(n)
        self.ctrl_packets = 0
        lag = min([self.rto_ps] + [d + tx_ps(1, r) for d, r in zip(topo.prop, topo.rate)])
        # any width <= lag is exact; smaller buckets cache better (`EventQueue` takes < 2**31)
        width = max(1, min(lag // 16, 1 << 30))
        # the ring spans the RTO (timers) and twice a full window's serialisation at the NIC
        horizon = (self.rto_ps + 2 * self.window * max(self.txf, default=0)) // width + 1
        self.q = EventQueue(width, horizon)
        self.now = 0
        self.conns: list = []
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

    def port(self, p: int) -> dict[str, int]:
        """Port `p`'s state: `rate_bps` (its line rate less any background), `tx_ps` and
        `ack_tx_ps` (a full data packet's and a control packet's serialisation), `buffer_ps`
        and `ecn_ps` (its buffer and ECN threshold as queueing delay; 2**62: none),
        `busy_until_ps` (when its queue, as enqueued so far, is sent)."""
        return {"rate_bps": self.rate[p], "tx_ps": self.txf[p], "ack_tx_ps": self.acktx[p],
                "buffer_ps": self.bufps[p], "ecn_ps": self.ecnps[p],
                "busy_until_ps": self.busy[p]}

    def port_counters(self) -> dict[str, list[int]]:
        """Per port, as new lists: `drops` and `trims` (data packets a full buffer dropped or
        trimmed), `marks` (ECN marks), `maxq_ps` (the longest queue a packet found, in ps of
        the port's serialisation)."""
        return {"drops": list(self.pdrops), "trims": list(self.ptrims),
                "marks": list(self.pmarks), "maxq_ps": list(self.pmaxq)}

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
        q, pports = self.q, self.pports_a
        for s in q.pending():
            _, _, _, _, _, size, o, meta = q.row(s)
            if meta & 3 <= CTRL:
                at = stops.setdefault(pports[o], {})
                at[meta >> 4] = at.get(meta >> 4, 0) + size
        out = [0] * self.topo.nports
        for pid, (pt, b) in enumerate(zip(self.pathlist, self.pathb_a)):
            if not b:
                continue
            at = stops.get(pid)
            for hop in range(1, len(pt) + 1):
                if at is not None:
                    b -= at.get(hop, 0)
                out[pt[hop - 1]] += b
        return out

    def peek(self) -> int | None:
        """Time of the next event (ps), or None when idle."""
        return self.q.peek()

    def idle(self) -> bool:
        """No event is pending."""
        return self.q.peek() is None

    def run(self, limit: int | None = None, inclusive: bool = True,
            stop_at_done: bool = False) -> list[tuple[int, int]]:
        """Process events up to `limit` (ps; None: until idle); finished connections."""
        lim = INF if limit is None else (limit if inclusive else limit - 1)
        return _run(self, lim, stop_at_done)


def _run(eng: PacketEngine, lim: int, stop_at_done: bool) -> list[tuple[int, int]]:
    """`PacketEngine.run` up to `lim` (ps, inclusive). A function of its own so that, compiled,
    `packet.pxd` can give its locals C types: the engine and its event queue as their extension
    types, whose fields (the event rows, the per-port arrays, the path table) it reads as C
    arrays and whose transport handlers it calls as C methods (by the transport's number
    `tkind`); times, ports, hops and row fields as C integers (`long long` picoseconds: every
    time here is an int below 2⁶³, or Cython's conversion raises OverflowError; floor division
    keeps Python's rounding, no `cdivision`)."""
    q = eng.q
    tk, sack = eng.tkind, eng.sacking
    wire = eng.wire
    done: list[tuple[int, int]] = []
    last = eng.now
    stop = False
    while not stop:
        n = q.take(lim)
        if n == 0:
            break
        i = 0
        while i < n:
            s = q.order[i]
            i += 1
            row = s * STRIDE
            t = q.ev[row + F_T]
            if t > lim:  # the limit falls in this bucket: put its later events back
                q.putback(i - 1, n)
                stop = True
                break
            last = t
            meta = q.ev[row + F_META]
            kind = meta & 3
            hop = meta >> 4
            o = q.ev[row + F_PATH]
            p = eng.pports[o + hop]
            if p < 0:  # END: at the receiving NIC (where TRIM and TIMER events always are)
                cs = eng.conns[q.ev[row + F_CONN]]
                k = q.ev[row + F_SEQ]
                ev = q.ev[row + F_EV]
                fl = (meta >> 2) & 3
                size = q.ev[row + F_SIZE]
                q.release(s)
                if kind == CTRL:
                    if tk == UEC:
                        eng._uec_ctrl(cs, k, ev, fl, t)
                    elif tk == DCTCP:
                        eng._dctcp_ctrl(cs, k, ev, fl, t)
                    else:
                        eng._roce_ctrl(cs, k, ev, fl, t)
                elif kind == DATA:
                    if (eng._sack_recv(cs, k, ev, fl, t, False) if sack else
                            eng._roce_recv(cs, k, ev, fl, t, False)):
                        done.append((t, cs.cid))
                        if stop_at_done:
                            q.putback(i, n)
                            stop = True
                            break
                elif kind == TRIM:  # (only uec trims)
                    eng._sack_recv(cs, k, ev, fl, t, True)
                elif tk == DCTCP:  # TIMER (uec loses nothing: it has no timer)
                    eng._dctcp_timer(cs, k, size, t)
                else:
                    eng._roce_timer(cs, k, size, t)
                continue
            b = eng.busy[p]
            if kind == CTRL:  # `ack` bytes, serialised in `acktx[p]`; never dropped
                if b > t:
                    qd = b - t
                    if qd > eng.pmaxq[p]:
                        eng.pmaxq[p] = qd
                    b += eng.acktx[p]
                else:
                    b = t + eng.acktx[p]
            else:
                size = q.ev[row + F_SIZE]
                if size == wire:
                    tx = eng.txf[p]
                else:  # (a short last packet: Python ints, whose product cannot overflow)
                    tx = tx_ps(size, eng.rate[p])
                if b > t:
                    qd = b - t
                    if qd + tx > eng.bufps[p]:
                        pid = eng.pports[o]
                        key = (pid, hop)  # (`pbytes`)
                        eng.cutb[key] = eng.cutb.get(key, 0) + size
                        cs = eng.conns[q.ev[row + F_CONN]]
                        k = q.ev[row + F_SEQ]
                        ev = q.ev[row + F_EV]
                        q.release(s)
                        if tk == UEC:
                            eng._uec_loss(cs, k, o, hop, ev, t)
                        else:  # (dctcp and roce drop)
                            eng._drop(cs, k, o, hop, ev, t)
                        continue
                    if qd > eng.ecnps[p]:
                        meta |= 4  # the ECN mark (flags 1)
                        eng.pmarks[p] += 1
                    if qd > eng.pmaxq[p]:
                        eng.pmaxq[p] = qd
                    b += tx
                else:
                    b = t + tx
            eng.busy[p] = b
            q.ev[row + F_T] = b + eng.prop[p]
            q.ev[row + F_META] = meta + 16  # the next hop
            q.push(s)
    if last > eng.now:
        eng.now = last
    return done
