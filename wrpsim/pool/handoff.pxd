# Cython declarations for `handoff.py` (pure-Python mode,
# `wrpsim._native`): `HandoffMixin` is an extension type of
# `Instance`'s chain; the attributes are declared on its root, `AccountingMixin`.
# Attributes are Python objects (`object`): no C number types, so no value changes.

from wrpsim.pool.failure cimport FailureMixin


cdef class HandoffMixin(FailureMixin):
    pass
