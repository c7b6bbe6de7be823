"""The event loop's optional compiled modules, and the rule that says when they are used.

`MODULES` are compiled by Cython in pure-Python mode when the package is built (`setup.py`;
`pip install -e .` builds them next to their sources): each `.py` stays the source of truth,
and its `.pxd` makes its classes extension types (`Instance` and its mixin chain, `KVLedger`,
`Seq`, `Wakeup`, `Arrivals`, the `Dispatcher`, the `RequestLog`, the `QoEMeter` and the kernel
latency model `KernelLatency`; the packet engine's `PacketEngine` and its transport chain, and
its path choosers, its event queue `EventQueue` and connection state `ConnState`,
`wrpsim.network.*`) whose attributes are struct fields: Python objects
(typed `list` / `dict` where that is what they hold), but C numbers (`double`, `long long`,
`Py_ssize_t`) for the hot attributes that only ever hold a float, or only an int, and for the
typed arguments and locals of the hot `cpdef` methods and of the packet engine's hop loop
(`network/packet.pxd`: picosecond times as `long long`, ports and hops as `Py_ssize_t`) — so
every value keeps its Python type and every float operation rounds as Python's does (no
`cdivision`, compiled with `-ffp-contract=off`; results are byte-identical,
`tests/test_native.py`).
The router's view and shipped policies (`wrpsim.router.base`, `view`, `feed`, `requestview`,
`policies`) are compiled as they are, without a `.pxd`: their classes stay Python classes (a
user's router derives from `Router`), only their code runs compiled.

A compiled module is used only when all of them are built and, in a source tree, each is newer
than its `.py` and `.pxd` (a source edited or checked out after the build must not be shadowed
by its old extension; an installed wheel's extensions are taken as built: `built`), and
`WRPSIM_PURE` is unset or "0"; otherwise every one of them is imported from its `.py` — all or
none, since a pure-Python class deriving from a compiled one of the chain would lay out its
attributes twice. `COMPILED` says which way this process went.
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from importlib.util import spec_from_file_location

MODULES = (
    "wrpsim.pool.accounting",
    "wrpsim.pool.failure",
    "wrpsim.pool.handoff",
    "wrpsim.pool.lifecycle",
    "wrpsim.pool.batching",
    "wrpsim.pool.instance",
    "wrpsim.pool.kvcache",
    "wrpsim.pool.sequence",
    "wrpsim.pool.wakeup",
    "wrpsim.eventloop",
    "wrpsim.pool.frontend",
    "wrpsim.pool.kernels.model",
    "wrpsim.dispatcher",
    "wrpsim.metrics.records",
    "wrpsim.metrics.qoe",
    "wrpsim.router.base",
    "wrpsim.router.view",
    "wrpsim.router.feed",
    "wrpsim.router.requestview",
    "wrpsim.router.policies",
    "wrpsim.network.entropy",
    "wrpsim.network.calendar",
    "wrpsim.network.connection",
    "wrpsim.network.transport",
    "wrpsim.network.uec",
    "wrpsim.network.dctcp",
    "wrpsim.network.roce",
    "wrpsim.network.packet",
)

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: True when this process imports the compiled modules (decided once, at `wrpsim`'s import)
COMPILED = False


def _extension(base: str) -> str | None:
    for suffix in EXTENSION_SUFFIXES:
        if os.path.exists(base + suffix):
            return base + suffix
    return None


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


class _PureFinder:
    """Imports `MODULES` from their `.py` files although extensions sit beside them."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name not in MODULES:
            return None
        return spec_from_file_location(name, os.path.join(_ROOT, *name.split(".")) + ".py")


def built(root: str = _ROOT, modules: tuple = MODULES) -> tuple[int, int]:
    """(modules with an extension beside their `.py`, those whose extension is fresh) under
    `root`. In a source tree (`root` holds `setup.py`: a checkout, an editable install) an
    extension is fresh when it is newer than its `.py` and `.pxd`, which may have been edited or
    checked out since the build. In an installed package (a wheel: no `setup.py` beside it)
    every extension is fresh: the build made it from the very files installed with it, and the
    installer writes the files in its own order, so their times say nothing."""
    source_tree = os.path.exists(os.path.join(root, "setup.py"))
    n = fresh = 0
    for name in modules:
        base = os.path.join(root, *name.split("."))
        ext = _extension(base)
        if ext is not None:
            n += 1
            if not source_tree or _mtime(ext) >= max(_mtime(base + ".py"),
                                                     _mtime(base + ".pxd")):
                fresh += 1
    return n, fresh


def install() -> bool:
    """Decide (module docstring) and, for pure Python, put the finder first. Returns
    `COMPILED`."""
    global COMPILED
    n, fresh = built()
    pure = os.environ.get("WRPSIM_PURE", "0") not in ("", "0")
    COMPILED = fresh == len(MODULES) and not pure
    if n and not COMPILED and _PureFinder not in sys.meta_path:
        sys.meta_path.insert(0, _PureFinder)
    return COMPILED
