# Cython declarations for `dctcp.py` (pure-Python mode, `wrpsim._native`): `DctcpMixin` is an
# extension type of `PacketEngine`'s chain; the attributes are declared on its root,
# `TransportBase` (`transport.pxd`, which says how handler arguments are typed).

cimport cython

from wrpsim.network.roce cimport RoceMixin


cdef class DctcpMixin(RoceMixin):
    @cython.locals(sacked=bytearray, lost=dict, s=cython.Py_ssize_t, top=cython.Py_ssize_t)
    cpdef _dctcp_ctrl(self, Py_ssize_t c, k, ev, int fl, long long t)

    @cython.locals(lost=dict)
    cpdef _dctcp_timer(self, Py_ssize_t c, k, t0, long long t)
