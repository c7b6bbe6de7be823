# Cython declarations for `entropy.py` (pure-Python mode, `wrpsim._native`): the choosers are
# extension types (their `__slots__` as struct fields), so the engine's `_emit` and ACK
# handlers call `choose` and `feedback` as C methods and read `adaptive` as a field. Counters
# and EV indices are `Py_ssize_t` (at most `entropies`, 65,536), the time a choice is made
# `long long` ps; the flowlet's gap and last send time and the random generators stay Python
# objects.

cimport cython


cdef class Chooser:
    cdef public Py_ssize_t n
    cdef public bint adaptive

    cpdef Py_ssize_t choose(self, long long t) except? -1

    cpdef feedback(self, Py_ssize_t ev, int sig)


cdef class Oblivious(Chooser):
    cdef public Py_ssize_t i
    cdef public object rng
    cdef public bint randomly

    @cython.locals(i=Py_ssize_t)
    cpdef Py_ssize_t choose(self, long long t) except? -1

    cpdef feedback(self, Py_ssize_t ev, int sig)


cdef class Reps(Chooser):
    cdef public Py_ssize_t i
    cdef public object cache

    @cython.locals(i=Py_ssize_t)
    cpdef Py_ssize_t choose(self, long long t) except? -1

    cpdef feedback(self, Py_ssize_t ev, int sig)


cdef class Bitmap(Chooser):
    cdef public Py_ssize_t i
    cdef public bytearray penalty
    cdef public Py_ssize_t bad

    @cython.locals(n=Py_ssize_t, pen=bytearray, i=Py_ssize_t, first=bint)
    cpdef Py_ssize_t choose(self, long long t) except? -1

    @cython.locals(pen=bytearray)
    cpdef feedback(self, Py_ssize_t ev, int sig)


cdef class Flowlet(Chooser):
    cdef public object rng
    cdef public object gap
    cdef public object ev
    cdef public object last

    cpdef Py_ssize_t choose(self, long long t) except? -1

    cpdef feedback(self, Py_ssize_t ev, int sig)
