"""Standalone network scenarios: one JSON summary line on stdout, tables in an output directory.

    python -m wrpsim.net pattern=permutation leaves=16 hosts_per_leaf=16 spines=16 \\
        link_gbps=400 flow_bytes=4MiB lb=ecmp engine=fluid seed=0

Arguments are Hydra overrides (`key=value`) of conf/net.yaml: the traffic `pattern`, the
`engine` (fluid | packet), `flow_bytes` (an integer or a size such as 4MiB or 1TiB, at most
1 PiB; with the packet engine at most `MAX_PACKETS` packets per run, with the fluid engine at most
`MAX_FLUID_FLOWS` fabric flows, `wrpsim.network.config`),
`seed`, `out_dir`,
the collective keys (`group`, `ranks`, `alpha_us`, `chunks`: patterns allreduce_ring,
allreduce_tree, allgather, reducescatter, alltoall, where `flow_bytes` is the buffer S per rank;
see `wrpsim.network.collective_scenario`; set where the pattern does not read them they are
an error, `check_pattern_keys`) and every fabric key of the network config group
(`link_gbps` is the host link rate, and the uplink rate unless `uplink_gbps` or
`oversubscription` is given). Writes `flows.parquet`,
`links.parquet` and `summary.json` into `out_dir` (default `results/net/<date>/<time>` under the
current directory, `<time>-1`, `<time>-2`, … when that is taken: `wrpsim.io.fresh_dir`) and
prints the summary (see `wrpsim.network.scenario`) as the last line.
Bad input prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import math
import re
from typing import Any

from wrpsim.cli import apply_flat, load_defaults, verb_main
from wrpsim.errors import ConfigError

CLI_KEYS = ("pattern", "engine", "flow_bytes", "seed", "out_dir", "link_gbps", "group", "ranks",
            "alpha_us", "chunks")
MAX_BYTES = 2**50  # 1 PiB: byte counts stay exact in floats and fit the int64 columns
UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "pb": 10**15,
         "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "pib": 2**50}


def _defaults() -> dict[str, Any]:
    """The defaults of conf/net.yaml."""
    return load_defaults("net")


def parse_bytes(v, field: str = "flow_bytes") -> int:
    """An integer number of bytes in [1, MAX_BYTES] from an int or a string like `4MiB`,
    `512KiB`, `1.5GB`, `1PiB` (`UNITS`: decimal B … PB, binary KiB … PiB)."""
    if isinstance(v, bool):
        raise ConfigError(f"{field} must be a byte count like 4194304 or 4MiB, got {v!r}")
    if isinstance(v, int):
        n = v
    else:
        if isinstance(v, float):
            x = v
        else:
            m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([A-Za-z]*)\s*", str(v))
            unit = m.group(2).lower() if m else None
            if m is None or unit not in UNITS:
                raise ConfigError(f"{field} must be a byte count like 4194304 or 4MiB (units: "
                                  f"{', '.join(u for u in UNITS if u)}), got {v!r}")
            x = float(m.group(1)) * UNITS[unit]
        if not math.isfinite(x) or x != int(x):  # (1.5 bytes is not a size; 1.5MiB is)
            raise ConfigError(f"{field} must be a whole number of bytes like 4194304 or a size "
                              f"like 4MiB, got {v!r}")
        n = int(x)
    if not 1 <= n <= MAX_BYTES:
        raise ConfigError(f"{field} must be between 1 byte and 1 PiB ({MAX_BYTES:,}), got {v!r}")
    return n


#: keys only the packet engine reads (docs/network.md "Transports"; `entropies`: the values a
#: sprayed packet connection chooses among, `spray` / `reps_buffer` / `flowlet_gap_us` how it
#: chooses: the fluid engine splits a sprayed flow evenly over the spines)
PACKET_ONLY = ("transport", "mtu_bytes", "header_bytes", "buffer_bytes", "buffer_bdp",
               "window_packets", "window_bdp", "reorder_window", "ecn_bdp", "dctcp_g", "rto_us",
               "ack_bytes", "entropies", "spray", "reps_buffer", "flowlet_gap_us")


def parse_args(argv: list[str]) -> dict[str, Any]:
    """conf/net.yaml with the `key=value` overrides of `argv` applied (Hydra's grammar)."""
    return apply_flat(_defaults(), argv, "net")


def net_config(cfg: dict[str, Any]):
    """The `NetConfig` of a parsed CLI config (engine -> kind, link_gbps -> host_gbps)."""
    from wrpsim.network.config import NetConfig

    fabric = {k: v for k, v in cfg.items() if k not in CLI_KEYS}
    fabric["kind"] = cfg["engine"]
    fabric["host_gbps"] = cfg["link_gbps"]
    if cfg["engine"] not in ("fluid", "packet"):
        from wrpsim.errors import unknown_choice

        raise unknown_choice("engine", cfg["engine"], ("fluid", "packet"))
    try:
        net = NetConfig.from_dict(fabric, where="net")
    except ConfigError as e:  # name the key as typed here (lb=, link_gbps=), not net.<key>
        msg = re.sub(r"(?<![\w.])net\.host_gbps\b", "link_gbps", str(e))
        msg = re.sub(r"(?<![\w.])net\.kind\b", "engine", msg)
        raise ConfigError(re.sub(r"(?<![\w.])net\.(?=\w)", "", msg)) from None
    from wrpsim.network.config import unread_lb_key

    unread = unread_lb_key(net, where="")
    if unread:
        raise ConfigError(unread)
    if cfg["engine"] == "fluid":  # a packet-engine key set here would change nothing: refused
        defaults = _defaults()
        moved = [k for k in PACKET_ONLY if k in cfg and changed(cfg[k], defaults.get(k))]
        if moved:
            raise ConfigError(f"{moved[0]} applies to the packet engine (engine=packet); the "
                              f"fluid engine models flows, not packets, and would ignore it "
                              f"(packet-engine keys: {', '.join(PACKET_ONLY)})")
    return net


def changed(value, default) -> bool:
    """Whether a key was set away from its default: true or false is never the default 1 or
    0 (they compare equal in Python: chunks=true passed as 'not set')."""
    return value != default or isinstance(value, bool) != isinstance(default, bool)


def check_pattern_keys(cfg: dict[str, Any]) -> None:
    """A collective key set away from its default (conf/net.yaml) where the pattern does not
    read it is a `ConfigError` naming the key and the patterns that take it, as elsewhere in
    wrpsim (a key that would change nothing is refused, not ignored): `group`, `ranks`,
    `alpha_us` need a collective pattern, `chunks` allreduce_tree, `ranks` a named group (a
    list of endpoints sets the ranks itself)."""
    from wrpsim.errors import unknown_choice
    from wrpsim.network.collectives import KINDS
    from wrpsim.network.patterns import PATTERNS

    default = _defaults()
    pattern, group = cfg["pattern"], cfg["group"]
    if pattern not in PATTERNS + KINDS:  # (a misspelt pattern first: not "chunks applies …")
        raise unknown_choice("pattern", pattern, PATTERNS + KINDS)
    takes = {"group": KINDS, "ranks": KINDS, "alpha_us": KINDS, "chunks": ("allreduce_tree",)}
    for key, patterns in takes.items():
        if changed(cfg[key], default[key]) and pattern not in patterns:
            which = "the collective patterns" if patterns == KINDS else "pattern"
            raise ConfigError(f"{key} applies only to {which} {', '.join(patterns)}; got "
                              f"{key}={cfg[key]!r} with pattern={pattern}")
    if isinstance(group, (list, tuple)) and changed(cfg["ranks"], default["ranks"]):
        raise ConfigError(f"ranks applies only to group=spread, leaf or pack (a list of "
                          f"endpoints is the group's ranks); got ranks={cfg['ranks']!r} with "
                          f"group={list(group)}")


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    """Run the scenario of a parsed config, write its files; the summary."""
    from wrpsim.io import output_dir, write_json
    from wrpsim.metrics.records import write_parquet
    from wrpsim.network.collectives import KINDS
    from wrpsim.network.scenario import run_scenario

    ncfg = net_config(cfg)
    seed = cfg["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"net: seed must be an integer >= 0, got {seed!r}")
    nbytes = parse_bytes(cfg["flow_bytes"])
    check_pattern_keys(cfg)
    with output_dir(cfg["out_dir"], "results/net") as out:
        if cfg["pattern"] in KINDS:
            from wrpsim.network.collective_scenario import run_collective

            res = run_collective(ncfg, cfg["pattern"], nbytes, seed, cfg["group"], cfg["ranks"],
                                 cfg["alpha_us"], cfg["chunks"])
        else:
            res = run_scenario(ncfg, cfg["pattern"], nbytes, seed)
        write_parquet(res.flows, out / "flows.parquet")
        write_parquet(res.links, out / "links.parquet")
        summary = {**res.summary, "out_dir": str(out)}
        write_json(out / "summary.json", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    """Entry point: print one JSON line; on bad input one error line on stderr, status 2."""
    return verb_main(lambda a: run(parse_args(a)), argv, verb="net", doc=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
