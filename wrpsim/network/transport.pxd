# Cython declarations for `transport.py` (pure-Python mode, `wrpsim._native`): the root of
# `PacketEngine`'s chain (`TransportBase` ← `RoceMixin` ← `DctcpMixin` ← `UecMixin` ←
# `PacketEngine`) holds every attribute of `PacketEngine` (its `__slots__`), so the hop loop
# (`packet._run`) and every handler read them as struct fields. Attributes are Python objects,
# typed `list` / `dict` where that is what they hold (the per-port and per-connection lists:
# their items stay Python objects), and C numbers only where a value is always a float
# (`double`: `wmax`, `pi_gain`) or always an int (`long long` / `Py_ssize_t`; `rwnd` is at
# most 2**62) or a bool
# (`bint`); `tests/test_native.py` lists them. Values that travel in events (sizes, EVs,
# sequence numbers, the header and wire sizes) stay objects, so events reuse them unboxed.
# The handlers are `cpdef` with the connection index `c` a `Py_ssize_t` and times `t` as
# `long long` picoseconds (every time is an int below 2**62, the engine's infinity; a value
# past 2**63 would raise OverflowError, never wrap); floor divisions keep Python's rounding (no
# `cdivision`), and int / int true divisions stay Python operations.

cimport cython

from wrpsim.network.entropy cimport Chooser


cdef class TransportBase:
    cdef public dict _evpaths
    cdef public dict _rev
    cdef public object ack
    cdef public list acktx
    cdef public list bheap
    cdef public dict buckets
    cdef public list bufps
    cdef public list busy
    cdef public list c_acked
    cdef public list c_alpha
    cdef public list c_chooser
    cdef public list c_cut
    cdef public list c_drops
    cdef public list c_epsn
    cdef public list c_finish
    cdef public list c_got
    cdef public list c_hi
    cdef public list c_infl
    cdef public list c_last
    cdef public list c_lost
    cdef public list c_marked
    cdef public list c_maxdist
    cdef public list c_maxseen
    cdef public list c_nakpsn
    cdef public list c_next
    cdef public list c_npk
    cdef public list c_ooo
    cdef public list c_paths
    cdef public list c_rcv
    cdef public list c_retx
    cdef public list c_rpaths
    cdef public list c_sacked
    cdef public list c_scan
    cdef public list c_sendt
    cdef public list c_start
    cdef public list c_top
    cdef public list c_una
    cdef public list c_wend
    cdef public list c_wnd
    cdef public object cfg
    cdef public long long ctrl_packets
    cdef public dict cutb
    cdef public list ecnps
    cdef public object hdr
    cdef public object mtu
    cdef public Py_ssize_t nconns
    cdef public object now
    cdef public list pathb
    cdef public list pathlist
    cdef public list pdrops
    cdef public double pi_gain
    cdef public list pmarks
    cdef public list pmaxq
    cdef public list prop
    cdef public list ptrims
    cdef public list rate
    cdef public object rng
    cdef public object rto_ps
    cdef public long long rwnd
    cdef public bint sacking
    cdef public list salts
    cdef public object seed
    cdef public object target_ps
    cdef public Py_ssize_t tkind
    cdef public object topo
    cdef public list txf
    cdef public long long width
    cdef public object window
    cdef public object wire
    cdef public double wmax

    cpdef _push(self, tuple ev)

    @cython.locals(nxt=cython.Py_ssize_t, infl=cython.Py_ssize_t, w=cython.double,
                   lim=cython.longlong, npk=cython.Py_ssize_t)
    cpdef _pump(self, Py_ssize_t c, long long t)

    @cython.locals(ch=Chooser, path=tuple, p=cython.Py_ssize_t, busy=list, b=cython.longlong,
                   npk=cython.Py_ssize_t, top=cython.Py_ssize_t, arr=cython.longlong,
                   bi=cython.longlong)
    cpdef _emit(self, Py_ssize_t c, Py_ssize_t k, long long t)

    @cython.locals(path=tuple, p=cython.Py_ssize_t, tx=cython.longlong, b=cython.longlong,
                   arr=cython.longlong, bi=cython.longlong)
    cpdef _ctrl(self, Py_ssize_t c, k, ev, flags, long long t)

    @cython.locals(ch=Chooser)
    cpdef _feedback(self, Py_ssize_t c, ev, int flags)

    @cython.locals(got=bytearray, fin=cython.bint)
    cpdef bint _sack_recv(self, Py_ssize_t c, k, ev, ecn, long long t, bint trimmed)

    cpdef bint _received(self, Py_ssize_t c, long long t)

    @cython.locals(una=cython.Py_ssize_t, npk=cython.Py_ssize_t)
    cpdef bint _sack_ack(self, Py_ssize_t c, Py_ssize_t k, bytearray sacked)

    cpdef bint _sender_done(self, Py_ssize_t c)

    @cython.locals(p=cython.Py_ssize_t)
    cpdef _drop(self, Py_ssize_t c, k, hop, ev, long long t)

    @cython.locals(w=cython.double)
    cpdef _ecn_window(self, Py_ssize_t c, k, ecn)

    cpdef _loss_cut(self, Py_ssize_t c, k)
