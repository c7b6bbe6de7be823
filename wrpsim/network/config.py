"""The network configuration: one validated, frozen record shared by the CLI and the fabric.

`NetConfig.from_dict(d, where)` accepts the keys of `conf/network/{fluid,packet}.yaml` (missing
keys take the defaults below) and raises `ConfigError` with a one-line message naming the field,
the bad value and the valid choices or bound. `where` prefixes field names (`network.lb`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from wrpsim.errors import ConfigError, unknown_choice

KINDS = ("none", "fluid", "packet")
LB_MODES = ("ecmp", "ecmp_subflows", "spray", "split")
SPRAY_MODES = ("round_robin", "random")
PLACEMENTS = ("pack", "spread")
CC_MODES = ("fixed", "dctcp")
OVERFLOW_MODES = ("drop", "trim")


@dataclass(frozen=True, slots=True)
class NetConfig:
    """Every network parameter (units in the names; see docs/network.md for the meaning)."""

    kind: str = "fluid"
    leaves: int = 16
    hosts_per_leaf: int = 32
    spines: int = 16
    gpus_per_host: int = 1
    rail_optimized: bool = False
    host_gbps: float = 400.0
    uplink_gbps: float | None = None
    oversubscription: float | None = None
    prop_delay_ns: float = 1000.0
    nvlink_gbps: float | None = 3600.0
    placement: str = "pack"
    lb: str = "ecmp"
    subflows: int = 4
    spray: str = "round_robin"
    salted: bool = True
    mtu_bytes: int = 4096
    buffer_bytes: int | None = None
    buffer_bdp: float = 2.0
    window_packets: int | None = None
    window_bdp: float = 1.25
    cc: str = "fixed"
    ecn_bdp: float = 0.5
    dctcp_g: float = 0.0625
    overflow: str = "drop"
    rto_us: float = 50.0
    ack_bytes: int = 64

    @classmethod
    def from_dict(cls, d: dict | None, where: str = "network") -> NetConfig:
        """Validate a plain mapping (`None` means `kind: none`)."""
        if d is None:
            d = {"kind": "none"}
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: must be a mapping, got {type(d).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        bad = sorted(k for k in d if k not in names)
        if bad:
            raise ConfigError(f"{where}: unknown key(s) {bad}; valid keys: {', '.join(names)}")
        cfg = cls(**d)
        cfg.validate(where)
        return cfg

    def replace(self, **kw) -> NetConfig:
        """A validated copy with some fields changed."""
        cfg = dataclasses.replace(self, **kw)
        cfg.validate()
        return cfg

    def validate(self, where: str = "network") -> None:
        """Raise `ConfigError` on the first bad field."""
        for name, choices in (("kind", KINDS), ("lb", LB_MODES), ("spray", SPRAY_MODES),
                              ("placement", PLACEMENTS), ("cc", CC_MODES),
                              ("overflow", OVERFLOW_MODES)):
            if getattr(self, name) not in choices:
                raise unknown_choice(f"{where}.{name}", getattr(self, name), choices)
        for name in ("leaves", "hosts_per_leaf", "spines", "gpus_per_host", "subflows",
                     "mtu_bytes", "ack_bytes"):
            _check_int(where, name, getattr(self, name), 1)
        for name in ("buffer_bytes", "window_packets"):
            if getattr(self, name) is not None:
                _check_int(where, name, getattr(self, name), 1)
        for name in ("host_gbps", "buffer_bdp", "window_bdp", "ecn_bdp", "rto_us"):
            _check_num(where, name, getattr(self, name), positive=True)
        _check_num(where, "prop_delay_ns", self.prop_delay_ns, positive=False)
        for name in ("uplink_gbps", "oversubscription", "nvlink_gbps"):
            if getattr(self, name) is not None:
                _check_num(where, name, getattr(self, name), positive=True)
        if not 0 < self.dctcp_g <= 1:
            raise ConfigError(f"{where}.dctcp_g must be in (0, 1], got {self.dctcp_g!r}")
        for name in ("rail_optimized", "salted"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{where}.{name} must be true or false, "
                                  f"got {getattr(self, name)!r}")
        if self.uplink_gbps is not None and self.oversubscription is not None:
            raise ConfigError(f"{where}: give uplink_gbps or oversubscription, not both "
                              f"(got {self.uplink_gbps!r} and {self.oversubscription!r})")
        g = self.gpus_per_host
        if self.rail_optimized and self.leaves % g:
            raise ConfigError(f"{where}.leaves must be a multiple of gpus_per_host ({g}) when "
                              f"rail_optimized, got {self.leaves}")
        if not self.rail_optimized and self.hosts_per_leaf % g:
            raise ConfigError(f"{where}.hosts_per_leaf must be a multiple of gpus_per_host ({g}) "
                              f"unless rail_optimized, got {self.hosts_per_leaf}")


def _check_int(where: str, name: str, v, low: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ConfigError(f"{where}.{name} must be an integer >= {low}, got {v!r}")


def _check_num(where: str, name: str, v, positive: bool) -> None:
    ok = not isinstance(v, bool) and isinstance(v, (int, float)) and v == v
    if not ok or (v <= 0 if positive else v < 0):
        raise ConfigError(f"{where}.{name} must be a number {'>' if positive else '>='} 0, "
                          f"got {v!r}")
