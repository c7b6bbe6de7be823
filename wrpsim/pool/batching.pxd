# Cython declarations for `batching.py` (pure-Python mode,
# `wrpsim._native`): `BatchingMixin` is an extension type of
# `Instance`'s chain; the attributes are declared on its root, `AccountingMixin`.
# The hot methods are `cpdef` with `seq` typed as `Seq` (its fields read as struct fields).

cimport cython

from wrpsim.pool.lifecycle cimport SequenceSetMixin
from wrpsim.pool.kvcache cimport KVLedger
from wrpsim.pool.sequence cimport Seq


cdef class BatchingMixin(SequenceSetMixin):
    @cython.locals(kv=KVLedger, seq=Seq)
    cpdef _admit_chunks(self, now, admit, step1)

    cpdef _take(self, Seq seq, now)

    cpdef _start_seq(self, Seq seq, now)
