# Cython declarations for `wakeup.py` (pure-Python mode,
# `wrpsim._native`): the light events are extension types.
# Attributes are Python objects (`object`): no C number types, so no value changes.

cdef class Wakeup:
    cdef public object fn
    cdef public object value


cdef class JoinedWakeup:
    cdef public object callbacks
    cdef public object value
