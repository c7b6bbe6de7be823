"""The same window of the disaggregated default run on the fluid and on the packet engine.

Run from the repository root: `python docs/experiments/packet_window.py [t0] [t1] [out]`
(default 1000 1010, `docs/experiments/packet_window.json`). It runs the default trace on
`pool=h100-llama70b-disagg` twice — `network=fluid`, and `network=fluid
network.packet_window=[t0,t1]` (the KV transfers that start in [t0, t1) as packets, the rest as
fluids) — and prints / writes, for each: the completion-time percentiles of the transfers that
started in the window (`Fabric.transfer_times`), TTFT p50 / p99 of the requests that arrived in
it, the window's packet counters and the run's wall time (`Simulation.run`, one process, so the
two share the machine's state). docs/network.md ("Packet window") quotes it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from wrpsim.sim import Simulation
from wrpsim.workload import build_workload


def compose_cfg(*overrides: str) -> dict:
    """The run config `python -m wrpsim <overrides>` would use, as a plain dict."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from wrpsim.app import register_catalogs
    from wrpsim.paths import catalog_dir

    register_catalogs()
    with initialize_config_dir(config_dir=str(catalog_dir("conf")), version_base="1.3"):
        return OmegaConf.to_container(compose("config", overrides=list(overrides)), resolve=True)


def pct(xs, q):
    return float(np.percentile(xs, q)) if len(xs) else None


def one(t0: float, t1: float, window: bool) -> dict:
    over = ["pool=h100-llama70b-disagg", "network=fluid"]
    if window:
        over.append(f"network.packet_window=[{t0},{t1}]")
    cfg = compose_cfg(*over)
    trace = build_workload(cfg["workload"], cfg.get("seed", 0))
    t = time.perf_counter()
    sim = Simulation(cfg, trace)
    req, _, _ = sim.run()
    wall = time.perf_counter() - t
    fabric = sim.fleet.transfer.fabric
    xs = fabric.transfer_times(t0, t1)
    df = req.to_pandas()
    inw = df[(df["arrival_s"] >= t0) & (df["arrival_s"] < t1)]
    st = fabric.stats()
    return {
        "engine_in_window": "packet" if window else "fluid", "window_s": [t0, t1],
        "transfers": len(xs), "requests": len(inw),
        "transfer_p50_ms": pct(xs, 50) * 1e3, "transfer_p99_ms": pct(xs, 99) * 1e3,
        "transfer_max_ms": max(xs) * 1e3,
        "ttft_p50_ms": pct(inw["ttft_s"], 50) * 1e3, "ttft_p99_ms": pct(inw["ttft_s"], 99) * 1e3,
        "run_ttft_p99_ms": pct(df["ttft_s"], 99) * 1e3,
        "data_packets": st.get("data_packets"), "retransmits": st.get("retransmits"),
        "trims": st.get("trims"), "wall_s": wall,
    }


def main() -> None:
    t0 = float(sys.argv[1]) if len(sys.argv) > 1 else 1000.0
    t1 = float(sys.argv[2]) if len(sys.argv) > 2 else 1010.0
    out = Path(sys.argv[3]) if len(sys.argv) > 3 else \
        Path(__file__).with_name("packet_window.json")
    rows = [one(t0, t1, w) for w in (False, True)]
    for r in rows:
        print(json.dumps(r), flush=True)
    out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
