# Compiled (`wrpsim._native`): `PacketEngine` is the last extension type of its chain (the
# attributes are declared on its root, `TransportBase`, in `transport.pxd`), and the hop loop
# `_run` (see its docstring) takes it typed, so it reads the engine's per-port arrays, its path
# table and its event queue's rows as C arrays and calls the transport handlers as C methods;
# its locals have C types. Times and queue lengths in picoseconds are `long long` (every value
# is an int below 2**63; Cython raises OverflowError otherwise); slots, rows, ports, hops and
# row fields `Py_ssize_t` / `long long`; event kinds, flags and the transport number small ints.
cimport cython

from wrpsim.network.calendar cimport (F_CONN, F_EV, F_META, F_PATH, F_SEQ, F_SIZE, F_T, STRIDE,
                                      EventQueue)
from wrpsim.network.connection cimport ConnState
from wrpsim.network.transport cimport CTRL, DATA, DCTCP, TRIM, UEC
from wrpsim.network.uec cimport UecMixin


cdef class PacketEngine(UecMixin):
    pass


@cython.locals(q=EventQueue, tk=Py_ssize_t, sack=cython.bint, wire=cython.longlong,
               last=cython.longlong, stop=cython.bint, n=Py_ssize_t, i=Py_ssize_t,
               s=Py_ssize_t, row=Py_ssize_t, t=cython.longlong, meta=cython.longlong,
               kind=cython.int, hop=Py_ssize_t, o=Py_ssize_t, p=Py_ssize_t, cs=ConnState,
               k=Py_ssize_t, ev=Py_ssize_t, fl=cython.int, size=cython.longlong,
               b=cython.longlong, qd=cython.longlong, tx=cython.longlong, pid=Py_ssize_t,
               done=list)
cdef list _run(PacketEngine eng, long long lim, bint stop_at_done)
