"""Link rates, serialisation times and the unloaded round trip of a fabric configuration.

Pure integer arithmetic on the fields of a `NetConfig` (passed in, not imported, so that
`config.py` can validate with the same numbers the topology is built from):

- `link_rates_bps(cfg)`: (host, uplink) rates in whole bits per second — the uplink is
  `uplink_gbps`, else `hosts_per_leaf·host_gbps / (spines·oversubscription)`, else the host rate.
- `base_rtt_ps(cfg, host_bps, up_bps)`: an MTU packet's serialisation and propagation over the
  hops between two leaves (4; 2 on a one-leaf fabric) and its ACK's, in picoseconds.
- `bdp_bytes(rate_bps, rtt_ps)`: the bandwidth-delay product.

The validated bounds of `config.py` (rates in [MIN_GBPS, MAX_GBPS], finite delays) keep every
result a finite integer >= 1 where it is a rate or a time.
"""

from __future__ import annotations

PS_PER_S = 10**12
MIN_GBPS = 1e-6  # 1 kbit/s: the slowest link rate accepted (a whole number of bits per second)
MAX_GBPS = 1e6   # 1 Pbit/s: the fastest


def tx_ps(nbytes: int, rate_bps: int) -> int:
    """Serialization time of `nbytes` at `rate_bps`, in whole picoseconds (rounded up)."""
    return -(-nbytes * 8 * PS_PER_S // rate_bps)


def uplink_bps(cfg) -> float:
    """The leaf-spine rate in bit/s before rounding (module docstring)."""
    if cfg.uplink_gbps is not None:
        return cfg.uplink_gbps * 1e9
    if cfg.oversubscription is not None:
        return cfg.hosts_per_leaf * cfg.host_gbps * 1e9 / (cfg.spines * cfg.oversubscription)
    return cfg.host_gbps * 1e9


def link_rates_bps(cfg) -> tuple[int, int]:
    """(host rate, uplink rate) in whole bits per second."""
    return round(cfg.host_gbps * 1e9), round(uplink_bps(cfg))


def base_rtt_ps(cfg, host_bps: int, up_bps: int) -> int:
    """Unloaded round trip of a full packet (`mtu_bytes + header_bytes`) and its ACK between
    two leaves (within the leaf on a one-leaf fabric), in picoseconds."""
    prop = round(cfg.prop_delay_ns * 1000)
    mtu = cfg.mtu_bytes + cfg.header_bytes
    fwd = [host_bps, up_bps, up_bps, host_bps] if cfg.leaves > 1 else [host_bps] * 2
    return sum(tx_ps(mtu, r) + tx_ps(cfg.ack_bytes, r) + 2 * prop for r in fwd)


def bdp_bytes(rate_bps: int, rtt_ps: int) -> float:
    """Bandwidth-delay product at `rate_bps` over a round trip of `rtt_ps`."""
    return rate_bps * rtt_ps / (8 * PS_PER_S)
