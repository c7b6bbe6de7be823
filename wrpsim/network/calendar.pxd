# Cython declarations for `calendar.py` (pure-Python mode, `wrpsim._native`): `EventQueue` is
# an extension type whose rows, ring and scratch arrays are typed memoryviews of `long long`
# over the `array('q')` objects it allocates, so the hop loop (`packet._run`), which cimports
# it, reads and links event rows as C arrays. The field offsets are the enum below (the module
# defines the same names for pure Python). Everything is an int below 2**63.

cimport cython

cdef enum:
    STRIDE = 8
    F_T = 0
    F_NEXT = 1
    F_CONN = 2
    F_SEQ = 3
    F_EV = 4
    F_SIZE = 5
    F_PATH = 6
    F_META = 7
    SMALL = 48
    BLK = 32


@cython.final
cdef class EventQueue:
    cdef long long[::1] ev
    cdef public Py_ssize_t cap
    cdef public Py_ssize_t free
    cdef readonly long long width
    cdef public long long cur
    cdef public long long nb
    cdef public long long mask
    cdef long long[::1] head
    cdef long long[::1] tail
    cdef long long[::1] nin
    cdef long long[::1] bkey
    cdef long long[::1] bslot
    cdef long long[::1] bnext
    cdef public Py_ssize_t nblk
    cdef public Py_ssize_t bfree
    cdef public Py_ssize_t count
    cdef public list ovf
    cdef public long long seq
    cdef long long[::1] order
    cdef long long[::1] tmp
    cdef long long[::1] keys
    cdef long long[::1] kbuf
    cdef long long[::1] cnt
    cdef readonly Py_ssize_t passes

    @cython.locals(s=Py_ssize_t, i=Py_ssize_t, old=Py_ssize_t, ev="long long[::1]",
                   order="long long[::1]")
    cpdef _grow(self, Py_ssize_t cap)

    @cython.locals(s=Py_ssize_t)
    cpdef Py_ssize_t alloc(self)

    @cython.locals(s=Py_ssize_t, row=Py_ssize_t, ev_="long long[::1]")
    cpdef Py_ssize_t add(self, long long t, long long conn, long long seq, long long ev,
                         long long size, long long path, long long meta) except -1

    cpdef release(self, Py_ssize_t s)

    @cython.locals(b=cython.longlong, r=Py_ssize_t, t=cython.longlong, k=cython.longlong,
                   blk=Py_ssize_t, pos=Py_ssize_t)
    cpdef push(self, Py_ssize_t s)

    @cython.locals(i=Py_ssize_t, k=Py_ssize_t, old=Py_ssize_t, bkey="long long[::1]",
                   bslot="long long[::1]", bnext="long long[::1]")
    cpdef _grow_blocks(self, Py_ssize_t nblk)

    @cython.locals(n=Py_ssize_t, i=Py_ssize_t, j=Py_ssize_t, m=Py_ssize_t, blk=Py_ssize_t,
                   nxt=Py_ssize_t, pos=Py_ssize_t, keys="long long[::1]",
                   slots="long long[::1]", bkey="long long[::1]", bslot="long long[::1]")
    cpdef Py_ssize_t _gather(self, Py_ssize_t r)

    @cython.locals(b=cython.longlong, head="long long[::1]", mask=cython.longlong)
    cpdef long long _next_bucket(self)

    @cython.locals(ev="long long[::1]", t=cython.longlong, s=Py_ssize_t, entry=tuple)
    cpdef long long _earliest(self, long long b)

    @cython.locals(out=list, blk=Py_ssize_t, n=Py_ssize_t, i=Py_ssize_t, j=Py_ssize_t)
    cpdef list _bucket_slots(self, Py_ssize_t r)

    @cython.locals(b=cython.longlong, ovf=list, s=Py_ssize_t, n=Py_ssize_t, i=Py_ssize_t,
                   low=cython.longlong, order="long long[::1]", slots="long long[::1]",
                   keys="long long[::1]")
    cpdef Py_ssize_t take(self, long long lim)

    @cython.locals(i=Py_ssize_t, j=Py_ssize_t, o=Py_ssize_t, c=Py_ssize_t, d=Py_ssize_t,
                   k=cython.longlong, shift=cython.int, src="long long[::1]",
                   dst="long long[::1]", keys="long long[::1]", cnt="long long[::1]")
    cpdef _sort(self, Py_ssize_t n)

    @cython.locals(r=Py_ssize_t, m=Py_ssize_t, j=Py_ssize_t, later=list,
                   order="long long[::1]")
    cpdef putback(self, Py_ssize_t i, Py_ssize_t n)
