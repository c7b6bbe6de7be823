"""wrpsim against a model nothing was fitted on: MiniMax-M2.5 under vLLM, from AIConfigurator's
silicon sample (docs/validation.md, "A model added after the fit: MiniMax-M2.5").

The silicon set (`pools/measured/silicon_vllm.csv`, the vLLM rows of NVIDIA AIConfigurator's
`systems/silicon_sample.csv` at ai-dynamo/aiconfigurator @ 095f58a5, Apache-2.0) holds 523
MiniMax-M2.5 rows: InferenceMAX closed loops on H100, H200, B200 and B300 measured 2026-03-01 to
04-22 with vLLM 0.16-0.19 and nightly images. `python -m wrpsim.validate` replays them with the
rest (`wrpsim.validate.silicon`: each row with its InferenceMAX script's `vllm serve` flags at its
measurement date, `MINIMAX_SCRIPTS`; the maker's block-FP8 weights; NVIDIA's NVFP4 release
with its attention in BF16, `fp4_attn_bf16`; the H100 script's PIECEWISE CUDA graphs, which
wrpsim does not model, left out). This script prints that model's rows alone, per GPU,
precision, TP and EP as replayed (the scripts' own, not always the rows' labels):

    python docs/experiments/minimax_check.py

the rows, the median signed and absolute TTFT and TPOT errors, then the overall medians;
about 6 s on 2 cores.
"""

from __future__ import annotations

import statistics
import sys
from concurrent.futures import ProcessPoolExecutor


def cases() -> list:
    """The silicon set's MiniMax-M2.5 cases, as `python -m wrpsim.validate` replays them."""
    from wrpsim.validate.silicon import silicon_cases

    return [c for c in silicon_cases() if c.model == "minimax-m2.5"]


def _run(case):
    from wrpsim.validate.replay import simulate

    sim = simulate(case)
    return {k: sim[k] / v - 1.0 for k, v in case.measured.items() if k in sim}


def main() -> int:
    todo = cases()
    with ProcessPoolExecutor(2) as ex:
        errs = list(ex.map(_run, todo))
    groups: dict = {}
    for c, e in zip(todo, errs):
        # (as replayed: the scripts' TP and EP, which for some rows differ from the labels in
        # the case names, `wrpsim.validate.silicon.MINIMAX_SCRIPTS`)
        tp, ep = f"tp{c.pool['tp']}", f"ep{c.pool['ep']}"
        prec = c.pool["precision"]
        groups.setdefault((c.gpu, prec, tp, ep), []).append(e)
    print("| GPU | precision | TP | EP | rows | TTFT signed / abs % | TPOT signed / abs % |")
    print("|---|---|---|---|---|---|---|")
    def med(es, k, f=lambda x: x):
        v = [f(e[k]) * 100 for e in es if k in e]
        return statistics.median(v) if v else float("nan")

    for (gpu, prec, tp, ep), es in sorted(groups.items()):
        print(f"| {gpu} | {prec} | {tp[2:]} | {ep[2:]} | "
              f"{len(es)} | {med(es, 'ttft_mean_s'):+.0f} / {med(es, 'ttft_mean_s', abs):.0f} | "
              f"{med(es, 'tpot_mean_s'):+.0f} / {med(es, 'tpot_mean_s', abs):.0f} |")
    for k in ("ttft_mean_s", "tpot_mean_s"):
        v = [e[k] * 100 for e in errs if k in e]
        print(f"{k.split('_')[0]}: n {len(v)}, median absolute error "
              f"{statistics.median(abs(x) for x in v):.1f} %, median signed "
              f"{statistics.median(v):+.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
