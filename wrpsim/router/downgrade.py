"""Load-adaptive downgrade (best-effort serving): the preferred model unless its pool is loaded.

`DowngradeRouter` sends each request to `primary` (default: the dearest served model) on its
least outstanding instance — unless that instance is *loaded*: it already holds
`max_outstanding` or more requests (waiting + running), or `max_kv` or more of its KV cache is
in use. Then the request is downgraded to `fallback` (default: the cheapest served model),
trading answer quality for availability and latency. With hysteresis, once downgrading the
router keeps doing so until the primary's least outstanding instance is below
`resume_outstanding` requests *and* below `resume_kv` KV use (defaults: the entry thresholds,
i.e. no hysteresis). The load is read from the fleet view at each arrival; nothing is
predicted. While every primary instance is down (instance failures) the fallback serves.

`downgraded` counts the downgraded requests, `routed` both outcomes; the side table labels each
decision `primary` or `downgrade` with score = the primary's least outstanding count.
"""

from __future__ import annotations

import math

from wrpsim.errors import ConfigError
from wrpsim.router.config import number, served
from wrpsim.router.selection import ModelRouter, least_outstanding

NAN = math.nan


class DowngradeRouter(ModelRouter):
    """Primary model, fallback while the primary's pool is loaded (see the module docstring)."""

    chooses_models = True

    name = "downgrade"

    def __init__(self, primary: str | None = None, fallback: str | None = None,
                 max_outstanding: float = 16, max_kv: float = 0.9,
                 resume_outstanding: float | None = None, resume_kv: float | None = None,
                 **common):
        super().__init__(**common)
        self.primary, self.fallback = primary, fallback
        self.max_out = number("max_outstanding", max_outstanding, 1.0)
        self.max_kv = number("max_kv", max_kv, 0.0, 1.0)
        self.resume_out = (self.max_out if resume_outstanding is None else
                           number("resume_outstanding", resume_outstanding, 0.0, self.max_out))
        self.resume_kv = (self.max_kv if resume_kv is None else
                          number("resume_kv", resume_kv, 0.0, self.max_kv))

    def bind(self, fleet, rng):
        """Resolve primary and fallback (dearest and cheapest by default)."""
        super().bind(fleet, rng)
        for field, m in (("primary", self.primary), ("fallback", self.fallback)):
            if m is not None:
                served(field, [m], fleet)
        order = self.book.by_cost(fleet.models)
        self._primary = self.primary or order[-1]
        self._fallback = self.fallback or order[0]
        if self._primary == self._fallback:
            raise ConfigError(f"router: primary and fallback are the same model "
                              f"({self._primary}); the fleet serves: {', '.join(fleet.models)}")
        self._down = False
        self.downgraded = 0
        self.routed = {"primary": 0, "downgrade": 0}

    def select(self, request, view, category, complexity):
        """Primary unless its least outstanding instance is loaded."""
        request.model = self._primary
        cands = view.candidates(request)
        if not cands:  # every primary instance is down (failures): the fallback serves
            self.routed["downgrade"] += 1
            self.downgraded += 1
            return self._fallback, None, "downgrade", NAN
        inst = least_outstanding(cands)
        out, kv = inst.outstanding, inst.kv_used_frac
        if self._down:
            self._down = out >= self.resume_out or kv >= self.resume_kv
        else:
            self._down = out >= self.max_out or kv >= self.max_kv
        label = "downgrade" if self._down else "primary"
        self.routed[label] += 1
        if self._down:
            self.downgraded += 1
            return self._fallback, None, label, float(out)
        return self._primary, None, label, float(out)
