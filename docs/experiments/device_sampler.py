"""How many passes over the logits vLLM's sampler makes, timed on a real GPU (the
`sampling_passes` engine constant, `wrpsim/pool/kernels/model.py`: an iteration's sampling
costs `sampling_passes` x m x vocab x 4 bytes at the GPU's streaming bandwidth).

vLLM's V1 sampler runs plain PyTorch ops on the LM head's logits (m sequences x vocab, BF16)
when no top-k / top-p / penalties are asked for (`vllm/v1/sample/sampler.py`,
`ops/topk_topp_sampler.py`, `forward_native`):

- greedy (temperature 0): `logits.to(float32)`, then `argmax(-1)`;
- random (temperature > 0): `logits.to(float32)`, `div_(temperature)`, `softmax(-1)`,
  `q = empty_like(probs).exponential_()`, `probs.div_(q).argmax(-1)` (the Gumbel-style draw);
- topp: random after the PyTorch-native top-p filter (a sort of every row of logits), what a
  request with top_p < 1 costs when FlashInfer's sampler is not used.

1. `python3 docs/experiments/device_sampler.py measure OUT_DIR` (on the GPU; needs only
   PyTorch): times the three paths at m in {1, 8, 64, 256, 1024} and vocab in {128,256 (Llama 3),
   151,936 (Qwen), 262,144 (Gemma 3)}, each in one CUDA graph replayed (median of 20), writes
   `OUT_DIR/device_sampler.csv` (path, m, vocab, ms) and `device.json`.
2. `python docs/experiments/device_sampler.py passes CSV GPU` (here): passes = measured time x
   the GPU's streaming bandwidth (`Kernels.stream_bw`, from its measured decode attention) /
   (m x vocab x 4 bytes), per row, and per path the fit of the model's form, time = floor +
   passes x m x vocab x 4 B / bandwidth (least squares on relative error over all rows), with
   each row's error: the engines' `sampling_floor_us` and `sampling_passes` are the random
   path's (vLLM's default sampling: temperature 1 unless the request or the model's
   generation config says otherwise).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

MS = [1, 8, 64, 256, 1024]
VOCABS = [128256, 151936, 262144]


def measure(out_dir: str) -> None:
    """Time the greedy and random sampler paths (module docstring) on the GPU."""
    import torch
    from gputime import graph_ms  # this folder (the script's own)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device("cuda")
    torch.manual_seed(0)
    (out / "device.json").write_text(json.dumps({
        "device": torch.cuda.get_device_name(0), "torch": torch.__version__,
        "cuda": torch.version.cuda}) + "\n")

    def greedy(logits, temp):
        return logits.to(torch.float32).argmax(dim=-1)

    def random(logits, temp):
        x = logits.to(torch.float32)
        x.div_(temp)
        probs = x.softmax(dim=-1, dtype=torch.float32)
        q = torch.empty_like(probs).exponential_()
        return probs.div_(q).argmax(dim=-1)

    top_p = torch.full((max(MS),), 0.9, dtype=torch.float32, device=dev)

    def topp(logits, temp):
        """`random` after vLLM's PyTorch-native top-p filter (`apply_top_k_top_p`: sort the
        logits, softmax, cumulative sum, mask, scatter back), what runs when a request sets
        top_p and FlashInfer's sampler is not used."""
        x = logits.to(torch.float32)
        x.div_(temp)
        srt, idx = x.sort(dim=-1, descending=False)
        cum = srt.softmax(dim=-1).cumsum(dim=-1)
        mask = cum <= 1 - top_p[: x.shape[0]].unsqueeze(dim=1)
        mask[:, -1] = False
        srt.masked_fill_(mask, -float("inf"))
        x = x.scatter(dim=-1, index=idx, src=srt)
        probs = x.softmax(dim=-1, dtype=torch.float32)
        q = torch.empty_like(probs).exponential_()
        return probs.div_(q).argmax(dim=-1)

    with (out / "device_sampler.csv").open("w") as csv:
        csv.write("path,m,vocab,ms\n")
        for vocab in VOCABS:
            for m in MS:
                logits = torch.randn(m, vocab, dtype=torch.bfloat16, device=dev)
                temp = torch.full((m, 1), 0.7, dtype=torch.float32, device=dev)
                for name, fn in (("greedy", greedy), ("random", random), ("topp", topp)):
                    ms = graph_ms(lambda fn=fn, x=logits, t=temp: fn(x, t), 20, warmup=3)
                    csv.write(f"{name},{m},{vocab},{ms:.6f}\n")
                del logits, temp
                torch.cuda.empty_cache()
    print(f"-> {out / 'device_sampler.csv'}")


def passes(csv: str, gpu: str) -> dict:
    """Passes per row and the median per path over m >= 64 (module docstring); prints a
    markdown table and returns {path: median passes}."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from wrpsim.pool.engines import get_engine, kernels_for

    bw = kernels_for(get_engine("vllm-0.24"), gpu).stream_bw()
    rows = [line.split(",") for line in Path(csv).read_text().splitlines()[1:] if line]
    print(f"streaming bandwidth of {gpu}: {bw / 1e12:.2f} TB/s\n")
    import numpy as np

    fits = {}
    for path in sorted({r[0] for r in rows}):
        x = np.array([int(m) * int(v) * 4.0 / bw for p, m, v, _ in rows if p == path])
        t = np.array([float(ms) * 1e-3 for p, *_, ms in rows if p == path])
        a = np.vstack([np.ones_like(x), x]).T / t[:, None]
        floor, k = np.linalg.lstsq(a, np.ones_like(t), rcond=None)[0]
        fits[path] = (float(floor), float(k), (floor + k * x - t) / t * 100.0)
    print("| path | m | vocab | measured ms | bytes-only passes | floor + passes model, error % |")
    print("|---|---|---|---|---|---|")
    seen: dict[str, int] = {}
    for path, m, vocab, ms in rows:
        i = seen[path] = seen.get(path, -1) + 1
        p = float(ms) * 1e-3 * bw / (int(m) * int(vocab) * 4.0)
        print(f"| {path} | {m} | {int(vocab):,} | {float(ms):.4f} | {p:.2f} | "
              f"{fits[path][2][i]:+.1f} |")
    out = {}
    for path, (floor, k, err) in fits.items():
        out[path] = {"floor_us": round(floor * 1e6, 1), "passes": round(k, 2),
                     "max_abs_error_pct": round(float(np.max(np.abs(err))), 1)}
    print(f"\n{json.dumps(out)}")
    return out


if __name__ == "__main__":
    verb = sys.argv[1] if len(sys.argv) > 1 else ""
    if verb == "measure" and len(sys.argv) == 3:
        measure(sys.argv[2])
    elif verb == "passes" and len(sys.argv) == 4:
        passes(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: device_sampler.py measure OUT_DIR | passes CSV GPU")
