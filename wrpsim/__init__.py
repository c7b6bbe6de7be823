"""wrpsim: a discrete-event simulator of LLM inference fleets (Workload, Router, Pool)."""

__version__ = "0.1.0"
