# Cython declarations for `roce.py` (pure-Python mode, `wrpsim._native`): `RoceMixin` is an
# extension type of `PacketEngine`'s chain; the attributes are declared on its root,
# `TransportBase` (`transport.pxd`, which says how handler arguments are typed).

cimport cython

from wrpsim.network.connection cimport ConnState
from wrpsim.network.transport cimport ECN_FLAG, NACK_FLAG, NOPATH, TIMER, TransportBase


cdef class RoceMixin(TransportBase):
    @cython.locals(lost=dict, e=Py_ssize_t)
    cpdef bint _roce_recv(self, ConnState cs, Py_ssize_t k, Py_ssize_t ev, int ecn, long long t,
                          bint trimmed)

    @cython.locals(lost=dict)
    cpdef _roce_ctrl(self, ConnState cs, Py_ssize_t k, Py_ssize_t ev, int fl, long long t)

    @cython.locals(lost=dict)
    cpdef _roce_timer(self, ConnState cs, Py_ssize_t k, long long t0, long long t)

    cpdef _go_back(self, ConnState cs)
