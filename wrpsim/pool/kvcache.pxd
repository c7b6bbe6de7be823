# Cython declarations for `kvcache.py` (pure-Python mode,
# `wrpsim._native`): `KVLedger` is an extension type.
# Attributes are C numbers: block counts `Py_ssize_t` (always ints: a float raises), the
# occupancy integral and its time `double` (always floats); `evictor` a Python object.

cimport cython


cdef class KVLedger:
    cdef public double _area
    cdef public object _hist
    cdef public double _t_last
    cdef public Py_ssize_t block_size
    cdef public Py_ssize_t capacity
    cdef public Py_ssize_t decoders
    cdef public Py_ssize_t evictable
    cdef public object evictor
    cdef public Py_ssize_t peak
    cdef public Py_ssize_t used

    @cython.locals(used=Py_ssize_t)
    cpdef allocate(self, Py_ssize_t blocks, double now)

    cpdef release(self, Py_ssize_t blocks, double now)

    @cython.locals(bs=Py_ssize_t, q=Py_ssize_t, m=Py_ssize_t, total=Py_ssize_t,
                   lo=Py_ssize_t, hi=Py_ssize_t)
    cpdef Py_ssize_t step_blocks(self, Py_ssize_t step, Py_ssize_t n)

    @cython.locals(free=Py_ssize_t, batch=Py_ssize_t, bs=Py_ssize_t, q=Py_ssize_t,
                   rem=Py_ssize_t, m=Py_ssize_t, tail=Py_ssize_t, nxt=Py_ssize_t)
    cpdef Py_ssize_t max_steps(self, Py_ssize_t step, Py_ssize_t limit)
