# Cython declarations for `dctcp.py` (pure-Python mode, `wrpsim._native`): `DctcpMixin` is an
# extension type of `PacketEngine`'s chain; the attributes are declared on its root,
# `TransportBase` (`transport.pxd`, which says how handler arguments are typed).

cimport cython

from wrpsim.network.connection cimport ConnState
from wrpsim.network.roce cimport RoceMixin
from wrpsim.network.transport cimport ECN_FLAG


cdef class DctcpMixin(RoceMixin):
    @cython.locals(sacked=bytearray, lost=dict, s=cython.Py_ssize_t, top=cython.Py_ssize_t)
    cpdef _dctcp_ctrl(self, ConnState cs, Py_ssize_t k, Py_ssize_t ev, int fl, long long t)

    @cython.locals(lost=dict)
    cpdef _dctcp_timer(self, ConnState cs, Py_ssize_t k, long long t0, long long t)
