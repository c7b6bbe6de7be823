"""Kernel tables on shapes they never saw (docs/validation.md, "Kernel tables on held-out
shapes"): each GPU's shipped GEMM and attention tables (engine vllm-0.24) against the measured
tables of other models and TP degrees on the same GPU shipped in
`pools/measured/<source>/kernels/<gpu>/<label>/` (`wrpsim/validate/kernels.py`): LLMServingSim's
RTX PRO 6000 profiles, and the developers' own H200 GEMM timings
(`docs/experiments/device_gemm.py`).

Run from the repository root: `python docs/experiments/kernel_holdout.py`. Prints one markdown
row per held-out table (median absolute error %, in brackets the median signed error, positive:
wrpsim slower than measured, and the number of rows) and writes kernel_holdout.json next to
this file. A few seconds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from wrpsim.pool.engines import get_engine, kernels_for
from wrpsim.validate.kernels import COLUMNS, holdout_errors, shipped_holdouts


def main() -> None:
    rows = []
    for gpu, dirs in shipped_holdouts().items():
        k = kernels_for(get_engine("vllm-0.24"), gpu)
        rows += [{"gpu": gpu, "engine_tables": k.label, **holdout_errors(k, d)} for d in dirs]
    print("| gpu | held-out tables | " + " | ".join(COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for r in rows:
        cells = [f"{r[c]['abs_median']} ({r[c]['signed_median']:+}; {r[c]['n']})"
                 if r[c]["n"] else "–" for c in COLUMNS]
        print(f"| {r['gpu']} | {r['tables']} | " + " | ".join(cells) + " |")
    Path(__file__).with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
