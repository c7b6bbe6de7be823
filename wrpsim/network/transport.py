"""What every transport of the packet engine shares: connection state, sending, ACKs, counters.

The root of `PacketEngine`'s class chain (`TransportBase` ← `RoceMixin` ← `DctcpMixin` ←
`UecMixin` ← `PacketEngine`, one inheritance chain with the method order of the former mixins;
compiled, every class of it is an extension type whose attributes, the engine's per-port
arrays among them, are declared on this root in `transport.pxd`). A connection's state is a
`ConnState` (`connection.py`); events are rows of the engine's `EventQueue` (`calendar.py`). The
transports (`uec.py`, `dctcp.py`, `roce.py`) add their handlers, which the engine's hop loop
calls by the transport's number `tkind` (`_bind_transport`):

- on a data packet (or, trimmed, its header) `k` reaching the receiver at `t`,
  `_sack_recv(cs, k, ev, ecn, t, trimmed)` (uec and dctcp: the receiver with a bitmap) or
  `_roce_recv`; True when it completes the connection (every packet received once);
- on an ACK or NACK (`flags`: 1 ECN echo, 2 NACK) reaching the sender,
  `_{uec,dctcp,roce}_ctrl(cs, k, ev, flags, t)`;
- on packet `k` overflowing the port at `hop` of its path (which starts at offset `o` of the
  path table), `_uec_loss(cs, k, o, hop, ev, t)` (trim) or `_drop` (dctcp, roce);
- when the loss timer of packet `k`, lost at `t0`, fires, `_{dctcp,roce}_timer(cs, k, t0, t)`
  (uec loses nothing: no timer).

(`cs` is the connection's `ConnState`.)

Shared sender rules: a connection never has more than its window `wnd` (packets, a float) of
distinct packets sent and unacknowledged (`infl`), starts with the full window
(`window_packets`, or `window_bdp` × the host BDP, also its ceiling), and sends new packets in
sequence order; a send of a sequence number already sent once counts as a retransmission.
Every control packet is `ack_bytes` on the wire and echoes the EV of the packet it answers, so
the path chooser (`entropy.py`) learns which paths are congested. The receiver state of a
finished connection and the sender state of a fully acknowledged one are freed; packets of such
a connection still in flight (duplicates) are then ignored.
"""

from __future__ import annotations

from array import array
from math import ceil

try:
    import cython
except ImportError:  # pure Python without Cython installed
    from wrpsim import _cyshim as cython

from wrpsim.network.config import SPRAYED, TRANSPORTS
from wrpsim.network.connection import FIELDS as CONN_FIELDS
from wrpsim.network.connection import ConnState
from wrpsim.network.entropy import ECN, GOOD, NACK, ev_spines, make_chooser
from wrpsim.network.hashing import switch_salts
from wrpsim.network.paths import Conn
from wrpsim.network.topology import tx_ps

if not cython.compiled:  # (compiled, the enums of `calendar.pxd` and `transport.pxd`)
    ECN_FLAG, NACK_FLAG = 1, 2  # a control packet's flags
    DATA, CTRL, TRIM, TIMER = 0, 1, 2, 3  # event kinds (meta: kind | flags << 2 | hop << 4)
    UEC, DCTCP, ROCE = 0, 1, 2  # `tkind`: the index in config.TRANSPORTS
    END = -1  # the mark that ends every path in the path table (`_path`)
    NOPATH = 0  # the path-table offset of timer events: its hop 0 is END


class TransportBase:
    """Connection set-up, sending and counters shared by the transports (module docstring)."""

    __slots__ = ()  # (the attributes are `PacketEngine`'s slots)

    def _bind_transport(self, name: str) -> None:
        self.tkind = TRANSPORTS.index(name)  # UEC, DCTCP or ROCE: whose handlers run
        # (no window is wider than 2**62 packets, more than any connection has: a C number)
        self.rwnd = min(self.cfg.reorder_window, 1 << 62) if name == "uec" else 1 << 62
        self.target_ps = self.topo.base_rtt_ps * 3 // 2
        self.ack = self.cfg.ack_bytes
        self.acktx = array("q", [tx_ps(self.ack, r) for r in self.rate])
        self.pi_gain = self.topo.bdp_bytes(self.topo.host_bps) / self.wire / 2
        self.sacking = name != "roce"
        self.salts = switch_salts(self.seed, self.topo.L + self.topo.S, self.cfg.salted)
        self._evpaths: dict[tuple, tuple[int, int]] = {}
        self._rev: dict[tuple, tuple[int, int]] = {}
        self.pathlist: list[tuple] = []
        self.pathb_a = array("q")  # (the arrays behind `pathb` and `pports`, which `_path` grows)
        self.pports_a = array("q", [END])  # offset NOPATH: the timers' path
        self.pathb, self.pports = self.pathb_a, self.pports_a
        self.evp_a = array("q")  # the EV table (`_path_sets`), behind `evp`
        self.evp = self.evp_a
        self.cutb: dict[tuple[int, int], int] = {}

    def _event(self, t: int, kind: int, c: int, k: int, hop: int, ev: int, size: int,
               flags: int, o: int) -> None:
        """Schedule an event at `t` ps (a row of the event queue, `calendar.py`)."""
        self.q.add(t, c, k, ev, size, o, kind | flags << 2 | hop << 4)

    def _path_sets(self, conn: Conn) -> tuple[int, int]:
        """Where the forward and the reverse path of each EV of `conn` (one of each for a
        single-path connection) start in the EV table `evp` (`connection.py`): entries
        `fbase + ev` and `rbase + ev` are offsets into the path table (`_path`). Connections
        with the same key share their entries."""
        key = (conn.src, conn.dst, conn.paths) if conn.spray else (conn.paths[0],)
        got = self._evpaths.get(key)
        if got is None:
            if conn.spray:
                salt = self.salts[self.topo.leaf_of[conn.src]]
                idx = ev_spines(salt, conn.src, conn.dst, self.cfg.entropies, len(conn.paths))
                fwd = [conn.paths[i] for i in idx]
            else:
                fwd = [conn.paths[0]]
            rev = self._rev
            for p in dict.fromkeys(fwd):
                if p not in rev:
                    rev[p] = (self._path(self.topo.reverse_path(p)), self._path(p))
            both = [rev[p] for p in fwd]
            self.evp = None  # (an array cannot grow while a view of it is held)
            fbase = len(self.evp_a)
            self.evp_a.extend([f for _, f in both])
            rbase = len(self.evp_a)
            self.evp_a.extend([r for r, _ in both])
            self.evp = self.evp_a
            got = self._evpaths[key] = (fbase, rbase)
        return got

    def _path(self, ports) -> int:
        """Add a path through `ports` to the path table and return its offset `o`:
        `pports[o]` is its id (its index in `pathlist` and in the byte counters `pathb`),
        `pports[o + h]` the port of hop h = 1 … n, and `pports[o + n + 1]` the mark `END`, so a
        packet's hop indexes the table directly and reaching `END` is its arrival at the
        receiving NIC. One entry per path, shared by every connection that takes it."""
        pid = len(self.pathlist)
        self.pathlist.append(tuple(ports))
        self.pathb = self.pports = None  # (an array cannot grow while a view of it is held)
        self.pathb_a.append(0)
        o = len(self.pports_a)
        self.pports_a.extend([pid, *ports, END])
        self.pathb, self.pports = self.pathb_a, self.pports_a
        return o

    def add(self, conn: Conn, t: int) -> int:
        """Start `conn` at time `t` (ps) and send its first window; returns its id."""
        if t < self.now:
            raise ValueError(f"packet engine cannot go back in time: now={self.now}, t={t}")
        self.now = t
        cid = len(self.conns)
        npk = max(1, ceil(conn.nbytes / self.mtu))
        spray = conn.spray and self.cfg.lb in SPRAYED
        conn = conn._replace(spray=spray)
        fwd, rev = self._path_sets(conn)
        chooser = make_chooser(self.cfg.lb, self.cfg, self.salts[self.topo.leaf_of[conn.src]],
                               conn.qp, self.rng) if spray else None
        cs = ConnState(cid, fwd, rev, chooser, npk,
                       conn.nbytes - (npk - 1) * self.mtu + self.hdr, t, float(self.window),
                       self.cfg.transport == "uec", self.sacking)
        self.conns.append(cs)
        self._pump(cs, t)
        return cid

    def _pump(self, cs: ConnState, t: int) -> None:
        """Send new packets while the window (and, for uec, the reorder window) allows."""
        nxt, infl, w = cs.next, cs.infl, cs.wnd
        lim = cs.una + self.rwnd
        npk = cs.npk
        if npk < lim:
            lim = npk
        while infl < w and nxt < lim:
            self._emit(cs, nxt, t)
            nxt += 1
            infl += 1
        cs.next, cs.infl = nxt, infl

    def _emit(self, cs: ConnState, k: int, t: int) -> None:
        """Enqueue data packet `k` of connection `cs` at its NIC at time `t`."""
        ch = cs.chooser
        ev = 0 if ch is None else ch.choose(t)
        o = self.evp[cs.pbase + ev]
        wire = self.wire
        size = wire if k != cs.npk - 1 else cs.last
        p = self.pports[o + 1]
        b = self.busy[p]
        if b < t:
            b = t
        if size == wire:  # (an if, not a conditional expression: compiled, its Python-typed
            b += self.txf[p]  # branch would make both branches Python objects)
        else:
            b += tx_ps(size, self.rate[p])
        self.busy[p] = b
        self.pathb[self.pports[o]] += size
        if k < cs.top:
            cs.retx += 1
        else:
            cs.top = k + 1
        if cs.sendt is not None:
            cs.sendt[k] = t
        self._event(b + self.prop[p], DATA, cs.cid, k, 2, ev, size, 0, o)

    def _ctrl(self, cs: ConnState, k: int, ev: int, flags: int, t: int) -> None:
        """Send an ACK / NACK of packet `k` from the receiver's NIC at time `t`: ahead of the
        data waiting there (a NIC's transport engine schedules its control packets before
        queued data), whose departures its serialisation pushes back."""
        o = self.evp[cs.rbase + ev]
        p = self.pports[o + 1]
        tx = self.acktx[p]
        b = self.busy[p]
        self.busy[p] = (b if b > t else t) + tx
        self.pathb[self.pports[o]] += self.ack
        self.ctrl_packets += 1
        self._event(t + tx + self.prop[p], CTRL, cs.cid, k, 2, ev, self.ack, flags, o)

    def _feedback(self, cs: ConnState, ev: int, flags: int) -> None:
        """Tell the connection's path chooser how the packet that carried `ev` fared."""
        ch = cs.chooser
        if ch is not None and ch.adaptive:
            ch.feedback(ev, NACK if flags & NACK_FLAG else ECN if flags & ECN_FLAG else GOOD)

    def _sack_recv(self, cs: ConnState, k: int, ev: int, ecn: int, t: int,
                   trimmed: bool) -> bool:
        """The receiver with a bitmap (uec, dctcp; module docstring): record packet `k` and ACK it
        (a trimmed header, which only uec makes, is NACKed instead while the connection is
        unfinished); True when it completes the connection (its receiver state is then freed)."""
        got = cs.got
        if trimmed:
            if got is not None:
                self._ctrl(cs, k, ev, NACK_FLAG, t)
            return False
        fin = False
        if got is not None and not got[k]:
            got[k] = 1
            ms = cs.maxseen
            if k > ms:
                cs.maxseen = k
            else:
                cs.ooo += 1
                if ms - k > cs.maxdist:
                    cs.maxdist = ms - k
            r = cs.rcv + 1
            if r < cs.npk:
                cs.rcv = r
            else:
                fin = self._received(cs, t)
        self._ctrl(cs, k, ev, ecn, t)
        return fin

    def _received(self, cs: ConnState, t: int) -> bool:
        """Count one newly received packet; True (and the finish time set) at the last one."""
        r = cs.rcv + 1
        cs.rcv = r
        if r < cs.npk:
            return False
        cs.finish = t
        cs.got = None
        return True

    def _sack_ack(self, cs: ConnState, k: int, sacked: bytearray) -> bool:
        """Sender with a bitmap (`sacked`, the connection's, not freed): first ACK of `k`?
        (then the window slot is released and the lowest unacknowledged sequence advanced)."""
        if sacked[k]:
            return False
        sacked[k] = 1
        cs.infl -= 1
        una, npk = cs.una, cs.npk
        while una < npk and sacked[una]:
            una += 1
        cs.una = una
        return True

    def _sender_done(self, cs: ConnState) -> bool:
        """Free the sender state once every packet is acknowledged; True if it was."""
        if cs.una < cs.npk:
            return False
        cs.sacked = None
        cs.sendt = None
        cs.lost = None
        cs.chooser = None
        return True

    def _drop(self, cs: ConnState, k: int, o: int, hop: int, ev: int, t: int) -> None:
        """Drop packet `k` at the port of `hop` and arm its loss timer (`rto_us`)."""
        self.pdrops[self.pports[o + hop]] += 1
        cs.drops += 1
        lost = cs.lost
        if lost is None:  # a duplicate of a fully acknowledged connection
            return
        lost[k] = t
        self._event(t + self.rto_ps, TIMER, cs.cid, k, 0, ev, t, 0, NOPATH)

    def _ecn_window(self, cs: ConnState, k: int, ecn: int) -> None:
        """DCTCP's law on an ACK of k: α once per window, cut by α/2 once per window on a
        mark, else +1/w up to the configured window."""
        cs.acked += 1
        if ecn:
            cs.marked += 1
        if k >= cs.wend:
            g = self.cfg.dctcp_g
            cs.alpha = (1 - g) * cs.alpha + g * cs.marked / cs.acked
            cs.acked = cs.marked = 0
            cs.wend = cs.next
        w = cs.wnd
        if ecn and k > cs.cut:
            w = max(1.0, w * (1 - cs.alpha / 2))
            cs.cut = cs.next
        elif not ecn:
            w = min(self.wmax, w + 1.0 / w)
        cs.wnd = w

    def _loss_cut(self, cs: ConnState, k: int) -> None:
        """Halve the window on a loss of k, at most once per window."""
        if k > cs.cut:
            cs.wnd = max(1.0, cs.wnd / 2)
            cs.cut = cs.next

    def sent(self, c: int) -> int:
        """Data packets connection `c` has sent, resends included."""
        cs = self.conns[c]
        return cs.top + cs.retx

    def column(self, name: str) -> list:
        """Field `name` of every connection's `ConnState`, in id order (for inspection)."""
        if name != "cid" and name not in CONN_FIELDS:
            raise ValueError(f"no connection field {name!r}; valid: cid, {', '.join(CONN_FIELDS)}")
        return [getattr(cs, name) for cs in self.conns]

    def sent_total(self) -> int:
        """Data packets sent by every connection, resends included."""
        return sum(cs.top + cs.retx for cs in self.conns)

    def stats(self) -> dict:
        """Totals: data packets sent (with resends), resends, drops, trims, ECN marks, control
        packets (ACKs and NACKs), out-of-order arrivals, largest reorder distance (packets)."""
        return {
            "data_packets": self.sent_total(),
            "retransmits": sum(cs.retx for cs in self.conns),
            "drops": sum(self.pdrops),
            "trims": sum(self.ptrims),
            "ecn_marks": sum(self.pmarks),
            "control_packets": self.ctrl_packets,
            "out_of_order_packets": sum(cs.ooo for cs in self.conns),
            "max_reorder_distance": max((cs.maxdist for cs in self.conns), default=0),
        }
