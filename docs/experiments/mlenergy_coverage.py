"""Does every configuration ML.ENERGY publishes replay, including those with no measurement here?

ML.ENERGY's benchmark configs (`benchmark_configs/<task>/<model>/<GPU>/`: `num_gpus.txt`,
`monolithic.config.yaml`, `sweeps.yaml`) name more models and GPUs than its measurements in
`llm_configs.csv` (Qwen3-14B / 32B, the Thinking releases, gpt-oss-20b, Gemma-3-27B, Llama 4
Scout, H200 runs). This script writes, for each configuration, the `llm_configs.csv` row the
leaderboard would hold for its smallest and largest `max_num_seqs` (measured values are
placeholders; weight precision from the model's `model_info.json`), turns them into cases with
`wrpsim.validate.mlenergy.mlenergy_cases` exactly as `python -m wrpsim.validate` would, simulates
them and prints one line each: the simulated median ITL and power per GPU, or the one-line
error. It checks that the replay covers the leaderboard's configurations, not how close it is
(there is nothing measured to compare).

    python docs/experiments/mlenergy_coverage.py [MLENERGY_DIR] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import yaml

DEFAULT = Path(__file__).resolve().parents[2].parent / "shared/data/measured/mlenergy"


def synthetic_rows(root: Path) -> pd.DataFrame:
    """One llm_configs.csv row per (task, model, GPU, GPU count, smallest / largest
    max_num_seqs swept on that GPU count) configuration that `benchmark_configs` publishes;
    output length from the
    measured rows of the same task (median) where the model has none."""
    measured = pd.read_csv(root / "llm_configs.csv")
    out_len = measured.groupby("task")["avg_output_len"].median().to_dict()
    rows = []
    for d in sorted((root / "benchmark_configs").glob("*/*/*/*")):
        if not (d / "num_gpus.txt").is_file():
            continue
        task, model_id, gpu = d.parts[-4], "/".join(d.parts[-3:-1]), d.parts[-1]
        cfg = yaml.safe_load((d / "monolithic.config.yaml").read_text()) or {}
        sweep = (yaml.safe_load((d / "sweeps.yaml").read_text()) or {}).get("sweep") or []
        own = measured[(measured.model_id == model_id) & (measured.task == task)]
        length = float(own.avg_output_len.median()) if len(own) else out_len.get(task, 500)
        info = d.parent / "model_info.json"
        prec = (json.loads(info.read_text()).get("weight_precision", "bfloat16")
                if info.is_file() else "bfloat16")
        for n_gpu in (int(x) for x in (d / "num_gpus.txt").read_text().split()):
            # a sweep entry with `num_gpus` runs on those GPU counts only, one without on each
            # count of num_gpus.txt
            seqs = sorted({m for e in sweep if n_gpu in (e.get("num_gpus") or [n_gpu])
                           for m in e.get("max_num_seqs") or []})
            dp = int(cfg.get("data-parallel-size", 1))
            ep = n_gpu if cfg.get("enable-expert-parallel") else 1
            tp = 1 if dp > 1 else n_gpu
            for mns in sorted({seqs[0], seqs[-1]}) if seqs else []:
                rows.append({
                    "model_id": model_id, "task": task, "gpu_model": gpu, "num_gpus": n_gpu,
                    "weight_precision": prec, "max_num_seqs": mns,
                    "par_tensor_parallel": tp, "par_expert_parallel": ep,
                    "par_data_parallel": dp, "avg_output_len": length,
                    # placeholders (validate replays rows with a measurement; none compared)
                    "avg_batch_size": float("nan"), "median_itl_ms": 1.0,
                    "avg_power_watts": 1.0})
    return pd.DataFrame(rows)


def simulate(case) -> str:
    from wrpsim.validate.replay import simulate as sim

    try:
        s = sim(case)
        return f"| {case.name} | {s['itl_p50_s'] * 1e3:.1f} ms | {s['power_w']:.0f} W |"
    except Exception as e:  # reported, not raised: the point is to list them
        return f"| {case.name} | ERROR: {type(e).__name__}: {str(e).splitlines()[0][:160]} |"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", default=str(DEFAULT))
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    root = Path(a.root).resolve()  # (the temporary folder links to it)
    if not (root / "benchmark_configs").is_dir():
        print(f"mlenergy_coverage: {root} has no benchmark_configs/", file=sys.stderr)
        return 2
    from wrpsim.validate.mlenergy import mlenergy_cases

    rows = synthetic_rows(root)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        rows.to_csv(t / "llm_configs.csv", index=False)
        (t / "benchmark_configs").symlink_to(root / "benchmark_configs")
        (t / "models").symlink_to(root / "models")
        skipped: dict[str, int] = {}
        cases = mlenergy_cases(t, skipped)
    print(f"{len(rows)} configurations, {len(cases)} replayable")
    for why, n in skipped.items():
        print(f"left out: {n} x {why}")
    print("| case | ITL p50 | power / GPU |\n|---|---|---|")
    with ProcessPoolExecutor(a.jobs) as ex:
        for line in ex.map(simulate, cases, chunksize=2):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
