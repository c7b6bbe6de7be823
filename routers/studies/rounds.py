"""Router-R1-style rounds and cascades with a data-driven verifier on the LLMRouter held-out split.

Usage: `python routers/studies/rounds.py [--jobs 2] [--out FILE]`

Replays `llmrouter-14-tasks-test` (the 500 `test` rows of the LLMRouter outcomes, which the
learned predictor `routers/data/llmrouter_predictor.json` was not fitted on) on
`six-model-llmrouter` with: the single best model (the Nemotron-51B stand-in), the learned
utility router (`learned-utility`, the rounds router's round-0 choice), the fixed chain
(`chain-refine`: cheapest, then dearest), the rounds router (`router-r1`) at several per-task
budgets and verifiers, cascades (Llama-3.1-8B, then the Nemotron stand-in) whose verifier's
confidence is the learned estimate (`cascade-confidence`) at several thresholds or is told the
truth (`verifier.kind=oracle-rates`, tpr 0.8, fpr 0.1), and the oracle (an upper bound). For
each: quality, token-priced and busy-GPU cost per 1,000 requests, calls per request, p99 final
answer, and the verifier's measured false-accept / false-reject rates. Prints one markdown
table; `--out` writes the rows as JSON. Deterministic; ~30 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

BASE = ["workload=llmrouter-14-tasks-test", "pool=six-model-llmrouter"]
CASCADE = ["router=cascade-confidence"]
RUNS = {
    "single best: Nemotron-51B stand-in": ["workload.model=nemotron-51b-class"],
    "learned utility, λ 0.01 (learned-utility)": ["router=learned-utility"],
    "fixed chain: cheapest, then dearest (chain-refine)": ["router=chain-refine"],
    "rounds, budget $0 (= learned utility)": ["router=router-r1", "router.budget_usd=0"],
    "rounds, budget $0.0001": ["router=router-r1", "router.budget_usd=0.0001"],
    "rounds, budget $0.0003": ["router=router-r1", "router.budget_usd=0.0003"],
    "rounds, budget $0.0005 (router-r1)": ["router=router-r1"],
    "rounds, budget $0.001": ["router=router-r1", "router.budget_usd=0.001"],
    "rounds, no cost cap": ["router=router-r1", "router.budget_usd=null"],
    "rounds, no cost cap, judge skill 0 (confidence = learned estimate)": [
        "router=router-r1", "router.budget_usd=null", "router.verifier.skill=0"],
    "rounds, no cost cap, judge skill 1, noise 1": [
        "router=router-r1", "router.budget_usd=null", "router.verifier.noise_sd=1"],
    "cascade, confidence from data, threshold 0.4": [*CASCADE, "router.verifier.threshold=0.4"],
    "cascade, confidence from data, threshold 0.5 (cascade-confidence)": CASCADE,
    "cascade, confidence from data, threshold 0.7": [*CASCADE, "router.verifier.threshold=0.7"],
    "cascade, verifier told the truth (oracle-rates, tpr 0.8, fpr 0.1)": [
        *CASCADE, "router.verifier.kind=oracle-rates", "router.verifier.threshold=null",
        "router.verifier.predictor=null", "router.verifier.skill=null",
        "router.verifier.noise_sd=null", "+router.verifier.tpr=0.8", "+router.verifier.fpr=0.1"],
    "oracle (upper bound)": ["router=oracle"],
}


def one(args: tuple) -> dict:
    """Run one configuration as `python -m wrpsim` would; return its row."""
    import tempfile

    from tests.conftest import compose_cfg
    from wrpsim.sim import run

    name, overrides = args
    with tempfile.TemporaryDirectory(prefix="wrpsim-rounds-") as tmp:
        s = run(compose_cfg(*BASE, *overrides), tmp)
    return {"run": name, "quality": s.get("quality"),
            "token_cost_per_1k": s.get("token_cost_per_1k_requests_usd"),
            "busy_cost_per_1k": s.get("cost_per_1k_requests_usd"),
            "calls_per_request": 1.0 + (s.get("followups_per_request") or 0.0),
            "e2e_final_p99_s": s.get("e2e_final_p99_s"),
            "false_accept": s.get("verifier_false_accept_rate"),
            "false_reject": s.get("verifier_false_reject_rate"),
            "stops": s.get("rounds_stops")}


def table(rows: list[dict]) -> str:
    """The rows as one markdown table."""
    def f(x, spec):
        return "–" if x is None else format(x, spec)

    out = ["| run on `llmrouter-14-tasks-test` | quality | token $ / 1k req | busy-GPU $ / 1k req "
           "| calls / req | p99 final answer (s) | verifier false accept | false reject |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['run']} | {f(r['quality'], '.4f')} | {f(r['token_cost_per_1k'], '.3f')}"
                   f" | {f(r['busy_cost_per_1k'], '.2f')} | {f(r['calls_per_request'], '.2f')} | "
                   f"{f(r['e2e_final_p99_s'], '.1f')} | {f(r['false_accept'], '.3f')} | "
                   f"{f(r['false_reject'], '.3f')} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    todo = list(RUNS.items())
    if args.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.jobs) as ex:
            rows = list(ex.map(one, todo))
    else:
        rows = [one(t) for t in todo]
    print(table(rows))
    if args.out is not None:
        args.out.write_text(json.dumps(rows, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
