"""What compiled modules use of Cython's pure-Python mode (`cython.locals`, its type names),
as no-ops: their `.py` imports this when Cython is not installed (`wrpsim._native`)."""

from __future__ import annotations

Py_ssize_t = longlong = int


def locals(**_types):
    """`@cython.locals(name=type, ...)`: C types for a compiled function's locals; none here."""
    return lambda f: f
