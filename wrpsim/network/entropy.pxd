# Cython declarations for `entropy.py` (pure-Python mode, `wrpsim._native`): the choosers are
# extension types (their `__slots__` as struct fields), so the engine's `_emit` and ACK
# handlers call `choose` and `feedback` as C methods and read `adaptive` as a field. Counters
# and EV indices are `Py_ssize_t` (at most `entropies`, 65,536); times, gaps and random
# generators stay Python objects.

cimport cython


cdef class Chooser:
    cdef public Py_ssize_t n
    cdef public bint adaptive

    cpdef choose(self, t)

    cpdef feedback(self, ev, sig)


cdef class Oblivious(Chooser):
    cdef public Py_ssize_t i
    cdef public object rng
    cdef public bint randomly

    @cython.locals(i=Py_ssize_t)
    cpdef choose(self, t)

    cpdef feedback(self, ev, sig)


cdef class Reps(Chooser):
    cdef public Py_ssize_t i
    cdef public object cache

    @cython.locals(i=Py_ssize_t)
    cpdef choose(self, t)

    cpdef feedback(self, ev, sig)


cdef class Bitmap(Chooser):
    cdef public Py_ssize_t i
    cdef public bytearray penalty
    cdef public Py_ssize_t bad

    @cython.locals(n=Py_ssize_t, pen=bytearray, i=Py_ssize_t, first=bint)
    cpdef choose(self, t)

    @cython.locals(pen=bytearray)
    cpdef feedback(self, ev, sig)


cdef class Flowlet(Chooser):
    cdef public object rng
    cdef public object gap
    cdef public object ev
    cdef public object last

    cpdef choose(self, t)

    cpdef feedback(self, ev, sig)
