"""What every transport of the packet engine shares: connection state, sending, ACKs, counters.

The root of `PacketEngine`'s class chain (`TransportBase` ← `RoceMixin` ← `DctcpMixin` ←
`UecMixin` ← `PacketEngine`, one inheritance chain with the method order of the former mixins;
compiled, every class of it is an extension type whose attributes, the engine's flat per-port
and per-connection lists among them, are declared on this root in `transport.pxd`). The
transports (`uec.py`, `dctcp.py`, `roce.py`) add their handlers, which the engine's hop loop
calls by the transport's number `tkind` (`_bind_transport`):

- on a data packet (or, trimmed, its header) `k` reaching the receiver at `t`,
  `_sack_recv(c, k, ev, ecn, t, trimmed)` (uec and dctcp: the receiver with a bitmap) or
  `_roce_recv`; True when it completes the connection (every packet received once);
- on an ACK or NACK (`flags`: 1 ECN echo, 2 NACK) reaching the sender,
  `_{uec,dctcp,roce}_ctrl(c, k, ev, flags, t)`;
- on packet `k` overflowing the port at `hop` of its path, `_uec_loss(c, k, hop, ev, t)`
  (trim) or `_drop` (dctcp, roce);
- when the loss timer of packet `k`, lost at `t0`, fires, `_{dctcp,roce}_timer(c, k, t0, t)`
  (uec loses nothing: no timer).

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

import heapq
from math import ceil

from wrpsim.network.config import SPRAYED, TRANSPORTS
from wrpsim.network.entropy import ECN, GOOD, NACK, ev_spines, make_chooser
from wrpsim.network.hashing import switch_salts
from wrpsim.network.paths import Conn
from wrpsim.network.topology import tx_ps

CONN_FIELDS = ("paths", "rpaths", "chooser", "npk", "last", "next", "top", "una", "infl",
               "wnd", "rcv", "maxseen", "ooo", "maxdist", "retx", "drops", "start", "finish",
               "alpha", "acked", "marked", "wend", "cut", "sendt", "sacked", "got", "lost",
               "scan", "hi", "epsn", "nakpsn")
ECN_FLAG, NACK_FLAG = 1, 2
DATA, CTRL, TRIM, TIMER = 0, 1, 2, 3  # event kinds (packet.py)
UEC, DCTCP, ROCE = (TRANSPORTS.index(name) for name in ("uec", "dctcp", "roce"))  # `tkind`
END = (-1,)  # the mark that ends every path tuple of the engine (`_path_tuple`)


class TransportBase:
    """Connection set-up, sending and counters shared by the transports (module docstring)."""

    __slots__ = ()  # (the attributes are `PacketEngine`'s slots)

    def _bind_transport(self, name: str) -> None:
        self.tkind = TRANSPORTS.index(name)  # UEC, DCTCP or ROCE: whose handlers run
        # (no window is wider than 2**62 packets, more than any connection has: a C number)
        self.rwnd = min(self.cfg.reorder_window, 1 << 62) if name == "uec" else 1 << 62
        self.target_ps = self.topo.base_rtt_ps * 3 // 2
        self.ack = self.cfg.ack_bytes
        self.acktx = [tx_ps(self.ack, r) for r in self.rate]
        self.pi_gain = self.topo.bdp_bytes(self.topo.host_bps) / self.wire / 2
        self.sacking = name != "roce"
        self.salts = switch_salts(self.seed, self.topo.L + self.topo.S, self.cfg.salted)
        self._evpaths: dict[tuple, tuple[list, list]] = {}
        self._rev: dict[tuple, tuple] = {}
        self.pathlist: list[tuple] = []
        self.pathb: list[int] = []
        self.cutb: dict[tuple[int, int], int] = {}

    def _push(self, ev: tuple) -> None:
        """Schedule event `ev` (cold path; the hot loop and `_emit`, `_ctrl` inline this)."""
        b = ev[0] // self.width
        lst = self.buckets.get(b)
        if lst is None:
            self.buckets[b] = [ev]
            heapq.heappush(self.bheap, b)
        else:
            lst.append(ev)

    def _path_sets(self, conn: Conn) -> tuple[list, list]:
        """Forward and reverse path of each EV (one of each for a single-path connection) as the
        engine's path tuples `(path id, port, ..., port, END)` (`_path_tuple`)."""
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
                    rev[p] = (self._path_tuple(self.topo.reverse_path(p)), self._path_tuple(p))
            both = [rev[p] for p in fwd]
            got = self._evpaths[key] = ([f for _, f in both], [r for r, _ in both])
        return got

    def _path_tuple(self, ports) -> tuple:
        """The engine's tuple for a path through `ports`: `(id, *ports, END)`. The id (its index
        in `pathlist`) keys the path's byte counter `pathb`; port i of the path is at index
        i + 1, so a packet's `hop` indexes the tuple directly, and the mark `END` tells the
        engine a packet has reached the receiving NIC with the port lookup it makes anyway.
        One tuple per path, shared by every connection that takes it."""
        pt = (len(self.pathlist), *ports, *END)
        self.pathlist.append(pt)
        self.pathb.append(0)
        return pt

    def add(self, conn: Conn, t: int) -> int:
        """Start `conn` at time `t` (ps) and send its first window; returns its id."""
        if t < self.now:
            raise ValueError(f"packet engine cannot go back in time: now={self.now}, t={t}")
        self.now = t
        cid = self.nconns
        self.nconns += 1
        npk = max(1, ceil(conn.nbytes / self.mtu))
        spray = conn.spray and self.cfg.lb in SPRAYED
        conn = conn._replace(spray=spray)
        fwd, rev = self._path_sets(conn)
        chooser = make_chooser(self.cfg.lb, self.cfg, self.salts[self.topo.leaf_of[conn.src]],
                               conn.qp, self.rng) if spray else None
        sack = self.sacking
        for name, v in zip(CONN_FIELDS, (
                fwd, rev, chooser, npk, conn.nbytes - (npk - 1) * self.mtu + self.hdr, 0, 0, 0,
                0, float(self.window), 0, -1, 0, 0, 0, 0, t, -1, 1.0, 0, 0, 0, -1,
                [0] * npk if self.cfg.transport == "uec" else None,
                bytearray(npk) if sack else None, bytearray(npk) if sack else None, {}, 0, -1,
                0, -1)):
            getattr(self, "c_" + name).append(v)
        self._pump(cid, t)
        return cid

    def _pump(self, c: int, t: int) -> None:
        """Send new packets while the window (and, for uec, the reorder window) allows."""
        nxt, infl, w = self.c_next[c], self.c_infl[c], self.c_wnd[c]
        lim = self.c_una[c] + self.rwnd
        npk = self.c_npk[c]
        if npk < lim:
            lim = npk
        while infl < w and nxt < lim:
            self._emit(c, nxt, t)
            nxt += 1
            infl += 1
        self.c_next[c], self.c_infl[c] = nxt, infl

    def _emit(self, c: int, k: int, t: int) -> None:
        """Enqueue data packet `k` of connection `c` at its NIC at time `t`."""
        ch = self.c_chooser[c]
        ev = 0 if ch is None else ch.choose(t)
        path = self.c_paths[c][ev]
        wire = self.wire
        npk = self.c_npk[c]
        size = wire if k != npk - 1 else self.c_last[c]
        p = path[1]
        busy = self.busy
        b = busy[p]
        if b < t:
            b = t
        b += self.txf[p] if size == wire else tx_ps(size, self.rate[p])
        busy[p] = b
        self.pathb[path[0]] += size
        top = self.c_top[c]
        if k < top:
            self.c_retx[c] += 1
        else:
            self.c_top[c] = k + 1
        st = self.c_sendt[c]
        if st is not None:
            st[k] = t
        arr = b + self.prop[p]
        bi = arr // self.width
        try:
            self.buckets[bi].append((arr, DATA, c, k, 2, ev, size, 0, path))
        except KeyError:  # the first event of its bucket
            self.buckets[bi] = [(arr, DATA, c, k, 2, ev, size, 0, path)]
            heapq.heappush(self.bheap, bi)

    def _ctrl(self, c: int, k: int, ev: int, flags: int, t: int) -> None:
        """Send an ACK / NACK of packet `k` from the receiver's NIC at time `t`: ahead of the
        data waiting there (a NIC's transport engine schedules its control packets before
        queued data), whose departures its serialisation pushes back."""
        path = self.c_rpaths[c][ev]
        p = path[1]
        size = self.ack
        tx = self.acktx[p]
        b = self.busy[p]
        self.busy[p] = (b if b > t else t) + tx
        self.pathb[path[0]] += size
        self.ctrl_packets += 1
        arr = t + tx + self.prop[p]
        bi = arr // self.width
        try:
            self.buckets[bi].append((arr, CTRL, c, k, 2, ev, size, flags, path))
        except KeyError:  # the first event of its bucket
            self.buckets[bi] = [(arr, CTRL, c, k, 2, ev, size, flags, path)]
            heapq.heappush(self.bheap, bi)

    def _feedback(self, c: int, ev: int, flags: int) -> None:
        """Tell the connection's path chooser how the packet that carried `ev` fared."""
        ch = self.c_chooser[c]
        if ch is not None and ch.adaptive:
            ch.feedback(ev, NACK if flags & NACK_FLAG else ECN if flags & ECN_FLAG else GOOD)

    def _sack_recv(self, c: int, k: int, ev: int, ecn: int, t: int, trimmed: bool) -> bool:
        """The receiver with a bitmap (uec, dctcp; module docstring): record packet `k` and ACK it
        (a trimmed header, which only uec makes, is NACKed instead while the connection is
        unfinished); True when it completes the connection (its receiver state is then freed)."""
        got = self.c_got[c]
        if trimmed:
            if got is not None:
                self._ctrl(c, k, ev, NACK_FLAG, t)
            return False
        fin = False
        if got is not None and not got[k]:
            got[k] = 1
            ms = self.c_maxseen[c]
            if k > ms:
                self.c_maxseen[c] = k
            else:
                self.c_ooo[c] += 1
                if ms - k > self.c_maxdist[c]:
                    self.c_maxdist[c] = ms - k
            r = self.c_rcv[c] + 1
            if r < self.c_npk[c]:
                self.c_rcv[c] = r
            else:
                fin = self._received(c, t)
        self._ctrl(c, k, ev, ecn, t)
        return fin

    def _received(self, c: int, t: int) -> bool:
        """Count one newly received packet; True (and the finish time set) at the last one."""
        r = self.c_rcv[c] + 1
        self.c_rcv[c] = r
        if r < self.c_npk[c]:
            return False
        self.c_finish[c] = t
        self.c_got[c] = None
        return True

    def _sack_ack(self, c: int, k: int, sacked: bytearray) -> bool:
        """Sender with a bitmap (`sacked`, the connection's, not freed): first ACK of `k`?
        (then the window slot is released and the lowest unacknowledged sequence advanced)."""
        if sacked[k]:
            return False
        sacked[k] = 1
        self.c_infl[c] -= 1
        una, npk = self.c_una[c], self.c_npk[c]
        while una < npk and sacked[una]:
            una += 1
        self.c_una[c] = una
        return True

    def _sender_done(self, c: int) -> bool:
        """Free the sender state once every packet is acknowledged; True if it was."""
        if self.c_una[c] < self.c_npk[c]:
            return False
        self.c_sacked[c] = self.c_sendt[c] = self.c_lost[c] = self.c_chooser[c] = None
        return True

    def _drop(self, c: int, k: int, hop: int, ev: int, t: int) -> None:
        """Drop packet `k` at the port of `hop` and arm its loss timer (`rto_us`)."""
        p = self.c_paths[c][ev][hop]
        self.pdrops[p] += 1
        self.c_drops[c] += 1
        lost = self.c_lost[c]
        if lost is None:  # a duplicate of a fully acknowledged connection
            return
        lost[k] = t
        self._push((t + self.rto_ps, TIMER, c, k, 0, ev, t, 0, END))

    def _ecn_window(self, c: int, k: int, ecn: int) -> None:
        """DCTCP's law on an ACK of k: α once per window, cut by α/2 once per window on a
        mark, else +1/w up to the configured window."""
        self.c_acked[c] += 1
        if ecn:
            self.c_marked[c] += 1
        if k >= self.c_wend[c]:
            g = self.cfg.dctcp_g
            self.c_alpha[c] = (1 - g) * self.c_alpha[c] + g * self.c_marked[c] / self.c_acked[c]
            self.c_acked[c] = self.c_marked[c] = 0
            self.c_wend[c] = self.c_next[c]
        w = self.c_wnd[c]
        if ecn and k > self.c_cut[c]:
            w = max(1.0, w * (1 - self.c_alpha[c] / 2))
            self.c_cut[c] = self.c_next[c]
        elif not ecn:
            w = min(self.wmax, w + 1.0 / w)
        self.c_wnd[c] = w

    def _loss_cut(self, c: int, k: int) -> None:
        """Halve the window on a loss of k, at most once per window."""
        if k > self.c_cut[c]:
            self.c_wnd[c] = max(1.0, self.c_wnd[c] / 2)
            self.c_cut[c] = self.c_next[c]

    def sent(self, c: int) -> int:
        """Data packets connection `c` has sent, resends included."""
        return self.c_top[c] + self.c_retx[c]

    def sent_total(self) -> int:
        """Data packets sent by every connection, resends included."""
        return sum(self.c_top) + sum(self.c_retx)

    def stats(self) -> dict:
        """Totals: data packets sent (with resends), resends, drops, trims, ECN marks, control
        packets (ACKs and NACKs), out-of-order arrivals, largest reorder distance (packets)."""
        return {
            "data_packets": self.sent_total(),
            "retransmits": sum(self.c_retx),
            "drops": sum(self.pdrops),
            "trims": sum(self.ptrims),
            "ecn_marks": sum(self.pmarks),
            "control_packets": self.ctrl_packets,
            "out_of_order_packets": sum(self.c_ooo),
            "max_reorder_distance": max(self.c_maxdist, default=0),
        }
