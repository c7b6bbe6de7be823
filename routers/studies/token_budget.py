"""Token-budget pool routing vs a homogeneous fleet at the same SLO (Azure 2023 traces).

Usage: `python routers/studies/token_budget.py [--target 0.99] [--jobs 2] [--out DIR]`
(default DIR: docs/experiments)

For each Azure trace (conversation at 4x, code at 2x its recorded rate, chosen so the fleets
were about ten instances under the older splitwise-2023 latency model; 5-16 on vllm-0.24) and
each KV model, finds the smallest fleet of Llama-3.1-70B TP-4 H100 instances whose SLO
attainment (TTFT <= 2 s and TPOT <= 0.25 s; the code trace's long prompts keep its p99 TPOT
near 0.14 s at the sizes found, 0.21 s under splitwise-2023, under chunked prefill)
reaches `--target`:

- homogeneous: N identical instances behind least-outstanding routing;
- two pools: N_s short + N_l long instances behind `router=token-budget` (boundary B tokens of
  prompt + output, spill to the long pool when short is saturated); for each N_l in 1..8 the
  smallest N_s, then the smallest total.

Counts are found by doubling then bisection (attainment grows with the instance count).

KV models: `paged` is wrpsim's engine as is (KV blocks on demand, so a homogeneous instance
loses nothing to long contexts it is configured for); `slots-16k` and `slots-64k` emulate the
slot model of the vLLM Semantic Router fleet studies, where an instance configured for a context
window W runs at most KV capacity / W sequences (max_seqs = floor(KV tokens / W)): W = 16K
(just above the conversation trace's longest request, 14K tokens) or 64K (the long-context
fleet of the published study) for the homogeneous and long instances, W = B for the short
ones. Prints one JSON object and writes `token_budget_study.json` / `.md` into `--out`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

WORKLOADS = {"azure-conv-2023": 4096, "azure-code-2023": 4096}  # trace -> boundary B
#: rates scaled so the fleets were about ten instances under splitwise-2023 (5-16 on vllm-0.24)
RATE_SCALE = {"azure-conv-2023": 4.0, "azure-code-2023": 2.0}
SLO = ("slo.ttft_s=2.0", "slo.tpot_s=0.25")
#: KV models: max context W of the homogeneous and long instances (None: paged, no slot cap)
MODES = {"paged": None, "slots-16k": 16384, "slots-64k": 65536}
MAX_LONG = 8
CAP = 64


def compose_cfg(*overrides: str) -> dict:
    """The run config `python -m wrpsim <overrides>` would use, as a plain dict."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from wrpsim.app import register_catalogs
    from wrpsim.paths import catalog_dir

    register_catalogs()
    with initialize_config_dir(config_dir=str(catalog_dir("conf")), version_base="1.3"):
        return OmegaConf.to_container(compose("config", overrides=list(overrides)), resolve=True)


def kv_tokens() -> int:
    """KV capacity (tokens) of one Llama-3.1-70B TP-4 H100 instance as the study's pools run it
    (the default engine and its share of the memory, 2,048 batched tokens, 256 sequences:
    vLLM's start-up profile's reserve for those, `sizes.profile_reserve_gib`)."""
    from wrpsim.pool.engines import DEFAULT_ENGINE, build_latency_model, get_engine

    lat = build_latency_model("llama3.1-70b", "h100-80gb", 4)
    util = get_engine(DEFAULT_ENGINE).gpu_mem_util
    return lat.kv_capacity_blocks(16, util, None, 0, 256, 2048) * 16


def _pool(count: int, max_seqs: int) -> dict:
    return {"gpu": "h100-80gb", "model": "llama3.1-70b", "tp": 4, "count": count,
            "scheduler": {"policy": "sarathi", "token_budget": 2048, "max_seqs": max_seqs,
                          "block_size": 16}}


def one(args: tuple) -> dict:
    """Run one fleet; return its figures."""
    workload, mode, ns, nl, boundary = args
    from wrpsim.metrics.summary import summarize
    from wrpsim.sim import Simulation

    cap = kv_tokens()
    ctx = MODES[mode]
    long_seqs = min(256, cap // ctx) if ctx else 256
    short_seqs = min(256, cap // boundary) if ctx else 256
    if ns == 0:
        cfg = compose_cfg(f"workload={workload}", "router=least-outstanding", *SLO,
                          f"workload.rate_scale={RATE_SCALE[workload]}")
        cfg["pool"] = {"name": "homogeneous", "pools": {"h100": _pool(nl, long_seqs)}}
    else:
        cfg = compose_cfg(f"workload={workload}", "router=token-budget", *SLO,
                          f"workload.rate_scale={RATE_SCALE[workload]}")
        cfg["pool"] = {"name": "two-pool", "pools": {"short": _pool(ns, short_seqs),
                                                      "long": _pool(nl, long_seqs)}}
        cfg["router"].update(boundary_tokens=boundary, short_pools=["short"],
                             long_pools=["long"], spill_outstanding=short_seqs)
    sim = Simulation(cfg)
    req, inst, end = sim.run()
    s = summarize(req, inst, end, sim.slo, sim.pue)
    return {"workload": workload, "mode": mode, "short": ns, "long": nl,
            "gpus": 4 * (ns + nl), "slo_attainment": s["slo_attainment"],
            "tokens_per_joule": s["tokens_per_joule"], "ttft_p99_s": s["ttft_p99_s"],
            "tpot_p99_s": s["tpot_p99_s"], "preemptions": s["preemptions"],
            "spill": getattr(sim.router, "counts", {}).get("spill")}


def _meets(run, target: float) -> bool:
    return run["slo_attainment"] >= target


def search(task: tuple) -> dict:
    """Smallest count meeting the target by bisection (attainment grows with instances):
    the homogeneous N (`nl` None), or N_s for a fixed long pool of `nl` instances."""
    workload, mode, nl, target, cap = task
    boundary = WORKLOADS[workload]
    run = (lambda n: one((workload, mode, 0, n, boundary))) if nl is None else (
        lambda n: one((workload, mode, n, nl, boundary)))
    tried: dict[int, dict] = {}
    lo, hi = 0, None  # lo fails (0 never meets), hi meets
    n = 1
    while hi is None and n <= cap:
        tried[n] = run(n)
        if _meets(tried[n], target):
            hi = n
        else:
            lo, n = n, n * 2
    if hi is None:
        return {"workload": workload, "mode": mode, "long": nl, "best": None,
                "runs": list(tried.values())}
    while hi - lo > 1:
        mid = (lo + hi) // 2
        tried[mid] = run(mid)
        lo, hi = (lo, mid) if _meets(tried[mid], target) else (mid, hi)
    return {"workload": workload, "mode": mode, "long": nl, "best": tried[hi],
            "runs": list(tried.values())}


def main() -> None:
    from multiprocessing import Pool

    ap = argparse.ArgumentParser()
    ap.add_argument("--target", type=float, default=0.99)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="docs/experiments")
    a = ap.parse_args()
    tasks = [(w, m, nl, a.target, CAP) for w in WORKLOADS for m in MODES
             for nl in (None, *range(1, MAX_LONG + 1))]
    with Pool(a.jobs) as pool:
        found = pool.map(search, tasks)
    rows, runs = [], [r for f in found for r in f["runs"]]
    for w in WORKLOADS:
        for m in MODES:
            mine = [f for f in found if f["workload"] == w and f["mode"] == m and f["best"]]
            homo = next((f["best"] for f in mine if f["long"] is None), {})
            twos = [f["best"] for f in mine if f["long"] is not None]
            two = min(twos, key=lambda r: (r["gpus"], -r["slo_attainment"])) if twos else {}
            fewer = 1 - two["gpus"] / homo["gpus"] if homo and two else None
            tpj = two["tokens_per_joule"] / homo["tokens_per_joule"] if homo and two else None
            rows.append({"workload": w, "mode": m, "homogeneous": homo, "two_pool": two,
                         "fewer_instances": fewer, "tok_per_j_ratio": tpj})
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "token_budget_study.json").write_text(json.dumps({"target": a.target, "rows": rows,
                                                             "runs": runs}, indent=1))
    lines = ["| trace | KV model | homogeneous (instances, attainment, tok/J) | two-pool "
             "(short + long, attainment, tok/J) | fewer instances | tok/J ratio |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        h, t = r["homogeneous"], r["two_pool"]
        if not h or not t:
            lines.append(f"| {r['workload']} | {r['mode']} | {h.get('long', f'> {CAP}')} | "
                         f"{'found' if t else 'none found'} | — | — |")
            continue
        lines.append(
            f"| {r['workload']} | {r['mode']} | {h['long']}, {h['slo_attainment']:.4f}, "
            f"{h['tokens_per_joule']:.3f} | {t['short']} + {t['long']}, "
            f"{t['slo_attainment']:.4f}, {t['tokens_per_joule']:.3f} | "
            f"{100 * r['fewer_instances']:.0f} % | {r['tok_per_j_ratio']:.2f}× |")
    (out / "token_budget_study.md").write_text("\n".join(lines) + "\n")
    print(json.dumps({"target": a.target, "rows": [
        {k: r[k] for k in ("workload", "mode", "fewer_instances", "tok_per_j_ratio")}
        for r in rows]}))


if __name__ == "__main__":
    main()
