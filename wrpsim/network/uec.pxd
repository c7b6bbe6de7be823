# Cython declarations for `uec.py` (pure-Python mode, `wrpsim._native`): `UecMixin` is an
# extension type of `PacketEngine`'s chain; the attributes are declared on its root,
# `TransportBase` (`transport.pxd`, which says how handler arguments are typed). The window is
# a C double (it always holds a float); the RTT and its target stay Python ints, so the
# int / int division of the window law rounds as Python's.

cimport cython

from wrpsim.network.dctcp cimport DctcpMixin
from wrpsim.network.entropy cimport Chooser


cdef class UecMixin(DctcpMixin):
    @cython.locals(sacked=bytearray, ch=Chooser, w=cython.double)
    cpdef _uec_ctrl(self, Py_ssize_t c, k, ev, int fl, long long t)

    @cython.locals(path=tuple)
    cpdef _uec_loss(self, Py_ssize_t c, k, hop, ev, long long t)
