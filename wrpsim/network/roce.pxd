# Cython declarations for `roce.py` (pure-Python mode, `wrpsim._native`): `RoceMixin` is an
# extension type of `PacketEngine`'s chain; the attributes are declared on its root,
# `TransportBase` (`transport.pxd`, which says how handler arguments are typed).

cimport cython

from wrpsim.network.transport cimport TransportBase


cdef class RoceMixin(TransportBase):
    @cython.locals(lost=dict)
    cpdef bint _roce_recv(self, Py_ssize_t c, k, ev, ecn, long long t, bint trimmed)

    @cython.locals(lost=dict)
    cpdef _roce_ctrl(self, Py_ssize_t c, k, ev, int fl, long long t)

    @cython.locals(lost=dict)
    cpdef _roce_timer(self, Py_ssize_t c, k, t0, long long t)

    cpdef _go_back(self, Py_ssize_t c)
