"""SLO targets of a plan (`plan.slo`) and how a run's summary is judged against them.

Targets are optional bounds on `summary.json` keys (see `wrpsim/metrics/summary.py`):

- upper bounds on latency statistics, named like the summary key: `ttft_p99_s`, `tpot_p99_s`,
  `e2e_p99_s`, their `_p50_s` / `_p90_s` / `_mean_s` siblings, and `queue_wait_mean_s`;
- `attainment_min`: a lower bound on `slo_attainment` (the share of requests with TTFT <=
  `slo.ttft_s` and TPOT <= `slo.tpot_s`, the run-wide thresholds);
- `unserved_max` (default 0): an upper bound on the share of requests dropped or unfinished —
  latency percentiles are over completed requests only, so a fleet that drops requests must not
  look fast.

Margins are signed, positive when met: relative headroom `(bound - value) / bound` for latency
bounds, absolute `value - bound` for `attainment_min`, `bound - value` for `unserved_max`.
A statistic that is undefined (no completed request) is a violation with margin None.

The *worst* target (`SLOTargets.worst`: candidates.parquet `worst_target` / `worst_margin`, the
"misses X" of messages) is the tightest one on a common scale, every target read as an upper
bound with relative headroom: `(bound - value) / bound` for latencies (their margin),
`(value - min) / (1 - min)` for `attainment_min` (headroom on the share allowed to miss), and
`(bound - value) / bound` for `unserved_max`. A bound of 0 (`unserved_max: 0`, or
`attainment_min: 1`) has no headroom to measure: met, it is never the tightest; missed, it is
the worst. An undefined statistic is worse than any miss. The margin reported with it is the
target's own (absolute for attainment and unserved).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wrpsim.errors import ConfigError, check_keys

_STATS = ("mean", "p50", "p90", "p99")
LATENCY_KEYS = (*(f"{m}_{s}_s" for m in ("ttft", "tpot", "e2e") for s in _STATS),
                "queue_wait_mean_s")
OTHER_KEYS = ("attainment_min", "unserved_max")


def unserved_frac(summary: dict) -> float:
    """Share of requests dropped or still in flight at the end of the run."""
    total = summary.get("requests_total") or 0
    if not total:
        return 0.0
    return (summary.get("requests_dropped", 0) + summary.get("requests_in_flight", 0)) / total


@dataclass(frozen=True)
class SLOTargets:
    """Bounds a fleet must meet (see module docstring); `upper` maps summary key -> bound."""

    upper: dict = field(default_factory=dict)
    attainment_min: float | None = None
    unserved_max: float = 0.0

    @classmethod
    def parse(cls, d) -> SLOTargets:
        """From the `plan.slo` mapping; `ConfigError` naming a bad key or value, or when no
        latency or attainment target is set."""
        if not isinstance(d, dict):
            raise ConfigError("plan.slo must be a mapping of target -> bound "
                              f"(keys: {', '.join(LATENCY_KEYS + OTHER_KEYS)})")
        check_keys(d, LATENCY_KEYS + OTHER_KEYS, "plan.slo")
        upper = {}
        for k in LATENCY_KEYS:
            v = d.get(k)
            if v is None:
                continue
            if (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0
                    or v == float("inf")):
                raise ConfigError(f"plan.slo.{k} must be null or a finite number > 0, got "
                                  f"{v!r}")
            upper[k] = float(v)
        att = d.get("attainment_min")
        if att is not None and (isinstance(att, bool) or not isinstance(att, (int, float))
                                or not 0 < att <= 1):
            raise ConfigError(f"plan.slo.attainment_min must be null or in (0, 1], got {att!r}")
        uns = d.get("unserved_max", 0.0)
        if isinstance(uns, bool) or not isinstance(uns, (int, float)) or not 0 <= uns < 1:
            raise ConfigError(f"plan.slo.unserved_max must be a number in [0, 1), got {uns!r}")
        if not upper and att is None:
            raise ConfigError("plan.slo sets no target: give at least one of ttft_p99_s, "
                              "tpot_p99_s, attainment_min (or another latency key)")
        return cls(upper, None if att is None else float(att), float(uns))

    def as_dict(self) -> dict:
        """The targets as a JSON-ready mapping (only the ones set, plus unserved_max)."""
        out = dict(self.upper)
        if self.attainment_min is not None:
            out["attainment_min"] = self.attainment_min
        out["unserved_max"] = self.unserved_max
        return out

    def margins(self, summary: dict) -> dict:
        """Signed margin per target (positive = met; None = undefined, a violation)."""
        out = {}
        for k, bound in self.upper.items():
            v = summary.get(k)
            out[k] = None if v is None else (bound - v) / bound
        if self.attainment_min is not None:
            v = summary.get("slo_attainment")
            out["attainment_min"] = None if v is None else v - self.attainment_min
        out["unserved_max"] = self.unserved_max - unserved_frac(summary)
        return out

    @staticmethod
    def met(margins: dict) -> bool:
        """True when every margin is defined and >= 0."""
        return all(m is not None and m >= 0 for m in margins.values())

    def headroom(self, key: str, margin: float | None) -> float:
        """`key`'s margin as relative headroom of an upper bound (module docstring): comparable
        across targets; -inf when undefined, +inf for a met bound of 0, -inf for a missed one."""
        if margin is None:
            return float("-inf")
        if key in self.upper:
            return margin
        room = (1.0 - self.attainment_min if key == "attainment_min" and
                self.attainment_min is not None else self.unserved_max
                if key == "unserved_max" else None)
        if room is None:
            return margin
        if room <= 0:
            return float("inf") if margin >= 0 else float("-inf")
        return margin / room

    def worst(self, margins: dict) -> tuple[str, float | None]:
        """The tightest target (most violated, or least headroom when all are met; module
        docstring) and its own margin."""
        key = min(sorted(margins), key=lambda k: self.headroom(k, margins[k]))
        return key, margins[key]
