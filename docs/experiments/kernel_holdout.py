"""Kernel tables on shapes they never saw (docs/validation.md, "Kernel tables on held-out
shapes"; `wrpsim/validate/kernels.py`): the measured tables shipped in
`pools/measured/<source>/kernels/<gpu>/<label>/`. The RTX PRO 6000's six LLMServingSim profiles
(Llama-3.1-8B, Qwen3-32B and Qwen3-30B-A3B at TP 1 and 2; vLLM 0.19, on the machine of its
serving runs) are timed by the GPU's engine tables under vllm-0.19 and vllm-0.24
(AIConfigurator's, another machine: two sources of one GPU's kernels) and leave one profile
out (each by tables merged from the other five). The developers' own H200 GEMM timings
(`docs/experiments/device_gemm.py`) are timed by the H200's engine tables.

Run from the repository root: `python docs/experiments/kernel_holdout.py`. Prints one markdown
row per held-out table and tables (median absolute error %, in brackets the median signed
error, positive: wrpsim slower than measured, and the number of rows) and writes
kernel_holdout.json next to this file. A few seconds.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from wrpsim.pool.catalog import get_gpu
from wrpsim.pool.engines import get_engine, kernels_for
from wrpsim.validate.kernels import (
    COLUMNS,
    holdout_errors,
    leave_one_out,
    merged_profiles,
    shipped_holdouts,
)


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for gpu, dirs in shipped_holdouts().items():
            engines = ("vllm-0.19", "vllm-0.24") if gpu == "rtxpro6000-96gb" else ("vllm-0.24",)
            for engine in engines:
                k = kernels_for(get_engine(engine), gpu)
                rows += [{"gpu": gpu, "engine_tables": f"{engine}: {k.label}",
                          **holdout_errors(k, d)} for d in dirs]
            if len(dirs) > 1 and gpu == "rtxpro6000-96gb":
                merged = merged_profiles(dirs, get_gpu(gpu), Path(tmp) / gpu)
                rows += [{"gpu": gpu, "engine_tables": f"the other {r['held_out_of']} profiles",
                          **r} for r in leave_one_out(merged, dirs)]
    print("| gpu | held-out tables | timed by | " + " | ".join(COLUMNS) + " |")
    print("|---|---|---|" + "---|" * len(COLUMNS))
    for r in rows:
        cells = [f"{r[c]['abs_median']} ({r[c]['signed_median']:+}; {r[c]['n']})"
                 if r[c]["n"] else "–" for c in COLUMNS]
        by = r["engine_tables"].split(":")[0]
        print(f"| {r['gpu']} | {r['tables']} | {by} | " + " | ".join(cells) + " |")
    Path(__file__).with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
