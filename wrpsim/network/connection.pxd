# Cython declarations for `connection.py` (pure-Python mode, `wrpsim._native`): `ConnState` is
# an extension type; counts and sequence numbers are `Py_ssize_t`, times `long long` ps, the
# window and DCTCP's alpha `double` (each always holds a float), the send times a typed
# memoryview over `array('q')` (None when freed; the only one: each costs its slice struct in
# every connection), the bitmaps `bytearray`.

cimport cython

from wrpsim.network.entropy cimport Chooser


@cython.final
cdef class ConnState:
    cdef public Py_ssize_t cid
    cdef public Py_ssize_t pbase
    cdef public Py_ssize_t rbase
    cdef public Chooser chooser
    cdef public Py_ssize_t npk
    cdef public long long last
    cdef public Py_ssize_t next
    cdef public Py_ssize_t top
    cdef public Py_ssize_t una
    cdef public Py_ssize_t infl
    cdef public double wnd
    cdef public Py_ssize_t rcv
    cdef public Py_ssize_t maxseen
    cdef public Py_ssize_t ooo
    cdef public Py_ssize_t maxdist
    cdef public Py_ssize_t retx
    cdef public Py_ssize_t drops
    cdef public long long start
    cdef public long long finish
    cdef public double alpha
    cdef public Py_ssize_t acked
    cdef public Py_ssize_t marked
    cdef public Py_ssize_t wend
    cdef public Py_ssize_t cut
    cdef public long long[::1] sendt
    cdef public bytearray sacked
    cdef public bytearray got
    cdef public dict lost
    cdef public Py_ssize_t scan
    cdef public Py_ssize_t hi
    cdef public Py_ssize_t epsn
    cdef public Py_ssize_t nakpsn
