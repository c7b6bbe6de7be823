"""Packages whose public names are imported from their submodules on first use (PEP 562).

`lazy_names(package, where)` gives the `__getattr__` and `__dir__` of package `package` (its
`__name__`) whose names map to submodules in `where`: the first access of a name imports its
submodule and stores the value in the package, so later accesses are plain attribute reads and
importing one submodule does not import the others.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module


def lazy_names(package: str, where: Mapping[str, str]) -> tuple[Callable, Callable]:
    """(`__getattr__`, `__dir__`) for `package` (module docstring)."""
    module = sys.modules[package]

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{where[name]}"), name)
        setattr(module, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(module), *where})

    return __getattr__, __dir__
