# Cython declarations for `failure.py` (pure-Python mode,
# `wrpsim._native`): `FailureMixin` is an extension type of
# `Instance`'s chain; the attributes are declared on its root, `AccountingMixin`.
# Attributes are Python objects (`object`): no C number types, so no value changes.

from wrpsim.pool.accounting cimport AccountingMixin


cdef class FailureMixin(AccountingMixin):
    pass
