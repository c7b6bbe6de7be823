# Cython declarations for `lifecycle.py` (pure-Python mode,
# `wrpsim._native`): `SequenceSetMixin` is an extension type of
# `Instance`'s chain; the attributes are declared on its root, `AccountingMixin`.
# The hot methods are `cpdef` with `seq` typed as `Seq` (its fields read as struct fields).

cimport cython

from wrpsim.pool.handoff cimport HandoffMixin
from wrpsim.pool.kvcache cimport KVLedger
from wrpsim.pool.sequence cimport Seq


cdef class SequenceSetMixin(HandoffMixin):
    cpdef _add_decoder(self, Seq seq)

    @cython.locals(kv=KVLedger)
    cpdef _remove_decoder(self, Seq seq)

    cpdef _finish(self, Seq seq, held, now)

    @cython.locals(heap=list, step=cython.longlong, seq=Seq)
    cpdef _pop_finished(self, now)
