# Cython declarations for `records.py` (pure-Python mode, `wrpsim._native`): `RequestLog` is
# an extension type (its dicts and lists are struct fields), and `finished`, called once per
# completed request, reads its sequence (`Seq`) and instance (`Instance`) as typed objects.
# Everything stays a Python object, so every recorded value keeps its type.

from wrpsim.pool.instance cimport Instance
from wrpsim.pool.sequence cimport Seq


cdef class RequestLog:
    cdef dict __dict__
    cdef public object on_complete
    cdef public object on_dropped
    cdef public object open
    cdef public object retried
    cdef public object route_s
    cdef public object rows

    cpdef finished(self, Seq seq, Instance inst, now)
