# Cython declarations for `eventloop.py` (pure-Python mode,
# `wrpsim._native`): `Arrivals` is an extension type.
# Attributes are Python objects (`object`): no C number types, so no value changes.

cdef class Arrivals:
    cdef public object dispatch
    cdef public object env
    cdef public object k
    cdef public object next_fn
    cdef public object pending
    cdef public object progress
    cdef public object requests
