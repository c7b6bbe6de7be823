"""Watts of one GPU at known compute and memory utilisation (docs/validation.md, "H200 power,
measured"): the power model's inputs, u_compute and u_memory, set by kernels whose FLOPs and
bytes are known, and the GPU's energy counter read over each.

`python3 docs/experiments/device_power.py measure OUT_DIR` (on the GPU; PyTorch and NVML, the
`nvidia-ml-py` package) and `... steps OUT_DIR` (whole Llama-3.1-8B forward steps, see
`measure_steps`; `compare-steps CSV` here): for each workload, a CUDA graph replayed back to
back for `SECONDS`, the GPU's total-energy counter (NVML, millijoules) read over the last
`WINDOW` seconds; the kernel time from CUDA events over the same replays. Workloads:

- idle (nothing launched, the GPU at its idle clocks);
- BF16 GEMMs `torch.nn.functional.linear`, weight 8,192 x 8,192, six layers with their own
  weights (768 MiB, far past the 60 MB L2, so every layer reads its weight from HBM), at
  m = 1 … 16,384 tokens: from bandwidth-bound to compute-bound;
- FP8 GEMM (`torch._scaled_mm`, per-tensor scales) at m = 8,192: compute-bound at the FP8 rate;
- a device-to-device copy of 2 GiB: bandwidth only.

Writes `OUT_DIR/device_power.csv`: workload, m, n, k, flops (per replay), bytes (per replay),
replay_s (kernel time per replay), watts (energy / time), watts_samples (mean of instantaneous
readings), sm_mhz and temp_c at the end. `python docs/experiments/device_power.py compare CSV`
(here) prints, per row, the utilisations and the measured and modelled watts as a markdown
table (`| workload | m | u_compute | u_memory | measured W | model W | error % |`);
`... sustained CSV` prints the GPU catalog's `bf16_sustained_tflops` / `fp8_sustained_tflops`
from its GEMM rows (pools/README.md: measured once per GPU, they bound every GEMM's time).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from gputime import graph_of  # this folder (the script's own)

SECONDS = 6.0
WINDOW = 3.5
N = K = 8192
MS = [1, 16, 64, 256, 1024, 4096, 16384]
GPU = "h200-141gb"


def measure(out_dir: str) -> None:
    import pynvml
    import torch

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pynvml.nvmlInit()
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    dev = torch.device("cuda")
    rows = ["workload,m,n,k,flops,bytes,replay_s,watts,watts_samples,sm_mhz,temp_c"]

    def window(fn):
        """Run fn() back to back for SECONDS; energy and samples over the last WINDOW s."""
        t0 = time.time()
        e0 = t_e0 = None
        samples, reps = [], 0
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        while True:
            now = time.time() - t0
            if e0 is None and now >= SECONDS - WINDOW:
                torch.cuda.synchronize()
                e0, t_e0 = pynvml.nvmlDeviceGetTotalEnergyConsumption(h), time.time()
                a.record()
                reps = 0
            if now >= SECONDS:
                break
            if fn is None:
                time.sleep(0.02)
            else:
                for _ in range(8):
                    fn()
                reps += 8
            if e0 is not None:
                samples.append(pynvml.nvmlDeviceGetPowerUsage(h) / 1e3)
        b.record()
        torch.cuda.synchronize()
        e1, t_e1 = pynvml.nvmlDeviceGetTotalEnergyConsumption(h), time.time()
        watts = (e1 - e0) / 1e3 / (t_e1 - t_e0)
        rep_s = a.elapsed_time(b) / 1e3 / reps if reps else 0.0
        clk = pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM)
        temp = pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU)
        return rep_s, watts, sum(samples) / max(1, len(samples)), clk, temp

    time.sleep(4.0)  # let the clocks settle after start-up
    r = window(None)
    rows.append(f"idle,0,0,0,0,0,0,{r[1]:.2f},{r[2]:.2f},{r[3]},{r[4]}")
    print(rows[-1], flush=True)
    ws = [torch.randn(N, K, dtype=torch.bfloat16, device=dev) * 0.02 for _ in range(6)]
    for m in MS:
        x = torch.randn(m, K, dtype=torch.bfloat16, device=dev)

        def body(x=x, ws=ws):
            for w in ws:
                torch.nn.functional.linear(x, w)
        g = graph_of(body)
        r = window(g.replay)
        flops, nbytes = 6 * 2.0 * m * N * K, 6 * 2.0 * (N * K + m * K + m * N)
        rows.append(f"gemm_bf16,{m},{N},{K},{flops:.6g},{nbytes:.6g},{r[0]:.6e},{r[1]:.2f},"
                    f"{r[2]:.2f},{r[3]},{r[4]}")
        print(rows[-1], flush=True)
        del g, x
    m = 8192
    w8 = [w.to(torch.float8_e4m3fn) for w in ws]
    x8 = torch.randn(m, K, device=dev).to(torch.float8_e4m3fn)
    one = torch.ones((), device=dev)

    def body8(x8=x8, w8=w8, one=one):
        for w in w8:
            torch._scaled_mm(x8, w.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
    g = graph_of(body8)
    r = window(g.replay)
    flops, nbytes = 6 * 2.0 * m * N * K, 6 * (N * K + m * K + 2.0 * m * N)
    rows.append(f"gemm_fp8,{m},{N},{K},{flops:.6g},{nbytes:.6g},{r[0]:.6e},{r[1]:.2f},"
                f"{r[2]:.2f},{r[3]},{r[4]}")
    print(rows[-1], flush=True)
    del g, w8, x8, ws
    src = torch.empty(2**30, dtype=torch.int16, device=dev)
    dst = torch.empty_like(src)
    g = graph_of(lambda: dst.copy_(src))
    r = window(g.replay)
    rows.append(f"copy,0,0,0,0,{2.0 * 2**31:.6g},{r[0]:.6e},{r[1]:.2f},{r[2]:.2f},{r[3]},{r[4]}")
    print(rows[-1], flush=True)
    (out / "device_power.csv").write_text("\n".join(rows) + "\n")
    (out / "device_power.json").write_text(json.dumps({
        "device": torch.cuda.get_device_name(0), "torch": torch.__version__,
        "power_limit_w": pynvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1e3,
        "seconds": SECONDS, "window": WINDOW}) + "\n")


#: Llama-3.1-8B (config.json): hidden, heads, KV heads, head dim, MLP width, layers, vocab
L8B = (4096, 32, 8, 128, 14336, 32, 128256)
#: (decode sequences, context per sequence, prompt tokens) of the measured steps
STEPS = [(1, 1024, 0), (8, 1024, 0), (32, 1024, 0), (128, 1024, 0), (256, 1024, 0),
         (0, 0, 2048), (0, 0, 8192)]


def measure_steps(out_dir: str) -> None:
    """Watts of whole Llama-3.1-8B forward steps (random weights of the real shapes, 32 layers
    with their own weights, RMSNorm, QKV / O / gate-up / down projections, SiLU, attention
    through PyTorch's scaled_dot_product_attention — decode: each KV head's query heads as its
    query rows, so the cache is read once — over a KV cache, LM head) at the batch and
    context of `STEPS`, each captured in one CUDA graph and replayed back to back; writes
    `OUT_DIR/device_power_steps.csv` (seqs, ctx, prompt, step_s, watts, sm_mhz, temp_c)."""
    import pynvml
    import torch
    import torch.nn.functional as F

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pynvml.nvmlInit()
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    dev, bf = torch.device("cuda"), torch.bfloat16
    hid, nh, nkv, hd, inter, layers, vocab = L8B
    torch.manual_seed(0)

    def w(*shape):
        return torch.randn(*shape, dtype=bf, device=dev) * 0.02
    lay = [(w(hid), w((nh + 2 * nkv) * hd, hid), w(hid, nh * hd), w(hid), w(2 * inter, hid),
            w(hid, inter)) for _ in range(layers)]
    head, norm = w(vocab, hid), w(hid)

    def rms(x, g):
        return x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-5).to(bf) * g

    rows = ["seqs,ctx,prompt,step_s,watts,sm_mhz,temp_c"]
    for seqs, ctx, prompt in STEPS:
        b, q_len = (seqs, 1) if seqs else (1, prompt)
        kv = [(w(b, nkv, ctx, hd), w(b, nkv, ctx, hd)) for _ in range(layers)] if seqs else None
        x0 = w(b * q_len, hid)

        def step(x0=x0, kv=kv, b=b, q_len=q_len):
            x = x0
            for i, (g1, wqkv, wo, g2, wgu, wd) in enumerate(lay):
                qkv = F.linear(rms(x, g1), wqkv).view(b, q_len, nh + 2 * nkv, hd)
                q = qkv[:, :, :nh].transpose(1, 2)
                if kv is None:  # prefill: attend over the prompt itself, causal
                    k = qkv[:, :, nh:nh + nkv].transpose(1, 2)
                    v = qkv[:, :, nh + nkv:].transpose(1, 2)
                    a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
                    a = a.transpose(1, 2).reshape(b * q_len, nh * hd)
                else:  # decode: a KV head's query heads as its query rows, as decode kernels
                    # do (each KV head read once, not expanded to every query head)
                    qg = qkv[:, 0, :nh].reshape(b, nkv, nh // nkv, hd)
                    a = F.scaled_dot_product_attention(qg, kv[i][0], kv[i][1])
                    a = a.reshape(b, nh * hd)
                x = x + F.linear(a, wo)
                gu = F.linear(rms(x, g2), wgu)
                x = x + F.linear(F.silu(gu[:, :inter]) * gu[:, inter:], wd)
            last = rms(x, norm).view(b, q_len, hid)[:, -1]
            return F.linear(last, head)

        g = graph_of(step)
        t0, reps = time.time(), 0
        while time.time() - t0 < SECONDS - WINDOW:
            g.replay()
            torch.cuda.synchronize()
        a, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0, te0 = pynvml.nvmlDeviceGetTotalEnergyConsumption(h), time.time()
        a.record()
        while time.time() - te0 < WINDOW:
            for _ in range(4):
                g.replay()
            reps += 4
            torch.cuda.synchronize()
        e.record()
        torch.cuda.synchronize()
        e1, te1 = pynvml.nvmlDeviceGetTotalEnergyConsumption(h), time.time()
        rows.append(f"{seqs},{ctx},{prompt},{a.elapsed_time(e) / 1e3 / reps:.6e},"
                    f"{(e1 - e0) / 1e3 / (te1 - te0):.2f},"
                    f"{pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM)},"
                    f"{pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU)}")
        print(rows[-1], flush=True)
        del g, kv, x0
        torch.cuda.empty_cache()
        (out / "device_power_steps.csv").write_text("\n".join(rows) + "\n")


def compare(csv: str) -> None:
    """Utilisations of each measured row and the power model's watts for them
    (`wrpsim.validate.kernels.power_at_known_utilisation`)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from wrpsim.validate.kernels import power_at_known_utilisation

    for r in power_at_known_utilisation(csv, GPU):
        print(f"| {r['workload']} | {r['m']} | {r['u_compute']:.2f} | {r['u_memory']:.2f} | "
              f"{r['measured_w']:.0f} | {r['model_w']:.0f} | {r['error']:+.0f} |")



def compare_steps(csv: str) -> None:
    """The power model on measured Llama-3.1-8B steps
    (`wrpsim.validate.kernels.power_of_measured_steps`), as a markdown table."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from wrpsim.validate.kernels import power_of_measured_steps

    for r in power_of_measured_steps(csv, "llama3.1-8b", GPU):
        print(f"| {r['seqs']} | {r['ctx']} | {r['prompt']} | {r['step_s'] * 1e3:.2f} | "
              f"{r['gpu_s'] * 1e3:.2f} | {r['u_compute']:.2f} | {r['u_memory']:.2f} | "
              f"{r['measured_w']:.0f} | {r['model_w']:.0f} | {r['error']:+.0f} |")


def sustained(csv: str) -> None:
    """The GPU catalog's sustained GEMM rates from a `measure` CSV
    (`wrpsim.validate.kernels.sustained_rates`), as lines to paste into gpus.yaml."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from wrpsim.validate.kernels import sustained_rates

    for k, v in sustained_rates(csv).items():
        print(f"  {k}: {v:g}")


if __name__ == "__main__":
    verb = sys.argv[1] if len(sys.argv) > 1 else ""
    if verb == "measure" and len(sys.argv) == 3:
        measure(sys.argv[2])
    elif verb == "steps" and len(sys.argv) == 3:
        measure_steps(sys.argv[2])
    elif verb == "compare" and len(sys.argv) == 3:
        compare(sys.argv[2])
    elif verb == "compare-steps" and len(sys.argv) == 3:
        compare_steps(sys.argv[2])
    elif verb == "sustained" and len(sys.argv) == 3:
        sustained(sys.argv[2])
    else:
        sys.exit("usage: device_power.py measure OUT_DIR | steps OUT_DIR | compare CSV | "
                 "compare-steps CSV | sustained CSV")
