"""How the console prints a number of a run's summary (`wrpsim.runview`, `wrpsim.verdict`):
`n/a` for a missing one."""

from __future__ import annotations


def fmt_s(v, unit: str = " s") -> str:
    return "n/a" if v is None else f"{v:.3g}{unit}"


def fmt_t(v) -> str:
    """A latency: milliseconds below one second, else seconds."""
    if v is None:
        return "n/a"
    return f"{1000 * v:.3g} ms" if v < 1 else f"{v:,.3g} s" if v < 1000 else f"{v:,.0f} s"


def fmt_pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"
