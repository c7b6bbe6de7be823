"""Multi-call, guarded and best-effort routing on the RouteLLM outcomes: quality, cost, latency.

Run from the repository root: `python docs/experiments/multicall_study.py [out_dir] [--quick]`.
It replays the `routellm-mmlu-gsm8k` workload (15,361 MMLU + GSM8K prompts with the real
per-prompt correctness of Mixtral-8x7B and GPT-4-1106) with the single models, majority votes,
a judge, a fusion, a two-round chain and a guard on the two-model fleet (the guard on
`guarded-mixtral-gpt4like`), and the primary model alone vs the best-effort downgrade at 40×
the trace's rate; prints a Markdown table and writes `multicall_study.json` into `out_dir`
(default `docs/experiments/`). docs/routers.md quotes it. `--quick`: the first 3,000 requests.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.conftest import compose_cfg
from wrpsim.metrics.quality import quality_summary
from wrpsim.sim import Simulation

MIX, GPT = "mixtral-8x7b", "gpt4-class"
TWO = ["workload=routellm-mmlu-gsm8k", "pool=two-model-mixtral-gpt4like"]
GPT_ONLY = {"_target_": "wrpsim.router.UtilityRouter", "lam": 0.0, "models": [GPT]}

#: (name, overrides, router patch applied to the composed config, or None)
POINTS = [
    ("Mixtral-8x7B alone", [*TWO, f"workload.model={MIX}"], None),
    ("GPT-4-class alone", [*TWO, f"workload.model={GPT}"], None),
    ("vote, 3 × Mixtral", [*TWO, "router=ensemble-vote", "router.k=3"], None),
    ("vote, 2 × Mixtral + GPT-4-class",
     [*TWO, "router=ensemble-vote", f"router.models=[{MIX},{MIX},{GPT}]"], None),
    ("judge (GPT-4-class, a = 0.8) of Mixtral + GPT-4-class",
     [*TWO, "router=ensemble-judge", f"router.models=[{MIX},{GPT}]"], None),
    ("judge (GPT-4-class, a = 0.8) of 3 × Mixtral", [*TWO, "router=ensemble-judge"], None),
    ("fusion (GPT-4-class, a = 0.8) of 3 × Mixtral", [*TWO, "router=ensemble-fusion"], None),
    ("chain Mixtral → GPT-4-class", [*TWO, "router=chain-refine"], None),
    ("guard (Llama-3.1-8B) → GPT-4-class",
     ["workload=routellm-mmlu-gsm8k", "pool=guarded-mixtral-gpt4like", "router=guarded",
      "router.guard_model=llama3.1-8b"], {"inner": GPT_ONLY}),
    ("GPT-4-class alone, 40× rate", [*TWO, f"workload.model={GPT}", "workload.rate_scale=40"],
     None),
    ("best-effort downgrade, 40× rate",
     [*TWO, "router=best-effort-downgrade", "workload.rate_scale=40"], None),
]


def one(name: str, overrides: list[str], patch: dict | None, quick: bool) -> dict:
    """Run one point; return its metrics."""
    cfg = compose_cfg(*overrides, *(["workload.max_requests=3000"] if quick else []))
    if patch:
        cfg["router"].update(patch)
    t0 = time.perf_counter()
    sim = Simulation(cfg)
    req, inst, end = sim.run()
    answers = getattr(sim.router, "answers", None)
    q = quality_summary(req, inst, sim.trace, sim.fleet.specs, sim.pue, end, answers=answers)
    parents = req.column("parent_id").to_pylist()
    n = sum(p is None for p in parents)
    cost = float(np.nansum(req.column("cost_usd").to_numpy(zero_copy_only=False)))
    return {
        "name": name, "overrides": overrides, "router_patch": patch, "requests": n,
        "quality": q["quality"], "calls_per_request": len(parents) / n,
        "cost_per_1k_requests_usd": cost / n * 1000,
        "e2e_final_p50_s": q["e2e_final_p50_s"], "e2e_final_p99_s": q["e2e_final_p99_s"],
        "call_ttft_p99_s": float(np.nanpercentile(
            req.column("ttft_s").to_numpy(zero_copy_only=False), 99)),
        "model_share": q["model_share"], "answer_status": q.get("answer_status"),
        "downgraded": getattr(sim.router, "downgraded", None),
        "dropped": sum(s == "dropped" for s in req.column("status").to_pylist()),
        "sim_wall_s": time.perf_counter() - t0,
    }


def table(points: list[dict]) -> str:
    """The Markdown table docs/routers.md quotes."""
    rows = ["| policy | quality | calls / request | cost / 1k requests | e2e p50 | e2e p99 "
            "| call TTFT p99 |", "|---|---|---|---|---|---|---|"]
    for p in points:
        extra = f" ({p['downgraded'] / p['requests']:.1%} downgraded)" if p["downgraded"] \
            else ""
        rows.append(f"| {p['name']}{extra} | {p['quality']:.4f} | {p['calls_per_request']:.2f} "
                    f"| ${p['cost_per_1k_requests_usd']:.3f} | {p['e2e_final_p50_s']:.2f} s "
                    f"| {p['e2e_final_p99_s']:.2f} s | {p['call_ttft_p99_s']:.2f} s |")
    return "\n".join(rows)


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    args = [a for a in argv if a != "--quick"]
    out = Path(args[0]) if args else Path(__file__).resolve().parent
    points = []
    for name, overrides, patch in POINTS:
        points.append(one(name, overrides, patch, quick))
        print(json.dumps(points[-1]), file=sys.stderr)
    command = "python docs/experiments/multicall_study.py" + (" --quick" if quick else "")
    out.mkdir(parents=True, exist_ok=True)  # (a new folder: the points were lost at the end)
    (out / "multicall_study.json").write_text(
        json.dumps({"command": command, "points": points}, indent=1) + "\n", encoding="utf-8")
    print(table(points))


if __name__ == "__main__":
    main(sys.argv[1:])
