# Cython declarations for `dispatcher.py` (pure-Python mode, `wrpsim._native`): `Dispatcher`
# is an extension type, so its methods read its attributes as struct fields instead of
# looking each one up by name. All are Python objects; the instance dict stays (`__dict__`):
# a user's router puts its contract checker over `_routed` there (`RouteChecker`).
# `_decide`, `_admit` and `_fits` are `cpdef` (C calls between them); the instances they
# admit to are typed `Instance` (every instance of a fleet is one), so its fields are read
# directly too.

cimport cython

from wrpsim.pool.instance cimport Instance


cdef class Dispatcher:
    cdef dict __dict__
    cdef public object _admit_due_fn
    cdef public object _next_id
    cdef public object cache
    cdef public object env
    cdef public object failures
    cdef public object feed
    cdef public object fleet
    cdef public object log
    cdef public object router
    cdef public object service

    @cython.locals(inst=Instance)
    cpdef _decide(self, req, came, end)

    cpdef _admit(self, req, Instance inst, dec, delay=*)

    cpdef _fits(self, req, Instance inst, context, kv=*)
