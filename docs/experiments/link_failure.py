"""One failed spine uplink on the 16×16×16 permutation: ECMP vs packet spraying vs split.

Run from the repository root: `python docs/experiments/link_failure.py [out_dir]`. It simulates
the scenarios below with wrpsim's public API (`run_scenario`, the engine of
`python -m wrpsim.net`), prints one JSON line per group of runs, and writes `link_failure.json`,
a self-contained plot `link_failure.html` and, when a headless Chromium is on the PATH, a
screenshot `link_failure.png` into `out_dir` (default `docs/experiments/`). docs/network.md
("Link failures") quotes its numbers. About four minutes on one core.

Fabric: 16 leaves × 16 hosts × 16 spines at 400 Gb/s (non-blocking), 4 MiB per flow, every host
sending to a host on another leaf (a random permutation per seed). The failure: the link between
leaf 0 and spine 0, both directions (`failed_links=[leaf0-spine0]`). Times are relative to the
healthy fabric's ideal completion time, M/C = 83.9 µs. The packet engine runs its default
transport (`uec`: losses are trims) with 64-byte headers and ACKs on the way back.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from wrpsim.network.config import NetConfig
from wrpsim.network.scenario import run_scenario
from wrpsim.network.theory import permutation_max_load_mc, spray_cct_failed_s

CUBE = {"leaves": 16, "hosts_per_leaf": 16, "spines": 16, "host_gbps": 400}
M = 4 << 20
IDEAL = M * 8 / 400e9
ONE = ["leaf0-spine0"]
MODES = {  # label -> NetConfig keys
    "ECMP (rehash)": {"lb": "ecmp", "ecmp_remap": "rehash"},
    "ECMP (resilient)": {"lb": "ecmp", "ecmp_remap": "resilient"},
    "spray": {"lb": "spray"},
    "split": {"lb": "split"},
}
FLUID_SEEDS = range(50)
PACKET_SEEDS = range(3)
SWEEP_SEEDS = range(20)


def runs(kind: str, mode: dict, links: list, seeds) -> dict:
    """Mean (and sd) over `seeds` of the CCT and the mean FCT relative to the healthy ideal,
    and the packet engine's drops and out-of-order arrivals."""
    rows = [run_scenario(NetConfig(kind=kind, failed_links=links, **CUBE, **mode),
                         "permutation", M, s).summary for s in seeds]
    cct = np.array([r["cct_s"] for r in rows]) / IDEAL
    fct = np.array([r["mean_fct_s"] for r in rows]) / IDEAL
    out = {"seeds": len(rows), "cct": round(float(cct.mean()), 4),
           "cct_sd": round(float(cct.std()), 4), "mean_fct": round(float(fct.mean()), 4),
           "conns": rows[0]["conns"]}
    if kind == "packet":
        out["drops"] = int(np.mean([r["drops"] for r in rows]))
        out["trims"] = int(np.mean([r["trims"] for r in rows]))
        out["out_of_order"] = int(np.mean([r["out_of_order_packets"] for r in rows]))
    return out


def main() -> None:
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict = {"fabric": {**CUBE, "flow_bytes": M, "failed_links": ONE,
                               "ideal_healthy_s": IDEAL}, "table": [], "sweep": [],
                    "gray": []}
    for kind, seeds in (("fluid", FLUID_SEEDS), ("packet", PACKET_SEEDS)):
        for label, mode in MODES.items():
            for state, links in (("healthy", []), ("one failed uplink", ONE)):
                row = {"engine": kind, "mode": label, "state": state,
                       **runs(kind, mode, links, seeds)}
                print(json.dumps(row))
                result["table"].append(row)
    # more failed uplinks of leaf 0 (fluid)
    for f in (0, 1, 2, 4, 8):
        links = [{"leaf": 0, "spine": s} for s in range(f)]
        for label in ("ECMP (rehash)", "spray", "split"):
            row = {"failed": f, "mode": label, **runs("fluid", MODES[label], links, SWEEP_SEEDS)}
            print(json.dumps(row))
            result["sweep"].append(row)
    # a gray failure: leaf0 -> spine0 up at half rate (fluid)
    for label in ("ECMP (rehash)", "spray", "split"):
        slow = [{"leaf": 0, "spine": 0, "direction": "up", "rate_factor": 0.5}]
        row = {"mode": label, "state": "leaf0->spine0 at half rate",
               **runs("fluid", MODES[label], slow, FLUID_SEEDS)}
        print(json.dumps(row))
        result["gray"].append(row)
    result["oracles"] = {
        "spray_closed_form": spray_cct_failed_s(M, 16, 16, 1, 400e9, 400e9) / IDEAL,
        "ecmp_monte_carlo_healthy": permutation_max_load_mc(16, 16, 16, trials=3000),
        "ecmp_monte_carlo_failed": permutation_max_load_mc(16, 16, 16, trials=3000, failed=1),
    }
    print(json.dumps(result["oracles"]))
    (out_dir / "link_failure.json").write_text(json.dumps(result, indent=1) + "\n")
    plot(result, out_dir)


def plot(result: dict, out_dir: Path) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=3, subplot_titles=(
        "fluid, 50 seeds: CCT / healthy ideal (± sd)", "packet, 3 seeds: CCT / healthy ideal",
        "fluid, 20 seeds: CCT vs failed links of leaf 0 (spray = split)"))
    colors = {"healthy": "#4c78a8", "one failed uplink": "#e45756"}
    for col, kind in ((1, "fluid"), (2, "packet")):
        for state, color in colors.items():
            rows = [r for r in result["table"] if r["engine"] == kind and r["state"] == state]
            fig.add_trace(go.Bar(
                x=[r["mode"] for r in rows], y=[r["cct"] for r in rows], name=state,
                marker_color=color, showlegend=col == 1, text=[f"{r['cct']:.2f}" for r in rows],
                textposition="outside",
                error_y={"type": "data", "array": [r["cct_sd"] for r in rows]}),
                row=1, col=col)
    for label, color in (("ECMP (rehash)", "#f58518"), ("spray", "#54a24b"),
                         ("split", "#b279a2")):
        rows = [r for r in result["sweep"] if r["mode"] == label]
        fig.add_trace(go.Scatter(x=[r["failed"] for r in rows], y=[r["cct"] for r in rows],
                                 mode="lines+markers", name=label, line={"color": color}),
                      row=1, col=3)
    fig.add_trace(go.Scatter(x=[0, 1, 2, 4, 8], y=[16 / (16 - f) for f in (0, 1, 2, 4, 8)],
                             mode="lines", name="S/(S−f)", line={"dash": "dot",
                                                                 "color": "black"}),
                  row=1, col=3)
    fig.update_xaxes(title_text="failed links of leaf 0 (of 16, both directions)", row=1, col=3)
    fig.update_yaxes(range=[0, 6.3], row=1, col=1)
    fig.update_yaxes(range=[0, 6.3], row=1, col=2)
    fig.update_layout(height=520, width=1500, barmode="group",
                      title="wrpsim: one failed spine uplink, 16×16×16 permutation, 4 MiB flows")
    html = out_dir / "link_failure.html"
    fig.write_html(html, include_plotlyjs=True, config={"displayModeBar": False})
    from wrpsim.io import screenshot

    screenshot(html, out_dir / "link_failure.png", 1500, 540)


if __name__ == "__main__":
    main()
