"""wrpsim against a model nothing was fitted on: MiniMax-M2.5 under vLLM, from AIConfigurator's
newer silicon sample (docs/validation.md, "A model added after the fit: MiniMax-M2.5").

`minimax_check.csv` holds the 523 MiniMax-M2.5 vLLM rows of NVIDIA AIConfigurator's
`systems/silicon_sample.csv` at ai-dynamo/aiconfigurator @ 095f58a5 (Apache-2.0; the commit
whose kernel tables wrpsim ships; the repository's `pools/measured/silicon_vllm.csv` is an
older sample without them): InferenceMAX closed loops (`vllm bench serve`-style client,
10 x concurrency requests, lengths uniform in [0.8 L, L]) on H100, H200, B200 and B300,
measured 2026-03-01 to 04-22 with vLLM 0.16-0.19 and nightly images; a configuration measured
more than once keeps its first row, as the silicon set does. They are replayed as the silicon set
replays its rows (`wrpsim.validate.sets.silicon_cases`, the same rows left out: concurrency
above 128, attention data parallelism) under the default engine, vllm-0.24, with each row's
server settings from InferenceMAX's script at its measurement date (SemiAnalysisAI/InferenceX
`benchmarks/single_node/minimaxm2.5_{fp8,fp4}_{h100,h200,b200,b300}.sh`, history read from
git; `SCRIPTS` below) and the checkpoint's block-FP8 weights (`precision: fp8_block`; for the
`fp4` rows NVIDIA's NVFP4 release, which keeps attention in BF16: `fp4_attn_bf16`, as
`silicon_cases` maps them). Not modelled: the H100
script's PIECEWISE CUDA graphs (attention launched outside the graph in every step; wrpsim
times decode steps as whole graphs) — those rows are printed but flagged.

    python docs/experiments/minimax_check.py

Prints per GPU, precision and TP the rows, the median signed and absolute TTFT and TPOT
errors, then the overall medians; about 6 s on 2 cores. A row older than its script's first
version here (another script ran it) is left out and counted.
"""

from __future__ import annotations

import re
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

CSV = Path(__file__).with_suffix(".csv")

#: (system, precision) -> [(first date, pool settings)], the script's `vllm serve` flags from
#: that date on (InferenceX git history). Defaults where a script sets nothing: vLLM's batch
#: defaults for the GPU (8,192 tokens, 1,024 sequences), BF16 KV, FULL_AND_PIECEWISE graphs up
#: to min(2 x max_num_seqs, 512) tokens, gpu_memory_utilization 0.9
_NEW_BLACKWELL = {"block_size": None, "kv_dtype": "fp8", "capture": 2048, "budget": "2isl",
                  "mem": 0.90}
SCRIPTS = {
    # defaults, --gpu-memory-utilization 0.95 (a36346339 ... 0f78cf4eb, 2026-03-01 .. 03-27)
    ("h200_sxm", "fp8"): [("2026-03-01", {"mem": 0.95})],
    # --max-num-seqs 256, PIECEWISE graphs, 0.90 (ac0d2a853 .. 0f78cf4eb)
    ("h100_sxm", "fp8"): [("2026-03-02", {"max_seqs": 256, "piecewise": True})],
    # --block-size 32, 0.95, Triton MoE (f342df18e); from bddbf4031 (04-03) FP8 KV, capture
    # 2,048 tokens, --max-num-batched-tokens 2 x ISL, 0.90
    ("b200_sxm", "fp8"): [("2026-03-11", {"block_size": 32, "mem": 0.95}),
                          ("2026-04-03", {**_NEW_BLACKWELL, "block_size": 32})],
    ("b200_sxm", "fp4"): [("2026-04-08", _NEW_BLACKWELL)],  # 79bd988e9
    ("b300_sxm", "fp8"): [("2026-04-17", {**_NEW_BLACKWELL, "block_size": 32})],  # 340d7854c
    ("b300_sxm", "fp4"): [("2026-04-17", _NEW_BLACKWELL)],  # 22d0f12f7
}


def _measured(source: str) -> str:
    m = re.search(r"measured=(\d{4}-\d{2}-\d{2})", source)
    return m.group(1) if m else ""


def script_settings(system: str, precision: str, date: str) -> dict | None:
    """The settings of the script version in force at `date` (the latest one on or before
    it); None for a row older than the script's first version (another script ran it)."""
    chosen = None
    for since, s in SCRIPTS[(system, precision)]:
        if date >= since:
            chosen = s
    return chosen


def cases() -> tuple[list, int]:
    """The replayable rows as `Case`s with their scripts' settings applied, and the count of
    rows left out for predating their script."""
    import pandas as pd

    from wrpsim.validate.sets import SILICON_KEYS, silicon_cases

    rows = pd.read_csv(CSV).drop_duplicates(list(SILICON_KEYS))  # (the rows silicon_cases keeps)
    dates = {}
    for r in rows.itertuples(index=False):
        date = _measured(str(r.silicon_data_source))
        if not date:
            raise SystemExit(f"{CSV}: a row without a measurement date: {r.id}")
        dates[(r.system, r.precision, int(r.tp_size), int(r.moe_ep_size), int(r.isl),
               int(r.osl), int(r.batch_size))] = date
    out, early = [], 0
    for c in silicon_cases(path=CSV):
        _, system, prec, tp, ep, isl, osl, conc = c.name.split(" ")
        prec = "fp4" if prec.startswith("fp4") else prec  # (the row's: fp4_attn_bf16 is NVFP4)
        key = (system, prec, int(tp[2:]), int(ep[2:]), int(isl[3:]), int(osl[3:]),
               int(conc[1:]))
        s = script_settings(system, prec, dates[key])
        if s is None:
            early += 1
            continue
        pool = c.pool
        if pool["precision"] == "fp8":
            pool["precision"] = "fp8_block"  # (the checkpoint's 128 x 128 block FP8)
        pool["kv_dtype"] = s.get("kv_dtype", "fp8" if prec == "fp4" else "auto")
        sched = dict(pool["scheduler"])
        sched["max_seqs"] = s.get("max_seqs", 1024)
        budget = s.get("budget")
        sched["token_budget"] = 2 * int(isl[3:]) if budget == "2isl" else 8192
        if s.get("block_size"):
            sched["block_size"] = s["block_size"]
        sched["gpu_mem_util"] = s.get("mem", 0.90)
        pool["scheduler"] = sched
        pool["latency"] = {"kind": "engine", "cudagraph_max_tokens": s.get(
            "capture", min(2 * sched["max_seqs"], 512))}
        c.info["piecewise"] = bool(s.get("piecewise"))
        out.append(c)
    return out, early


def _run(case):
    from wrpsim.validate.replay import simulate

    sim = simulate(case)
    return {k: sim[k] / v - 1.0 for k, v in case.measured.items() if k in sim}


def main() -> int:
    todo, early = cases()
    with ProcessPoolExecutor(2) as ex:
        errs = list(ex.map(_run, todo))
    groups: dict = {}
    for c, e in zip(todo, errs):
        tp, ep = c.name.split(" ")[3:5]
        prec = c.pool["precision"]
        groups.setdefault((c.gpu, prec, tp, ep, c.info["piecewise"]), []).append(e)
    print("| GPU | precision | TP | EP | rows | TTFT signed / abs % | TPOT signed / abs % |")
    print("|---|---|---|---|---|---|---|")
    def med(es, k, f=lambda x: x):
        v = [f(e[k]) * 100 for e in es if k in e]
        return statistics.median(v) if v else float("nan")

    for (gpu, prec, tp, ep, pw), es in sorted(groups.items()):
        print(f"| {gpu}{' (PIECEWISE graphs)' if pw else ''} | {prec} | {tp[2:]} | {ep[2:]} | "
              f"{len(es)} | {med(es, 'ttft_mean_s'):+.0f} / {med(es, 'ttft_mean_s', abs):.0f} | "
              f"{med(es, 'tpot_mean_s'):+.0f} / {med(es, 'tpot_mean_s', abs):.0f} |")
    print(f"{len(todo)} rows replayed; {early} left out, measured before their script's first "
          f"version (another script ran them)")
    for k in ("ttft_mean_s", "tpot_mean_s"):
        v = [e[k] * 100 for c, e in zip(todo, errs) if k in e and not c.info["piecewise"]]
        print(f"{k.split('_')[0]}: n {len(v)} (PIECEWISE rows left out), median absolute error "
              f"{statistics.median(abs(x) for x in v):.1f} %, median signed "
              f"{statistics.median(v):+.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
