"""wrpsim against constant-rate vLLM serving runs it was never fitted on: the inference-perf runs
of the BLIS latency model's training set (docs/validation.md, "Constant-rate runs on H100 that
nobody here chose"), stage by stage.

The data is github.com/inference-sim/training (`default_args/`, commit ed5c1d2; it states no
licence, so wrpsim reads it from a copy you make and ships none of it):

    git clone https://github.com/inference-sim/training /tmp/istrain
    python docs/experiments/inference_perf_check.py /tmp/istrain [--latency K=V ...] [WORD ...]

The cases are `python -m wrpsim.validate sets=[inference_perf] inference_perf_dir=CLONE`'s
(`wrpsim.validate.inference_perf`: one per stage, how each is replayed and measured); this
prints them one by one — measured and simulated mean TTFT, time per output token and mean
latency — and the median errors, the 90th-percentile TTFT's and latency's too. With words, only
the stages whose name holds one of them; `--latency KEY=VALUE` sets an engine constant for
every stage (e.g. `--latency layer_overhead_us=10.962`, vllm-0.11's per-layer floor). About
10 s on 2 cores.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import yaml

from wrpsim.validate.inference_perf import inference_perf_cases
from wrpsim.validate.replay import simulate


def _overrides(args: list[str]) -> tuple[dict, list[str]]:
    """The `--latency KEY=VALUE` pairs of `args` (values read as YAML) and the other words."""
    over, words, it = {}, [], iter(args)
    for a in it:
        if a == "--latency":
            kv = next(it, "")
            if "=" not in kv:
                raise SystemExit("inference_perf_check: --latency needs KEY=VALUE")
            k, v = kv.split("=", 1)
            over[k] = yaml.safe_load(v)
        else:
            words.append(a)
    return over, words


def main(root: Path, words: list[str], overrides: dict) -> None:
    """Print the table and the medians of the stages named by `words` (all when none)."""
    skipped: dict[str, int] = {}
    cases = [c for c in inference_perf_cases(root, skipped)
             if not words or any(w in c.name for w in words)]
    errs: dict[str, list] = {"ttft": [], "tpot": [], "e2e": [], "ttft_p90": [], "e2e_p90": []}
    print("| run, stage | TTFT ms measured → wrpsim | per-token ms measured → wrpsim | "
          "latency s measured → wrpsim |")
    print("|---|---|---|---|")
    for c in cases:
        s = simulate(c, overrides=overrides or None)
        m = c.measured
        pairs = [(m["ttft_mean_s"] * 1e3, s["ttft_mean_s"] * 1e3),
                 (m["tpot_mean_s"] * 1e3, s["tpot_mean_s"] * 1e3),
                 (m["e2e_mean_s"], s["e2e_mean_s"]),
                 (c.info["ttft_p90_s"], s["ttft_p90_s"]), (c.info["e2e_p90_s"], s["e2e_p90_s"])]
        e = [100 * (b / a - 1) for a, b in pairs]
        for k, v in zip(errs, e):
            errs[k].append(v)
        (t0, t1), (p0, p1), (l0, l1) = pairs[:3]
        print(f"| {c.name} | {t0:,.1f} → {t1:,.1f} ({e[0]:+.0f} %) | {p0:.2f} → {p1:.2f} "
              f"({e[1]:+.0f} %) | {l0:,.2f} → {l1:,.2f} ({e[2]:+.0f} %) |", flush=True)
    for why, n in skipped.items():
        print(f"left out: {n} stage(s): {why}")
    for k, v in errs.items():
        if v:
            print(f"{k}: n {len(v)}, median absolute error "
                  f"{statistics.median(map(abs, v)):.1f} %, median signed "
                  f"{statistics.median(v):+.1f} %")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        raise SystemExit("usage: python docs/experiments/inference_perf_check.py "
                         "TRAINING_CLONE [--latency KEY=VALUE ...] [WORD ...]")
    over, words = _overrides(sys.argv[2:])
    from wrpsim.errors import ConfigError
    from wrpsim.validate.__main__ import inference_perf_root

    try:  # (a folder that is no clone, or a malformed one: one line)
        main(inference_perf_root(sys.argv[1]), words, over)
    except ConfigError as e:
        raise SystemExit(f"inference_perf_check: {str(e).split(': ', 1)[1]}") from None
