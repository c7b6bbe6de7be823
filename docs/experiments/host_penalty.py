"""The host CPU's time for vLLM 0.11.1's repetition-penalty tensors, timed with numpy as vLLM
builds them (no GPU needed; the figures are this machine's CPU, not a serving host's).

When any running request asks for a repetition / frequency / presence penalty (ML.ENERGY's
client sends `repetition_penalty: 1.1` with every request), vLLM 0.11.1's V1 engine builds two
int64 tensors on the CPU and copies them to the GPU for the penalty's token-count bins:

- the prompts (`InputBatch._make_prompt_token_ids_tensor`, whenever the batch changed): an
  array of m x the longest prompt in the batch, filled by one strided copy of the int32 token
  rows and padded per request with the vocabulary size;
- the outputs so far (`sampler.apply_penalties` -> `make_tensor_with_pad`, every step): `np.full`
  of m x the longest output, each request's Python list copied into its row, then a copy into
  pinned memory (`tensor.pin_memory()`).

`python docs/experiments/host_penalty.py` times each part at m in {256, 512, 1,024, 2,048}
with prompts drawn as wrpsim's ML.ENERGY replay draws LM-Arena's (lognormal, mean 600 tokens,
sigma 1.2, at most 16,000: `wrpsim.validate.mlenergy.MLENERGY_PROMPTS`) and outputs partway
through a lognormal of mean 500 (at most 4,096), best of 3, and prints per part the
milliseconds a step, the nanoseconds per padded element and the microseconds per sequence,
then the unit costs on fixed shapes: a padded output element (`full` + pinned copy), a prompt
element (the strided int32 -> int64 copy) and a listed output token (Python int -> row).
docs/validation.md ("Steps of more than 512 sequences") quotes them.
"""

from __future__ import annotations

import time

import numpy as np

VOCAB = 151_936
MAX_MODEL_LEN = 20_480


def _best(fn, *args, repeats: int = 3) -> float:
    """Seconds of the fastest of `repeats` calls of `fn(*args)`."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best


def padded_full(m: int, width: int) -> np.ndarray:
    """The pad-filled output array and its pinned copy, without the list rows."""
    return np.full((m, width), VOCAB, dtype=np.int64).copy()


def strided_copy(out: np.ndarray, tokens: np.ndarray) -> None:
    """The prompt rows' strided int32 -> int64 copy, without the per-request padding."""
    out[:] = tokens[:, :out.shape[1]]


def list_rows(target: np.ndarray, rows: list[list[int]]) -> None:
    """Each Python list copied into its row."""
    for i, row in enumerate(rows):
        target[i, :len(row)] = row


def prompt_tensor(tokens: np.ndarray, n_prompt: np.ndarray) -> np.ndarray:
    """vLLM's prompt tensor: m x the longest prompt, the rest of each row the pad value."""
    m, longest = len(n_prompt), int(n_prompt.max())
    out = np.empty((m, longest), dtype=np.int64)
    out[:] = tokens[:m, :longest]
    for i in range(m):
        out[i, n_prompt[i]:] = VOCAB
    return out


def output_tensor(outputs: list[list[int]]) -> np.ndarray:
    """vLLM's `make_tensor_with_pad` of the outputs so far, and its copy into pinned memory."""
    longest = max(map(len, outputs))
    padded = np.full((len(outputs), longest), VOCAB, dtype=np.int64)
    for i, row in enumerate(outputs):
        padded[i, :len(row)] = row
    return padded.copy()


def main() -> None:
    rng = np.random.default_rng(0)
    for m in (256, 512, 1024, 2048):
        tokens = rng.integers(0, VOCAB, size=(m, MAX_MODEL_LEN), dtype=np.int32)
        n_prompt = np.minimum(rng.lognormal(np.log(600) - 0.72, 1.2, m).astype(int) + 1, 16_000)
        total = np.minimum(rng.lognormal(np.log(500) - 0.5, 1.0, m), 4096)
        outputs = [[int(v) for v in rng.integers(0, VOCAB, size=int(n))]
                   for n in rng.uniform(0, 1, m) * total]
        tp = _best(prompt_tensor, tokens, n_prompt)
        to = _best(output_tensor, outputs)
        ep = m * int(n_prompt.max())
        eo = m * max(map(len, outputs))
        print(f"m={m:5d}  prompts {tp * 1e3:7.2f} ms ({ep / 1e6:5.1f} M elements, "
              f"{tp / ep * 1e9:4.2f} ns each, {tp / m * 1e6:6.2f} us a sequence)  outputs "
              f"{to * 1e3:7.2f} ms ({eo / 1e6:5.1f} M padded, {to / m * 1e6:6.2f} us a sequence)")
    for m, width in ((512, 4096), (2048, 4096), (2048, 16_000)):
        full = _best(padded_full, m, width)
        tokens = rng.integers(0, VOCAB, size=(m, MAX_MODEL_LEN), dtype=np.int32)
        strided = _best(strided_copy, np.empty((m, width), dtype=np.int64), tokens)
        print(f"m={m:5d} x {width:6d}: padded output element {full / (m * width) * 1e9:4.2f} ns, "
              f"prompt element {strided / (m * width) * 1e9:4.2f} ns")
    rows = [[int(v) for v in rng.integers(0, VOCAB, size=n)]
            for n in rng.integers(1, 2000, size=1024)]
    target = np.full((1024, 2000), VOCAB, dtype=np.int64)
    listed = _best(list_rows, target, rows, repeats=5)
    print(f"listed output token: {listed / sum(map(len, rows)) * 1e9:.1f} ns")


if __name__ == "__main__":
    main()
