"""What compiled modules use of Cython's pure-Python mode when Cython is not installed: the
flag `compiled` (False). Their `.py` imports this instead of `cython` then (`wrpsim._native`);
compiled, Cython reads `cython.compiled` as True at compile time and drops the pure-Python
branches (the definitions of the names a `.pxd` declares as C constants)."""

from __future__ import annotations

compiled = False
