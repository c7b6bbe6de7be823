"""One connection's state in the packet engine: its paths, its sender and its receiver.

The transports (`transport.py`, `uec.py`, `dctcp.py`, `roce.py`) read and write these fields;
what each means (window `wnd` in packets, `infl` packets sent and unacknowledged, `una` the
lowest unacknowledged, `next` the next new one, …) is stated there. The connection's paths, one
per entropy value (EV), are entries of the engine's EV table (`TransportBase._path_sets`, shared
by every connection between the same endpoints over the same paths): entry `pbase + ev` is the
forward path's offset in the path table, `rbase + ev` the path of the control packets coming
back. `sendt`, `sacked`, `got` and `lost` are freed (None) when the connection no longer needs
them (`_sender_done`, `_received`).
Compiled, an extension type whose numbers are C fields (`connection.pxd`).
"""

from __future__ import annotations

from array import array

FIELDS = ("pbase", "rbase", "chooser", "npk", "last", "next", "top", "una", "infl", "wnd",
          "rcv", "maxseen", "ooo", "maxdist", "retx", "drops", "start", "finish", "alpha",
          "acked", "marked", "wend", "cut", "sendt", "sacked", "got", "lost", "scan", "hi",
          "epsn", "nakpsn")


class ConnState:
    """The state of connection `cid` (module docstring)."""

    __slots__ = ("cid", *FIELDS)

    def __init__(self, cid: int, pbase: int, rbase: int, chooser, npk: int, last: int,
                 start: int, wnd: float, timed: bool, sack: bool):
        """`npk` packets, the last one `last` bytes on the wire; `timed`: record send times
        (uec's RTT samples); `sack`: the receiver and sender keep bitmaps (uec, dctcp)."""
        self.cid = cid
        self.pbase, self.rbase, self.chooser = pbase, rbase, chooser
        self.npk, self.last = npk, last
        self.next = self.top = self.una = self.infl = 0
        self.wnd = wnd
        self.rcv = 0
        self.maxseen = -1
        self.ooo = self.maxdist = self.retx = self.drops = 0
        self.start, self.finish = start, -1
        self.alpha = 1.0
        self.acked = self.marked = self.wend = 0
        self.cut = -1
        self.sendt = array("q", bytes(8 * npk)) if timed else None
        self.sacked = bytearray(npk) if sack else None
        self.got = bytearray(npk) if sack else None
        self.lost: dict[int, int] | None = {}
        self.scan = 0
        self.hi = -1
        self.epsn = 0
        self.nakpsn = -1
