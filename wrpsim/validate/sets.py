"""The measured sets `wrpsim.validate` replays, each turned into simulation cases: what they
share (`Case`, the catalog names of the measurements' models and GPUs, vLLM's scheduler
defaults, `skipper`); each set in its own module (`wrpsim.validate.silicon`,
`wrpsim.validate.llmservingsim`, `wrpsim.validate.mlenergy`, `wrpsim.validate.inference_perf`).

A `Case` is one measured run: the fleet it ran on (one pool), the workload (a trace frame or a
workload config), the measured metrics, and whether it belongs to the calibration's *fit* split
(used to fit the engine constants) or its *test* split (never seen by any fit). Sets:

- ``silicon``: NVIDIA AIConfigurator's end-to-end vLLM benchmarks (`pools/measured/
  silicon_vllm.csv`, Apache-2.0): closed loop at concurrency `batch_size`, mean TTFT and mean
  TPOT. Rows whose model, GPU and parallelism the catalog covers (no attention data
  parallelism; experts either TP-sharded or spread over the TP group). The rows on the
  InferenceMAX grid (isl, osl in {1024, 8192}) replay InferenceMAX's client: lengths uniform in
  [0.8 x isl, isl] and [0.8 x osl, osl] (`--random-range-ratio 0.8`), 10 x concurrency
  requests, `--max-num-seqs` = concurrency, `--max-num-batched-tokens 8192`; the other rows use
  fixed lengths and the same request count. MiniMax-M2.5's and Kimi-K2.5's rows take their own
  script's flags at their measurement date (`silicon.MINIMAX_SCRIPTS`, `KIMI_SCRIPTS`).
- ``llmservingsim``: five runs from LLMServingSim (four vLLM 0.19, one 0.28;
  `pools/measured/llmservingsim/`, MIT), replayed request by request from their exact arrivals
  and lengths under the engine of their vLLM version (`llmservingsim.run_engine`): mean and
  median TTFT, TPOT and end-to-end latency.
- ``mlenergy``: ML.ENERGY benchmark v3 (vLLM 0.11.1, H100 / B200; the leaderboard has no licence,
  so it is read from `mlenergy_dir` when given and never shipped): closed loop at concurrency
  `max_num_seqs`, output lengths from the model's published distribution, median ITL and
  average power per GPU.
- ``inference_perf``: the constant-rate inference-perf runs of vLLM 0.15.1 on H100 that BLIS's
  latency model was fitted on (github.com/inference-sim/training; no licence, read from
  `inference_perf_dir` when given, never shipped): one case per stage, mean TTFT, time per
  output token and mean latency; all test cases.

Split: the fit split is ML.ENERGY's chat runs of Llama-3.1-8B, Llama-3.1-70B and Qwen3-30B-A3B
on H100 and B200 (the vllm-0.11 constants and the H100 / B200 power fits: dense and MoE, so the
power shape's "busy at all" term is told apart from its bandwidth term) and silicon's H100 rows
(Llama-3.1-70B FP8 and gpt-oss-120b: the vllm-0.24 constants) and B200 Llama-3.1-70B FP8 rows
(`eager_layer_us`); every other model, GPU, workload and the LLMServingSim runs are test cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from wrpsim.paths import catalog_dir
from wrpsim.pool.engines import VLLM_BATCH_BIG

#: Hugging Face model ids of the measurements -> catalog names, where the catalog entry's
#: `source` does not already say it (`catalog_model`)
MODELS = {
    "meta-llama/Llama-3.1-8B": "llama3.1-8b", "meta-llama/Llama-3.1-8B-Instruct": "llama3.1-8b",
    "nvidia/Llama-3.1-8B-Instruct-FP8": "llama3.1-8b",
    "meta-llama/Llama-3.1-70B": "llama3.1-70b", "meta-llama/Llama-3.1-70B-Instruct": "llama3.1-70b",
    "meta-llama/Llama-3.3-70B-Instruct": "llama3.3-70b",
    "meta-llama/Llama-3.1-405B-Instruct": "llama3.1-405b",
    "meta-llama/Llama-3.1-405B-Instruct-FP8": "llama3.1-405b",
    "Qwen/Qwen3-8B": "qwen3-8b", "Qwen/Qwen3-14B": "qwen3-14b", "Qwen/Qwen3-32B": "qwen3-32b",
    "Qwen/Qwen3-30B-A3B-Instruct-2507": "qwen3-30b-a3b",
    "Qwen/Qwen3-Coder-30B-A3B-Instruct": "qwen3-30b-a3b",
    "Qwen/Qwen3-235B-A22B-FP8": "qwen3-235b-a22b",
    "Qwen/Qwen3-235B-A22B-Instruct-2507": "qwen3-235b-a22b",
    "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8": "qwen3-235b-a22b",
    "Qwen/Qwen3-Coder-480B-A35B-Instruct": "qwen3-coder-480b-a35b",
    "Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8": "qwen3-coder-480b-a35b",
    "deepseek-ai/DeepSeek-V3.1": "deepseek-v3", "deepseek-ai/DeepSeek-R1-0528": "deepseek-r1",
    "moonshotai/Kimi-K2.5": "kimi-k2.5", "openai/gpt-oss-120b": "gpt-oss-120b",
    "openai/gpt-oss-20b": "gpt-oss-20b", "google/gemma-3-12b-it": "gemma-3-12b",
    "google/gemma-3-27b-it": "gemma-3-27b",
    "nvidia/NVIDIA-Nemotron-Nano-9B-v2": "nemotron-nano-9b-v2",
    "nvidia/NVIDIA-Nemotron-Nano-12B-v2": "nemotron-nano-12b-v2",
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct": "llama4-maverick",
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8": "llama4-maverick",
    "nvidia/MiniMax-M2.5-NVFP4": "minimax-m2.5",  # (NVIDIA's NVFP4 release of MiniMax's)
}
#: release suffixes of a Hugging Face id that leave the architecture as it is
_RELEASE_SUFFIXES = ("-FP8", "-Instruct", "-Thinking", "-2507", "-0528", "-it", "-hf",
                     "-Base", "-chat")


def _base_id(hf_id: str) -> str:
    """`hf_id` lower-cased without its release suffixes (`_RELEASE_SUFFIXES`, repeatedly)."""
    s = hf_id.strip().lower()
    cut = True
    while cut:
        cut = False
        for suffix in _RELEASE_SUFFIXES:
            if s.endswith(suffix.lower()):
                s, cut = s[: -len(suffix)], True
    return s


def catalog_model(hf_id: str) -> str | None:
    """The catalog model a measurement's Hugging Face id names: `MODELS`; else the catalog
    entry (the shipped one or a user's `models.yaml`) whose `source` id — the text before
    " config.json" — is that id (case aside; a user's entry before a shipped one); else the
    one whose source id equals it without release suffixes (`_RELEASE_SUFFIXES`:
    Qwen/Qwen3-14B-FP8 has Qwen/Qwen3-14B's shapes), when exactly one entry does. None
    otherwise. Stand-ins (`source: "stand-in: ..."`) are never matched."""
    if hf_id in MODELS:
        return MODELS[hf_id]
    from wrpsim.pool.catalog import models

    want = str(hf_id).strip().lower()
    if not want:
        return None
    exact, loose = [], []
    for name, spec in models().items():  # (a user's new entries come after the shipped ones)
        src = str(spec.source or "").split(" config.json", 1)[0].strip()
        if not src or " " in src:
            continue
        if src.lower() == want:
            exact.append(name)
        elif _base_id(src) == _base_id(want):
            loose.append(name)
    if exact:
        return exact[-1]
    return loose[0] if len(loose) == 1 else None


def is_vllm(row) -> bool:
    """Whether a row of AIConfigurator's silicon sample (its layout: a `backend` column of
    vllm, sglang or trtllm) was measured on vLLM; a file without the column is taken as
    vLLM's (the shipped ones hold its vLLM rows only)."""
    return str(getattr(row, "backend", "vllm")).strip().lower() == "vllm"


SYSTEMS = {"h100_sxm": "h100-80gb", "h200_sxm": "h200-141gb", "b200_sxm": "b200-180gb",
           "b300_sxm": "b300-288gb", "gb200": "gb200-186gb",
           "H100": "h100-80gb", "H200": "h200-141gb", "B200": "b200-180gb",
           "RTX4090": "rtx4090-24gb", "RTXPRO6000": "rtxpro6000-96gb"}
#: vLLM's scheduler defaults for online serving on GPUs with >= 70 GiB (V1 engine), and the
#: `--gpu-memory-utilization` default (0.9) of the versions the silicon and ML.ENERGY runs were
#: served with (0.11-0.18: before vllm-project/vllm#38284 made it 0.92)
BIG_GPU_SCHED = {"policy": "sarathi", **VLLM_BATCH_BIG, "block_size": 16, "gpu_mem_util": 0.9}
METRICS = ("ttft", "tpot", "itl", "e2e", "power")


@dataclass
class Case:
    """One measured run to replay (see module docstring). `measured` maps metric keys
    (`ttft_mean_s`, `tpot_p50_s`, `itl_p50_s`, `power_w`, ...) to measured values. `pools`
    (name -> pool config) replaces the one pool `pool` for a fleet of several (a
    disaggregated server: `wrpsim.validate.disagg`), `network` the run's network config
    (default: none)."""

    set: str
    name: str
    gpu: str
    model: str
    split: str
    pool: dict
    measured: dict
    workload: dict | None = None
    trace: pd.DataFrame | None = None
    count: int = 1
    router: str = "round-robin"
    notes: str = ""
    info: dict = field(default_factory=dict)
    pools: dict | None = None
    network: dict | None = None

    @property
    def pool_configs(self) -> dict:
        """Pool name -> pool config of the replay: `pools`, or the one pool named after the
        GPU."""
        return self.pools or {self.gpu: self.pool}


def measured_dir() -> Path:
    return catalog_dir("pools") / "measured"


def skipper(skipped: dict[str, int] | None):
    """A function that counts one left-out row under its reason in `skipped` (reason -> rows),
    or does nothing when `skipped` is None."""
    def skip(reason: str) -> None:
        if skipped is not None:
            skipped[reason] = skipped.get(reason, 0) + 1
    return skip
