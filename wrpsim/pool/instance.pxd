# Cython declarations for `instance.py` (pure-Python mode,
# `wrpsim._native`): `Instance` is an extension type of
# `Instance`'s chain; the attributes are declared on its root, `AccountingMixin`.
# The hot methods are `cpdef` with C-typed arguments and locals (`@cython.locals`): a Python
# subclass (`SpanningInstance`) still overrides them, and Python callers see the same values.

cimport cython

from wrpsim.pool.batching cimport BatchingMixin
from wrpsim.pool.kvcache cimport KVLedger
from wrpsim.pool.sequence cimport Seq


cdef class Instance(BatchingMixin):
    @cython.locals(now=cython.double)
    cpdef _count(self, long long delta)

    @cython.locals(seq=Seq, now=cython.double)
    cpdef admit(self, req)

    cpdef _wake(self)

    @cython.locals(k=cython.longlong, end=cython.double, delay=cython.double)
    cpdef _truncate(self, long long extra=*)

    @cython.locals(x=cython.double, a=cython.double, b=cython.double, h=cython.double,
                   r=cython.double, lo=cython.longlong, hi=cython.longlong, n=cython.longlong,
                   mid=cython.longlong, j=cython.longlong, k=cython.longlong)
    cpdef long long _done_steps(self, double now)

    cpdef double _end_at(self, long long k)

    @cython.locals(step=cython.longlong, n=cython.longlong, nd=cython.longlong,
                   ctx=cython.longlong, dur=cython.double, a=cython.double, b=cython.double,
                   first=cython.double)
    cpdef bint _start_decode_run(self, now, long long max_steps=*)

    @cython.locals(attn=cython.double, tokens=cython.longlong, alloc=cython.longlong,
                   c=cython.longlong, nb=cython.longlong, ctx=cython.longlong,
                   dur=cython.double)
    cpdef _start_mixed(self, now, chunks, long long n_dec, long long step1)

    cpdef _begin(self, now, double dur, long long n, cum, double power_w)

    @cython.locals(dur=cython.double, n=cython.longlong, step=cython.longlong,
                   k=cython.longlong, last=cython.double, tp=cython.longlong,
                   joules=cython.double, nd=cython.longlong, per=cython.double,
                   gpu_s=cython.double, c=cython.longlong, seq=Seq)
    cpdef _on_end(self, ev)

    @cython.locals(seq=Seq)
    cpdef _second_tokens(self, t, t2=*)

    @cython.locals(kv=KVLedger, preempted=bint, admit=bint, bs=Py_ssize_t,
                   step1=Py_ssize_t, lagged=bint)
    cpdef _plan(self, cutoff=*)
