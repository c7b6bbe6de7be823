# Cython declarations for `uec.py` (pure-Python mode, `wrpsim._native`): `UecMixin` is an
# extension type of `PacketEngine`'s chain; the attributes are declared on its root,
# `TransportBase` (`transport.pxd`, which says how handler arguments are typed). The window is
# a C double (it always holds a float); the RTT and its target are C ints below 2**53, so the
# int / int division of the window law rounds as Python's.

cimport cython

from wrpsim.network.connection cimport ConnState
from wrpsim.network.dctcp cimport DctcpMixin
from wrpsim.network.entropy cimport Chooser
from wrpsim.network.transport cimport END, NACK_FLAG, TRIM


cdef class UecMixin(DctcpMixin):
    @cython.locals(sacked=bytearray, ch=Chooser, w=cython.double, rtt=cython.longlong,
                   target=cython.longlong)
    cpdef _uec_ctrl(self, ConnState cs, Py_ssize_t k, Py_ssize_t ev, int fl, long long t)

    @cython.locals(pports="long long[::1]", p=Py_ssize_t, rest=cython.longlong,
                   h=cython.longlong)
    cpdef _uec_loss(self, ConnState cs, Py_ssize_t k, Py_ssize_t o, Py_ssize_t hop,
                    Py_ssize_t ev, long long t)
