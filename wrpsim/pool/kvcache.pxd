# Cython declarations for `kvcache.py` (pure-Python mode,
# `wrpsim._native`): `KVLedger` is an extension type.
# Attributes are Python objects (`object`): no C number types, so no value changes.

cdef class KVLedger:
    cdef public object _area
    cdef public object _hist
    cdef public object _t_last
    cdef public object block_size
    cdef public object capacity
    cdef public object decoders
    cdef public object evictable
    cdef public object evictor
    cdef public object peak
    cdef public object used
