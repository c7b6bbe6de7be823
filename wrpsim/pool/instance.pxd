# Cython declarations for `instance.py` (pure-Python mode,
# `wrpsim._native`): `Instance` is an extension type of
# `Instance`'s chain; the attributes are declared on its root, `AccountingMixin`.
# Attributes are Python objects (`object`): no C number types, so no value changes.

from wrpsim.pool.batching cimport BatchingMixin


cdef class Instance(BatchingMixin):
    pass
