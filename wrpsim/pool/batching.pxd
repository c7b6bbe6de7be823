# Cython declarations for `batching.py` (pure-Python mode,
# `wrpsim._native`): `BatchingMixin` is an extension type of
# `Instance`'s chain; the attributes are declared on its root, `AccountingMixin`.
# Attributes are Python objects (`object`): no C number types, so no value changes.

from wrpsim.pool.lifecycle cimport SequenceSetMixin


cdef class BatchingMixin(SequenceSetMixin):
    pass
