# Compiled (`wrpsim._native`): C types for the locals of the packet engine's hop loop, `_run`
# (see its docstring). Times and queue lengths in picoseconds are `long long` (every value is
# an int below 2**63; Cython raises OverflowError otherwise); port indices and hops are
# Py_ssize_t; event kinds and flags are small ints. Values that only pass through stay objects.
cimport cython


@cython.locals(W=cython.longlong, bi=cython.longlong, bi2=cython.longlong, t=cython.longlong,
               b=cython.longlong, q=cython.longlong, tx=cython.longlong, arr=cython.longlong,
               last=cython.longlong, hop=cython.Py_ssize_t, p=cython.Py_ssize_t,
               kind=cython.int, fl=cython.int, kdata=cython.int, kctrl=cython.int,
               ktrim=cython.int, stop=cython.bint,
               buckets=dict, bheap=list, lst=list, e=tuple, path=tuple, done=list, cutb=dict,
               busy=list, txf=list, rate=list, prop=list, bufps=list, ecnps=list, pmaxq=list,
               pmarks=list, acktx=list)
cdef list _run(object eng, long long lim, bint stop_at_done)
