"""RouterBench's reference routers on the RouteLLM outcomes: zero router, oracle and AIQ.

Usage: `python routers/studies/routerbench.py [--requests N] [--jobs 2] [--out FILE]`

Replays `routellm-mmlu-gsm8k` (15,361 MMLU + GSM8K prompts with the real per-prompt correctness
of Mixtral-8x7B and GPT-4-1106; ≈ 30 s on 2 cores; `--requests N`: the first N only) on
`two-model-mixtral-gpt4like` with: the zero router at strong
shares 0 (Mixtral alone), 0.25, 0.5, 0.75 and 1 (GPT-4-class alone); the oracle router (an
upper bound: it reads the outcomes, under the labelled oracle view); the RouteLLM threshold
router at fixed thresholds τ and the CARROT utility router at a few λ (catalog predictors:
skill 0.5, noise 1). For each run: strong share, quality and both cost axes (token-priced, the
one RouterBench's AIQ is defined on; busy-GPU). For each router family, AIQ on the token-priced
axis over [Mixtral's cost, GPT-4-class's cost] of its points together with the two single
models' (as `routellm_curve.py` does), and the zero router's closed form (the mean of the two
qualities). Prints the table (markdown) and, with `--out`, writes the points and AIQs as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from routellm_curve import LARGE, SMALL, one  # the sibling study's runner

SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)
THRESHOLDS = (0.45, 0.5, 0.55, 0.6)
LAMBDAS = (0.02, 0.1, 0.4)
TOKEN, BUSY = "token_cost_per_1k_requests_usd", "cost_per_1k_requests_usd"


def runs(n: int | None) -> list[tuple]:
    """(series, knob, overrides, quick) of every run, `one`'s argument."""
    cap = f"workload.max_requests={n}" if n else "workload.max_requests=null"
    out = [("zero", s, ["router=zero", f"router.strong_share={s}", cap]) for s in SHARES]
    out.append(("oracle", 0.0, ["router=oracle", cap]))
    out += [("threshold", t, ["router=routellm-threshold", f"router.threshold={t}", cap])
            for t in THRESHOLDS]
    out += [("utility", lam, ["router=carrot-utility", f"router.lam={lam}", cap])
            for lam in LAMBDAS]
    return [(*r, False) for r in out]


def evaluate(points: list[dict]) -> dict:
    """AIQ per family (with the single-model points), the zero router's closed form."""
    from wrpsim.report.aiq import aiq, zero_curve

    zero = {p["knob"]: p for p in points if p["series"] == "zero"}
    single = {SMALL: zero[0.0], LARGE: zero[1.0]}
    lo, hi = single[SMALL][TOKEN], single[LARGE][TOKEN]
    out = {"cost_range": [lo, hi], "aiq": {}}
    for s in sorted({p["series"] for p in points}):
        pts = [p for p in points if p["series"] == s] + list(single.values())
        out["aiq"][s] = aiq([p[TOKEN] for p in pts], [p["quality"] for p in pts], lo, hi)
    hull = zero_curve({m: (p[TOKEN], p["quality"]) for m, p in single.items()})
    out["zero_curve"] = hull
    out["aiq"]["zero (closed form)"] = aiq([c for c, _ in hull], [q for _, q in hull], lo, hi)
    return out


def table(points: list[dict], ev: dict) -> str:
    """The points and the AIQ per family, as markdown."""
    rows = ["| router | knob | strong share | quality | token cost / 1k req | busy-GPU cost / 1k "
            "req | AIQ (token cost) |", "|---|---|---|---|---|---|---|"]
    for p in points:
        rows.append(f"| {p['series']} | {p['knob']:g} | {p['strong_share']:.3f} | "
                    f"{p['quality']:.4f} | ${p[TOKEN]:.3f} | ${p[BUSY]:.3f} | "
                    f"{ev['aiq'][p['series']]:.4f} |")
    rows.append(f"| zero (closed form: mean of the singles) | | | | | | "
                f"{ev['aiq']['zero (closed form)']:.4f} |")
    return "\n".join(rows) + "\n"


def main() -> None:
    from multiprocessing import Pool

    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=None, help="the first N (default: all)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=None, help="write the points and AIQs here (JSON)")
    a = ap.parse_args()
    with Pool(a.jobs) as pool:
        points = pool.map(one, runs(a.requests))
    ev = evaluate(points)
    print(table(points, ev), end="")
    if a.out:
        Path(a.out).write_text(json.dumps({"points": points, **ev}, indent=1))


if __name__ == "__main__":
    main()
