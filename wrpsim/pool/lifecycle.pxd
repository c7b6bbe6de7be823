# Cython declarations for `lifecycle.py` (pure-Python mode,
# `wrpsim._native`): `SequenceSetMixin` is an extension type of
# `Instance`'s chain; the attributes are declared on its root, `AccountingMixin`.
# Attributes are Python objects (`object`): no C number types, so no value changes.

from wrpsim.pool.handoff cimport HandoffMixin


cdef class SequenceSetMixin(HandoffMixin):
    pass
