# Compiled (`wrpsim._native`): `PacketEngine` is the last extension type of its chain (the
# attributes are declared on its root, `TransportBase`, in `transport.pxd`), and the hop loop
# `_run` (see its docstring) takes it typed, so it reads the engine's fields as struct fields
# and calls the transport handlers as C methods; its locals have C types. Times and queue
# lengths in picoseconds are `long long` (every value is an int below 2**63; Cython raises
# OverflowError otherwise); port indices and hops are Py_ssize_t; event kinds, flags and the
# transport number are small ints. Values that only pass through stay objects.
cimport cython

from wrpsim.network.uec cimport UecMixin


cdef class PacketEngine(UecMixin):
    pass


@cython.locals(W=cython.longlong, bi=cython.longlong, bi2=cython.longlong, t=cython.longlong,
               b=cython.longlong, q=cython.longlong, tx=cython.longlong, arr=cython.longlong,
               last=cython.longlong, hop=cython.Py_ssize_t, p=cython.Py_ssize_t,
               kind=cython.int, fl=cython.int, kdata=cython.int, kctrl=cython.int,
               ktrim=cython.int, kuec=cython.Py_ssize_t, kdctcp=cython.Py_ssize_t,
               tk=cython.Py_ssize_t, sack=cython.bint, stop=cython.bint,
               buckets=dict, bheap=list, lst=list, e=tuple, path=tuple, done=list, cutb=dict,
               busy=list, txf=list, rate=list, prop=list, bufps=list, ecnps=list, pmaxq=list,
               pmarks=list, acktx=list)
cdef list _run(PacketEngine eng, long long lim, bint stop_at_done)
