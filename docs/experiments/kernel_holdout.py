"""Kernel tables on shapes they never saw (docs/validation.md, "Kernel tables on held-out
shapes"; `wrpsim/validate/kernels.py`): the measured tables shipped in
`pools/measured/<source>/kernels/<gpu>/<label>/`. The RTX PRO 6000's engine tables are merged
from its six LLMServingSim profiles (Llama-3.1-8B, Qwen3-32B and Qwen3-30B-A3B at TP 1 and 2),
so each of those is checked leave one profile out: timed by tables merged from the other five.
The developers' own H200 GEMM timings (`docs/experiments/device_gemm.py`) are timed by the
H200's engine tables.

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
from wrpsim.validate.kernels import (
    COLUMNS,
    engine_layouts,
    holdout_errors,
    leave_one_out,
    shipped_holdouts,
)


def main() -> None:
    rows = []
    for gpu, dirs in shipped_holdouts().items():
        k = kernels_for(get_engine("vllm-0.24"), gpu)
        loo = leave_one_out(k, dirs)
        rows += [{"gpu": gpu, "engine_tables": f"the other {r['held_out_of']} profiles", **r}
                 for r in loo]
        layouts = set(engine_layouts(k))
        for d in dirs:
            if json.loads((d / "meta.json").read_text())["source"] not in layouts:
                rows.append({"gpu": gpu, "engine_tables": k.label, **holdout_errors(k, d)})
    print("| gpu | held-out tables | timed by | " + " | ".join(COLUMNS) + " |")
    print("|---|---|---|" + "---|" * len(COLUMNS))
    for r in rows:
        cells = [f"{r[c]['abs_median']} ({r[c]['signed_median']:+}; {r[c]['n']})"
                 if r[c]["n"] else "–" for c in COLUMNS]
        by = r["engine_tables"] if r["engine_tables"].startswith("the other") else "engine"
        print(f"| {r['gpu']} | {r['tables']} | {by} | " + " | ".join(cells) + " |")
    Path(__file__).with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
