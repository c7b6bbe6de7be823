# Cython declarations for `qoe.py` (pure-Python mode, `wrpsim._native`): `QoEMeter` is an
# extension type whose times, levels, pace and lag are C doubles (each is a float in Python
# too: times and levels are floats, and a pace given as an int gives the same results, every
# use of it being a float operation), and the piece integrals run on doubles. The meter of
# every request is fed once per decode stint (`AccountingMixin._stint_qoe`). `n` (the output
# tokens) stays a Python int.

cimport cython


@cython.locals(x=cython.double)
cpdef double _lin_deficit(double u, double du, double v, double dv)

@cython.locals(te=cython.double, slope=cython.double, total=cython.double, u=cython.double,
               v=cython.double, au=cython.double, av=cython.double, tu=cython.double,
               tv=cython.double)
cpdef double piece_deficit(double ta, double ya, double tb, double yb, double e, double p, n)


cdef class QoEMeter:
    cdef public double deficit
    cdef public double e
    cdef public object n
    cdef public double p
    cdef public double t
    cdef public double y

    cpdef advance(self, double t, double y)

    cpdef line(self, double t, double y)

    cpdef ahead(self, double t, double y)

    @cython.locals(t_exp=cython.double, s_exp=cython.double, q=cython.double)
    cpdef double finish(self, double t)
