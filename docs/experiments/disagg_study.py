"""Colocated vs disaggregated serving, and KV-transfer load balancing on a fabric.

Run from the repository root: `python docs/experiments/disagg_study.py [out_dir]`. It simulates
every scenario below with wrpsim's public API, prints one JSON line per scenario, and writes
`disagg_study.json` and a self-contained plot `disagg_study.html` into `out_dir`
(default `docs/experiments/`). docs/disaggregation.md quotes its figures.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.conftest import compose_cfg
from wrpsim.metrics.summary import summarize
from wrpsim.sim import Simulation

KEYS = ("ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s", "tt2t_p50_s",
        "kv_transfer_mean_s", "slo_attainment", "cost_usd", "energy_kwh")

SCHED = {"policy": "sarathi", "token_budget": 2048, "max_seqs": 256, "block_size": 16}


def fleet(disagg: bool, mode: str = "layerwise", p: int = 2) -> dict:
    """H100s serving Llama-3.1-70B: 4 TP4 instances, or `p` prefill + 2 decode instances."""
    base = {"gpu": "h100-80gb", "model": "llama3.1-70b", "tp": 4, "scheduler": SCHED}
    if not disagg:
        return {"name": "colocated", "pools": {"h100": {**base, "count": 4}}}
    return {"name": "disaggregated", "pools": {
        "pre": {**base, "count": p, "role": "prefill", "kv_transfer": {"mode": mode}},
        "dec": {**base, "count": 2, "role": "decode"}}}


def run(name: str, overrides: list[str], pool: dict) -> dict:
    cfg = compose_cfg(*overrides)
    cfg["pool"] = pool
    sim = Simulation(cfg)
    req, inst, end = sim.run()
    s = summarize(req, inst, end, sim.slo, sim.pue)
    out = {"scenario": name, **{k: s[k] for k in KEYS}}
    print(json.dumps(out))
    return out


def main() -> None:
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    load = ["workload=azure-conv-2023", "workload.end_s=1200"]
    rows = [
        run("colocated", load, fleet(False)),
        run("disaggregated, layer-wise, 400 Gb/s NICs",
            [*load, "network=nic", "network.nic_gbps=400"], fleet(True)),
        run("disaggregated, serialized, 400 Gb/s NICs",
            [*load, "network=nic", "network.nic_gbps=400"], fleet(True, "serialized")),
    ]
    short = [*load, "workload.max_prompt_tokens=128"]
    rows += [
        run("short prompts: colocated", short, fleet(False)),
        run("short prompts: disaggregated, serialized, 1 Gb/s NICs",
            [*short, "network=nic", "network.nic_gbps=1"], fleet(True, "serialized")),
    ]
    # KV traffic over an oversubscribed, non-rail fabric: ECMP vs spraying vs split
    fab = ["network=fluid", "network.rail_optimized=false", "network.leaves=8",
           "network.hosts_per_leaf=4", "network.spines=4", "network.gpus_per_host=4",
           "network.oversubscription=4.0", "network.host_gbps=100", "network.placement=spread"]
    heavy = ["workload=azure-code-2023", "workload.end_s=900"]
    for lb in ("ecmp", "spray", "split"):
        rows.append(run(f"fabric {lb}: code trace, 6P:2D, 4:1 oversubscribed",
                        heavy + fab + [f"network.lb={lb}"], fleet(True, "serialized", p=6)))
    (out_dir / "disagg_study.json").write_text(json.dumps(rows, indent=1) + "\n")
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=3, subplot_titles=("TTFT p50 (s)", "TPOT p50 (s)",
                                                        "exposed KV transfer, mean (s)"))
    names = [r["scenario"] for r in rows]
    for col, key in enumerate(("ttft_p50_s", "tpot_p50_s", "kv_transfer_mean_s"), start=1):
        fig.add_trace(go.Bar(x=names, y=[r[key] or 0 for r in rows], showlegend=False),
                      row=1, col=col)
    fig.update_layout(height=600, width=1500, title="wrpsim: colocated vs disaggregated")
    fig.write_html(out_dir / "disagg_study.html", include_plotlyjs=True)


if __name__ == "__main__":
    main()
