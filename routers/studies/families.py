"""Every router family on one workload and fleet: quality vs cost vs p99 latency, with the
router's view and capacity varied.

Usage: `python routers/studies/families.py [--requests N] [--rate-scale X] [--count K]
[--jobs 2] [--out FILE] [--only FAMILY,...]` (`--only`: run those families; with `--out`, their
rows replace theirs in the file, the other rows are kept)

Replays the first `--requests` (default 4,000) prompts of `routellm-mmlu-gsm8k` (MMLU + GSM8K
with the real per-prompt correctness of Mixtral-8x7B and GPT-4-1106) at `--rate-scale` times
its rate (default 80: 40 requests/s, close to what one 20 ms router replica decides) on
`two-model-mixtral-gpt4like` with `--count` instances per pool (default 4: Mixtral on 4 × (2 ×
H100), the GPT-4-class stand-in on 4 × (8 × H200), so the view has instances to choose among)
with one shipped configuration of each family: the zero
router at a 50 % mix, the RouteLLM threshold router, the CARROT utility router, a cascade, a
GreenServ bandit, the ensemble judge, the semantic rules router, the oracle (an upper bound,
labelled as such), the threshold router behind the semantic cache (30 % hit curve), a cascade
whose verifier's confidence is Mixtral's category accuracy (`cascade-confidence`) and
Router-R1-style rounds (`router-r1`, category-prior predictor, λ = 0.3, no cost cap). Each is
run in three deployments: `as shipped` (a 1 s metrics scrape, routing free), `stale` (a 5 s
scrape seen 2 s late) and `one GPU classifier` (every decision takes a 20 ms GPU classifier on
a single router replica). For each run: quality, token-priced and busy-GPU cost per 1,000
requests, p99 TTFT, p99 final-answer latency, p99 routing time and the router's utilisation.
Prints one markdown table; `--out` writes the rows as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

FAMILIES = {
    "zero 50 %": ["router=zero", "router.strong_share=0.5"],
    "threshold (RouteLLM)": ["router=routellm-threshold"],
    "utility (CARROT)": ["router=carrot-utility"],
    "cascade": ["router=cascade"],
    "bandit UCB1 (GreenServ)": ["router=bandit-ucb1"],
    "ensemble judge": ["router=ensemble-judge"],
    "semantic rules": ["router=semantic-rules", "router.rules=rules/routellm-two-model.yaml"],
    "threshold + semantic cache": ["router=routellm-threshold", "router.cache.enabled=true",
                                   "router.cache.hit_rate=0.3", "router.cache.false_hit=0.05"],
    # a cascade whose verifier's confidence is the category prior of Mixtral (no per-answer
    # signal), and Router-R1-style rounds with an answer-reading judge (skill 1, an assumption)
    "cascade (confidence from data)": [
        "router=cascade-confidence", "router.models=null", "router.predictor.kind=model",
        "~router.predictor.model", "+router.predictor.table=data/routellm_category_accuracy.csv",
        "router.verifier.threshold=0.8"],
    "Router-R1 rounds": [
        "router=router-r1", "router.predictor.kind=model", "~router.predictor.model",
        "+router.predictor.table=data/routellm_category_accuracy.csv", "router.budget_usd=null",
        "router.lam=0.3"],
    "oracle (upper bound)": ["router=oracle"],
}
DEPLOYMENTS = {
    "as shipped": [],
    "stale": ["router.view.interval_s=5", "router.view.delay_s=2"],
    "one GPU classifier": ["router.service.signal=gpu_classifier", "router.replicas=1"],
}


def one(args: tuple) -> dict:
    """Run one (family, deployment) as `python -m wrpsim` would; return its row."""
    import tempfile

    from tests.conftest import compose_cfg
    from wrpsim.sim import run

    family, deployment, overrides = args
    with tempfile.TemporaryDirectory(prefix="wrpsim-families-") as tmp:
        s = run(compose_cfg(*overrides), tmp)
    return {"family": family, "deployment": deployment, "quality": s.get("quality"),
            "token_cost_per_1k": s.get("token_cost_per_1k_requests_usd"),
            "busy_cost_per_1k": s.get("cost_per_1k_requests_usd"),
            "ttft_p99_s": s.get("ttft_p99_s"), "e2e_final_p99_s": s.get("e2e_final_p99_s"),
            "route_p99_s": s.get("route_p99_s"),
            "router_utilization": s.get("router_utilization"),
            "cache_hit_ratio": s.get("cache_hit_ratio"), "oracle": "router_oracle" in s}


def runs(n: int, rate_scale: float, count: int) -> list[tuple]:
    """(family, deployment, overrides) of every run."""
    base = ["workload=routellm-mmlu-gsm8k", "pool=two-model-mixtral-gpt4like",
            f"workload.max_requests={n}", f"workload.rate_scale={rate_scale}",
            f"pool.pools.small.count={count}", f"pool.pools.large.count={count}"]
    return [(f, d, [*base, *fo, *do]) for f, fo in FAMILIES.items()
            for d, do in DEPLOYMENTS.items()]


def table(rows: list[dict]) -> str:
    """The rows as one markdown table."""
    def f(x, spec):
        return "–" if x is None else format(x, spec)

    out = ["| family | deployment | quality | token $ / 1k req | busy-GPU $ / 1k req | "
           "p99 TTFT (s) | p99 final answer (s) | p99 routing (s) | router utilisation |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['family']} | {r['deployment']} | {f(r['quality'], '.4f')} | "
                   f"{f(r['token_cost_per_1k'], '.3f')} | {f(r['busy_cost_per_1k'], '.2f')} | "
                   f"{f(r['ttft_p99_s'], '.2f')} | {f(r['e2e_final_p99_s'], '.1f')} | "
                   f"{f(r['route_p99_s'], '.3f')} | {f(r['router_utilization'], '.2f')} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--rate-scale", type=float, default=80.0)
    ap.add_argument("--count", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--only", default=None,
                    help="comma-separated families to run; with --out, their rows replace "
                         "those of the file's other families (kept), in FAMILIES order")
    args = ap.parse_args()
    todo = runs(args.requests, args.rate_scale, args.count)
    if args.only is not None:
        only = [f.strip() for f in args.only.split(",")]
        bad = [f for f in only if f not in FAMILIES]
        if bad:
            sys.exit(f"families.py: error: --only: unknown family {bad[0]!r}; valid: "
                     f"{', '.join(FAMILIES)}")
        todo = [t for t in todo if t[0] in only]
    if args.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.jobs) as ex:
            rows = list(ex.map(one, todo))
    else:
        rows = [one(t) for t in todo]
    if args.only is not None and args.out is not None and args.out.exists():
        kept = [r for r in json.loads(args.out.read_text()) if r["family"] not in only]
        order = {f: i for i, f in enumerate(FAMILIES)}
        rows = sorted(kept + rows, key=lambda r: order.get(r["family"], len(order)))
    print(table(rows))
    if args.out is not None:
        args.out.write_text(json.dumps(rows, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
