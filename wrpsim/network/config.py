"""The network configuration: one validated, frozen record shared by the CLI and the fabric.

`NetConfig.from_dict(d, where)` accepts the keys of `conf/network/{fluid,packet}.yaml` (missing
keys take the defaults below) and raises `ConfigError` with a one-line message naming the field,
the bad value and the valid choices or bound. `where` prefixes field names (`network.lb`).

`failed_links` lists failed or degraded leaf-spine links (docs/network.md, "Link failures"): each
entry is a mapping `{leaf: 0, spine: 3}` (the leaf0<->spine3 link), `{spine: 3}` (every link of
spine 3), with optional `direction` (both | up: leaf -> spine | down: spine -> leaf; default
both) and `rate_factor` (0: down, the default; 0 < f < 1: the link stays up at f x its rate), or
a string `leaf0-spine3` / `spine3`. `link_faults()` turns it into per-port factors.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from wrpsim.errors import ConfigError, boolean, check_keys, finite_number, unknown_choice
from wrpsim.network import VALUE_KINDS
from wrpsim.network.rates import (
    MAX_GBPS,
    MIN_GBPS,
    base_rtt_ps,
    bdp_bytes,
    link_rates_bps,
    uplink_bps,
)

KINDS = ("none", "fluid", "packet")
LB_MODES = ("ecmp", "ecmp_subflows", "spray", "reps", "bitmap", "flowlet", "split")
SPRAYED = ("spray", "reps", "bitmap", "flowlet")  # per-packet choice among entropy values
SPRAY_MODES = ("round_robin", "random")
PLACEMENTS = ("pack", "spread")
TRANSPORTS = ("uec", "dctcp", "roce")
#: load-balancing keys and the `lb` modes that read them (every other mode ignores them)
LB_KEYS = {"subflows": ("ecmp_subflows",), "spray": ("spray",), "reps_buffer": ("reps",),
           "flowlet_gap_us": ("flowlet",)}
MAX_ENTROPIES = 65536
MAX_ENDPOINTS = 1 << 18  # leaves x hosts_per_leaf: 262,144 NIC ports (the largest AI fabrics)
MAX_LEAF_SPINE_LINKS = 1 << 20  # leaves x spines
INF_WORDS = (".inf", "inf", "+inf", "+.inf", "infinity")  # an open-ended window's t1, as text
ECMP_REMAPS = ("rehash", "resilient")
DIRECTIONS = ("both", "up", "down")
LINK_KEYS = ("leaf", "spine", "direction", "rate_factor")
# bounds of the real-valued keys: (low, high, low excluded, unit). They keep every rate a whole
# number of bits per second >= 1 and every time a finite number of picoseconds (docs/network.md)
NUM_BOUNDS = {
    "host_gbps": (MIN_GBPS, MAX_GBPS, False, "Gb/s"),
    "uplink_gbps": (MIN_GBPS, MAX_GBPS, False, "Gb/s"),
    "nvlink_gbps": (MIN_GBPS, MAX_GBPS, False, "Gb/s; null: instantaneous"),
    "oversubscription": (0.0, math.inf, True, "hosts_per_leaf x host rate / (spines x uplink)"),
    "prop_delay_ns": (0.0, 1e9, False, "ns per link"),
    "buffer_bdp": (0.0, 1e6, True, "bandwidth-delay products"),
    "window_bdp": (0.0, 1e6, True, "bandwidth-delay products"),
    "ecn_bdp": (0.0, 1e6, True, "bandwidth-delay products"),
    "rto_us": (0.0, 1e9, True, "microseconds"),
    "flowlet_gap_us": (0.0, 1e9, False, "microseconds"),
}
NULLABLE = ("uplink_gbps", "oversubscription", "nvlink_gbps")
#: the packet engine's limit on one run's data packets, all fabric flows together (a flow of b
#: bytes is ceil(b / mtu_bytes) of them). The engine simulates 1-3 million packets per wall-clock
#: second compiled, about 10^5 in the pure-Python fallback (every packet and its ACK are
#: events), so 2^25 (33.5 M packets, 128 GiB at the default 4 KiB MTU) keeps a run to under a
#: minute compiled and several pure, and UEC's per-packet record of a flow (8 bytes a packet)
#: under 256 MiB; past it a run could take hours or die of MemoryError. The fluid engine's
#: cost does not grow with the bytes but with the flows: `MAX_FLUID_FLOWS`.
MAX_PACKETS = 1 << 25
#: the fluid engine's limit on one run's fabric flows: its max-min rates are recomputed over the
#: flows sharing links at every start and finish, so its time grows faster than the flow count
#: (an all-to-all of 256 hosts, 65,280 flows, took about 2 minutes on 2 cores) and its memory
#: with it (~1.4 KiB a flow: the 16.7 M flows of an all-to-all of 4,096 hosts filled 24 GiB and
#: were killed). 2^18 is four times that all-to-all
MAX_FLUID_FLOWS = 1 << 18
_LINK_RE = re.compile(r"\s*(?:leaf\s*(\d+)\s*[-:<>=]+\s*)?spine\s*(\d+)\s*", re.IGNORECASE)


def check_packets(cfg, flow_bytes, what: str = "the flows") -> None:
    """`ConfigError` (one line naming flow_bytes and mtu_bytes) when the packet engine of `cfg`
    would send more than `MAX_PACKETS` data packets for fabric flows of `flow_bytes` (an
    iterable of byte counts); nothing for the fluid engine."""
    if cfg.kind != "packet":
        return
    mtu = cfg.mtu_bytes
    packets = sum(-(-b // mtu) for b in flow_bytes)
    if packets > MAX_PACKETS:
        raise ConfigError(f"flow_bytes / mtu_bytes: {what} are {packets:,} packets at "
                          f"mtu_bytes={mtu}; engine=packet takes at most {MAX_PACKETS:,} (2^25) "
                          f"per run (1-3 million a second compiled, 10^5 pure: up to minutes): "
                          f"use a smaller flow_bytes, a larger mtu_bytes, fewer flows, or "
                          f"engine=fluid")


def check_flows(cfg, flows: int, what: str = "the flows") -> None:
    """`ConfigError` (one line) when the fluid engine of `cfg` would rate more than
    `MAX_FLUID_FLOWS` fabric flows at once; nothing for the packet engine (`check_packets`)."""
    if cfg.kind == "fluid" and flows > MAX_FLUID_FLOWS:
        raise ConfigError(f"pattern: {what} are more than engine=fluid takes in one run "
                          f"({MAX_FLUID_FLOWS:,}, 2^18: its rates are recomputed over every "
                          f"flow sharing a link at each start and finish, hours and tens of GiB "
                          f"beyond it): use fewer hosts (leaves, hosts_per_leaf) or a pattern "
                          f"with fewer flows (permutation, ring_allreduce)")


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
    entropies: int = 256
    reps_buffer: int = 8
    flowlet_gap_us: float = 2.0
    salted: bool = True
    failed_links: Sequence = ()
    ecmp_remap: str = "rehash"
    transport: str = "uec"
    mtu_bytes: int = 4096
    header_bytes: int = 64
    buffer_bytes: int | None = None
    buffer_bdp: float = 2.0
    window_packets: int | None = None
    window_bdp: float = 1.25
    reorder_window: int = 256
    ecn_bdp: float = 0.5
    dctcp_g: float = 0.0625
    rto_us: float = 50.0
    ack_bytes: int = 64
    packet_window: Sequence | None = None

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
        w = d.get("packet_window")
        if isinstance(w, (list, tuple)) and len(w) == 2 and isinstance(w[1], str) \
                and w[1].strip().lower() in INF_WORDS:  # `.inf` on a command line is text
            d = {**d, "packet_window": [w[0], math.inf]}
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
                              ("placement", PLACEMENTS), ("transport", TRANSPORTS),
                              ("ecmp_remap", ECMP_REMAPS)):
            if getattr(self, name) not in choices:
                raise unknown_choice(f"{where}.{name}", getattr(self, name), choices)
        for name in ("leaves", "hosts_per_leaf", "spines", "gpus_per_host", "subflows",
                     "mtu_bytes", "ack_bytes", "reps_buffer", "reorder_window"):
            _check_int(where, name, getattr(self, name), 1)
        _check_int(where, "header_bytes", self.header_bytes, 0)
        _check_int(where, "entropies", self.entropies, 1)
        if self.entropies > MAX_ENTROPIES:
            raise ConfigError(f"{where}.entropies must be an integer in 1..{MAX_ENTROPIES} "
                              f"(a 16-bit entropy field), got {self.entropies!r}")
        for name in ("buffer_bytes", "window_packets"):
            if getattr(self, name) is not None:
                _check_int(where, name, getattr(self, name), 1)
        packet = self.mtu_bytes + self.header_bytes
        if self.buffer_bytes is not None and self.buffer_bytes < packet:
            raise ConfigError(f"{where}.buffer_bytes must hold at least one packet (mtu_bytes + "
                              f"header_bytes = {packet}), got {self.buffer_bytes}")
        n, links = self.leaves * self.hosts_per_leaf, self.leaves * self.spines
        if n > MAX_ENDPOINTS:
            raise ConfigError(f"{where}: leaves x hosts_per_leaf = {n:,} endpoints; at most "
                              f"{MAX_ENDPOINTS:,}")
        if links > MAX_LEAF_SPINE_LINKS:
            raise ConfigError(f"{where}: leaves x spines = {links:,} leaf-spine links; at most "
                              f"{MAX_LEAF_SPINE_LINKS:,}")
        for name, (lo, hi, strict, unit) in NUM_BOUNDS.items():
            v = getattr(self, name)
            if v is not None or name not in NULLABLE:
                _check_num(where, name, v, lo, hi, strict, unit)
        if not finite_number(self.dctcp_g) or not 0 < self.dctcp_g <= 1:
            raise ConfigError(f"{where}.dctcp_g must be a number in (0, 1], got {self.dctcp_g!r}")
        for name in ("rail_optimized", "salted"):
            boolean(f"{where}.{name}", getattr(self, name))
        if self.uplink_gbps is not None and self.oversubscription is not None:
            raise ConfigError(f"{where}: give uplink_gbps or oversubscription, not both "
                              f"(got {self.uplink_gbps!r} and {self.oversubscription!r})")
        _check_rates(where, self)
        _check_window(where, self.packet_window, self.kind)
        g = self.gpus_per_host
        if self.rail_optimized and self.leaves % g:
            raise ConfigError(f"{where}.leaves must be a multiple of gpus_per_host ({g}) when "
                              f"rail_optimized (one leaf per rail), got {self.leaves}; or "
                              f"{where}.rail_optimized=false")
        if not self.rail_optimized and self.hosts_per_leaf % g:
            raise ConfigError(f"{where}.hosts_per_leaf must be a multiple of gpus_per_host ({g}) "
                              f"unless rail_optimized (whole servers under a leaf), got "
                              f"{self.hosts_per_leaf}; or {where}.gpus_per_host=1")
        self.link_faults(where)

    def link_faults(self, where: str = "network") -> dict[tuple[int, int, str], float]:
        """`failed_links` as {(leaf, spine, "up" | "down"): rate factor} ("up": the port
        leaf -> spine, "down": spine -> leaf; factor 0: down). A port named twice takes the
        smallest factor. `ConfigError` naming the entry for a malformed one, and when a leaf
        would lose every uplink or downlink, or a pair of leaves every common spine."""
        field = f"{where}.failed_links"
        links = self.failed_links
        if links is None:
            return {}
        if isinstance(links, (str, Mapping)) or not isinstance(links, Sequence):
            raise ConfigError(f"{field} must be a list of links like [{{leaf: 0, spine: 3}}], "
                              f"got {links!r}")
        L, S = self.leaves, self.spines
        out: dict[tuple[int, int, str], float] = {}
        for i, entry in enumerate(links):
            leaf, spine, direction, factor = _parse_link(f"{field}[{i}]", entry, L, S)
            leaves = range(L) if leaf is None else (leaf,)
            dirs = ("up", "down") if direction == "both" else (direction,)
            for a in leaves:
                for d in dirs:
                    out[(a, spine, d)] = min(factor, out.get((a, spine, d), 1.0))
        if L > 1 and any(f == 0 for f in out.values()):
            up = [(1 << S) - 1] * L
            down = [(1 << S) - 1] * L
            for (a, s, d), f in out.items():
                if f == 0:
                    mask = up if d == "up" else down
                    mask[a] &= ~(1 << s)
            for a in range(L):
                for name, mask, way in (("uplink (leaf -> spine)", up, "from"),
                                        ("downlink (spine -> leaf)", down, "to")):
                    if not mask[a]:
                        raise ConfigError(f"{field}: leaf {a} has no working {name} left (all "
                                          f"{S} failed); inter-leaf flows {way} it would have "
                                          f"no path")
            for a in range(L):
                for b in range(L):
                    if a != b and not up[a] & down[b]:
                        raise ConfigError(f"{field}: no path from leaf {a} to leaf {b} (no "
                                          f"spine has both its link from leaf {a} and its link "
                                          f"to leaf {b} up)")
        return out


def _parse_link(field: str, entry, L: int, S: int) -> tuple[int | None, int, str, float]:
    """(leaf or None for every leaf, spine, direction, rate factor) of one `failed_links`
    entry."""
    if isinstance(entry, str):
        m = _LINK_RE.fullmatch(entry)
        if m is None:
            raise ConfigError(f"{field} must be a link like leaf0-spine3 or spine3 (or a "
                              f"mapping {{leaf: 0, spine: 3}}), got {entry!r}")
        entry = {"spine": int(m.group(2)), **({} if m.group(1) is None else
                                                 {"leaf": int(m.group(1))})}
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{field} must be a mapping like {{leaf: 0, spine: 3}} or a string "
                          f"like leaf0-spine3, got {entry!r}")
    check_keys(entry, LINK_KEYS, field)
    if "spine" not in entry:
        raise ConfigError(f"{field}: missing key 'spine' (an integer in 0..{S - 1}); "
                          f"e.g. {{leaf: 0, spine: 3}}")
    for key, n, plural in (("leaf", L, "leaves"), ("spine", S, "spines")):
        v = entry.get(key)
        if v is None and key == "leaf":
            continue
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < n:
            raise ConfigError(f"{field}.{key} must be an integer in 0..{n - 1} ({n} {plural}), "
                              f"got {v!r}")
    direction = entry.get("direction", "both")
    if direction not in DIRECTIONS:
        raise unknown_choice(f"{field}.direction", direction, DIRECTIONS)
    f = entry.get("rate_factor", 0.0)
    if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 <= f <= 1:
        raise ConfigError(f"{field}.rate_factor must be a number in [0, 1] (0: down), "
                          f"got {f!r}")
    return entry.get("leaf"), entry["spine"], direction, float(f)


def _check_window(where: str, w, kind: str) -> None:
    """`packet_window`: null, or [t0, t1] in simulated seconds with 0 <= t0 < t1 (t1 may be
    inf: `.inf` in YAML, `inf` or `.inf` on a command line), only on a fluid fabric (the fluid
    engine carries the transfers outside it)."""
    if w is None:
        return
    nums = isinstance(w, (list, tuple)) and len(w) == 2 and all(
        not isinstance(x, bool) and isinstance(x, (int, float)) and x == x for x in w)
    if not nums or not 0 <= w[0] < w[1] or w[0] == float("inf"):
        raise ConfigError(f"{where}.packet_window must be null or [t0, t1], simulated seconds "
                          f"with 0 <= t0 < t1 (t1 may be inf), got {w!r}")
    if kind not in VALUE_KINDS["packet_window"]:
        raise ConfigError(f"{where}.packet_window needs kind fluid (network=fluid: the fluid "
                          f"engine carries the transfers outside the window), got kind {kind}")


def _check_int(where: str, name: str, v, low: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ConfigError(f"{where}.{name} must be an integer >= {low}, got {v!r}")


def _check_num(where: str, name: str, v, lo: float, hi: float, strict_lo: bool,
               unit: str) -> None:
    """`v` a finite number in [lo, hi] ((lo, hi] when `strict_lo`): one line naming the key,
    the range and its unit otherwise."""
    ok = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and \
        (v > lo if strict_lo else v >= lo) and v <= hi
    if not ok:
        rule = f"{'>' if strict_lo else '>='} {lo:g}" if hi == math.inf else \
            f"in {'(' if strict_lo else '['}{lo:g}, {hi:g}]"
        raise ConfigError(f"{where}.{name} must be a finite number {rule} ({unit}), got {v!r}")


def _check_rates(where: str, cfg: NetConfig) -> None:
    """The uplink rate an `oversubscription` implies lies in [MIN_GBPS, MAX_GBPS], and a buffer
    of `buffer_bdp` × a port's BDP holds at least one packet (`buffer_bytes` is checked on its
    own). Needs the fields' own bounds checked first."""
    if cfg.oversubscription is not None:
        top = cfg.hosts_per_leaf * cfg.host_gbps / cfg.spines  # uplink Gb/s at sigma = 1
        lo, hi = top / MAX_GBPS, top / MIN_GBPS
        if not MIN_GBPS <= uplink_bps(cfg) / 1e9 <= MAX_GBPS:
            raise ConfigError(f"{where}.oversubscription must be in [{lo:g}, {hi:g}] here (an "
                              f"uplink rate hosts_per_leaf x host rate / (spines x "
                              f"oversubscription) in [{MIN_GBPS:g}, {MAX_GBPS:g}] Gb/s), got "
                              f"{cfg.oversubscription!r}")
    if cfg.buffer_bytes is not None:
        return
    host, up = link_rates_bps(cfg)
    rate = min(host, up)
    bdp = bdp_bytes(rate, base_rtt_ps(cfg, host, up))
    packet = cfg.mtu_bytes + cfg.header_bytes
    if math.ceil(cfg.buffer_bdp * bdp) < packet:
        raise ConfigError(f"{where}.buffer_bdp must give every switch port a buffer of at least "
                          f"one packet (mtu_bytes + header_bytes = {packet} bytes): >= "
                          f"{packet / bdp:.3g} here (BDP {bdp:.0f} bytes at {rate / 1e9:g} Gb/s), "
                          f"got {cfg.buffer_bdp!r}")


def unread_lb_key(cfg: NetConfig, where: str = "network") -> str | None:
    """A message for the first load-balancing key (`LB_KEYS`) set away from its default under
    an `lb` that does not read it (`subflows=8` with lb=ecmp runs ECMP as if it were 4), else
    None."""
    pre = f"{where}." if where else ""
    for key, modes in LB_KEYS.items():
        if getattr(cfg, key) != NetConfig.__dataclass_fields__[key].default and \
                cfg.lb not in modes:
            return (f"{pre}{key} applies only to lb={modes[0]}; with lb={cfg.lb} it changes "
                    f"nothing (set {pre}lb={modes[0]} too, or leave {key} out)")
    return None
