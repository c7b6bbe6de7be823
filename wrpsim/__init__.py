"""wrpsim: a discrete-event simulator of LLM inference fleets (Workload, Router, Pool)."""

__version__ = "0.1.0"

# (before any module it may compile is imported: `wrpsim._native`)
from wrpsim import _native

_native.install()
