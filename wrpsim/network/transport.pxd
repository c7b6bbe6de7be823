# Cython declarations for `transport.py` (pure-Python mode, `wrpsim._native`): the root of
# `PacketEngine`'s chain (`TransportBase` ← `RoceMixin` ← `DctcpMixin` ← `UecMixin` ←
# `PacketEngine`) holds every attribute of `PacketEngine` (its `__slots__`), so the hop loop
# (`packet._run`) and every handler read them as struct fields. The per-port numbers and the
# path table are typed memoryviews of `long long` over `array('q')` objects (every value an
# int below 2**63: times in ps, byte counts, ports; the engine's infinity is 2**62); the
# connections are `ConnState` objects (`connection.pxd`), the events rows of an `EventQueue`
# (`calendar.pxd`). C numbers elsewhere only where a value is always a float (`double`:
# `wmax`, `pi_gain`) or always an int (`long long` / `Py_ssize_t`) or a bool (`bint`);
# `tests/test_native.py` lists them. The handlers are `cpdef` with the connection's state
# typed, sequence numbers, EVs and ports `Py_ssize_t` and times `long long` picoseconds (a
# value past 2**63 would raise OverflowError, never wrap); floor divisions keep Python's
# rounding (no `cdivision`), and int / int true divisions of values below 2**53 round as
# Python's.

cimport cython

from wrpsim.network.calendar cimport EventQueue
from wrpsim.network.connection cimport ConnState
from wrpsim.network.entropy cimport Chooser

cdef enum:
    ECN_FLAG = 1
    NACK_FLAG = 2
    DATA = 0
    CTRL = 1
    TRIM = 2
    TIMER = 3
    UEC = 0
    DCTCP = 1
    ROCE = 2
    END = -1
    NOPATH = 0


cdef class TransportBase:
    cdef public dict _evpaths
    cdef public dict _rev
    cdef public long long ack
    cdef long long[::1] acktx
    cdef long long[::1] bufps
    cdef long long[::1] busy
    cdef public object cfg
    cdef public list conns
    cdef public long long ctrl_packets
    cdef public dict cutb
    cdef long long[::1] ecnps
    cdef long long[::1] evp
    cdef public object evp_a
    cdef public long long hdr
    cdef public long long mtu
    cdef public object now
    cdef long long[::1] pathb
    cdef public object pathb_a
    cdef public list pathlist
    cdef long long[::1] pdrops
    cdef public double pi_gain
    cdef long long[::1] pmarks
    cdef long long[::1] pmaxq
    cdef long long[::1] pports
    cdef public object pports_a
    cdef long long[::1] prop
    cdef long long[::1] ptrims
    cdef public EventQueue q
    cdef long long[::1] rate
    cdef public object rng
    cdef public long long rto_ps
    cdef public long long rwnd
    cdef public bint sacking
    cdef public list salts
    cdef public object seed
    cdef public long long target_ps
    cdef public Py_ssize_t tkind
    cdef public object topo
    cdef long long[::1] txf
    cdef public object window
    cdef public long long wire
    cdef public double wmax

    cpdef _event(self, long long t, int kind, Py_ssize_t c, Py_ssize_t k, Py_ssize_t hop,
                 Py_ssize_t ev, long long size, int flags, Py_ssize_t o)

    @cython.locals(nxt=cython.Py_ssize_t, infl=cython.Py_ssize_t, w=cython.double,
                   lim=cython.longlong, npk=cython.Py_ssize_t)
    cpdef _pump(self, ConnState cs, long long t)

    @cython.locals(ch=Chooser, ev=Py_ssize_t, o=Py_ssize_t, p=Py_ssize_t, b=cython.longlong,
                   wire=cython.longlong, size=cython.longlong)
    cpdef _emit(self, ConnState cs, Py_ssize_t k, long long t)

    @cython.locals(o=Py_ssize_t, p=Py_ssize_t, tx=cython.longlong, b=cython.longlong)
    cpdef _ctrl(self, ConnState cs, Py_ssize_t k, Py_ssize_t ev, int flags, long long t)

    @cython.locals(ch=Chooser)
    cpdef _feedback(self, ConnState cs, Py_ssize_t ev, int flags)

    @cython.locals(got=bytearray, fin=cython.bint, ms=Py_ssize_t, r=Py_ssize_t)
    cpdef bint _sack_recv(self, ConnState cs, Py_ssize_t k, Py_ssize_t ev, int ecn, long long t,
                          bint trimmed)

    @cython.locals(r=Py_ssize_t)
    cpdef bint _received(self, ConnState cs, long long t)

    @cython.locals(una=cython.Py_ssize_t, npk=cython.Py_ssize_t)
    cpdef bint _sack_ack(self, ConnState cs, Py_ssize_t k, bytearray sacked)

    cpdef bint _sender_done(self, ConnState cs)

    @cython.locals(lost=dict)
    cpdef _drop(self, ConnState cs, Py_ssize_t k, Py_ssize_t o, Py_ssize_t hop, Py_ssize_t ev,
                long long t)

    @cython.locals(w=cython.double)
    cpdef _ecn_window(self, ConnState cs, Py_ssize_t k, int ecn)

    cpdef _loss_cut(self, ConnState cs, Py_ssize_t k)
