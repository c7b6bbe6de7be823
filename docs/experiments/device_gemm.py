"""GEMM tables on shapes they never measured, timed on a real GPU (docs/validation.md, "Kernel
tables on held-out shapes").

The AIConfigurator GEMM tables measure weights on a grid of n and k (32 … 65,536) at a grid of m
(tokens). Real models' projections mostly fall between grid points (Gemma's hidden 3,840,
Mixtral's MLP 14,336, a 70B model's QKV at TP 8 …), and wrpsim interpolates them
(`wrpsim.pool.kernels.tables.Kernels.gemm`: bilinear in log n, log k of log time, linear in m;
the roofline ratio beyond the grid). This script checks that rule against the kernel the tables
timed — vLLM's BF16 linear is `torch.nn.functional.linear` — on the GPU the tables came from:

1. `python docs/experiments/device_gemm.py shapes` (here, no GPU): writes
   `device_gemm_shapes.json` next to this file — every projection GEMM and LM head of every
   catalog model at TP 1, 2, 4 and 8 (as `KernelLatency` asks for them), at tokens m off the
   table's m grid, plus a control set of shapes on the grid (n, k and m all measured) that
   says how far this machine and PyTorch build are from the tables' own.
2. `python3 docs/experiments/device_gemm.py measure OUT_DIR` (on the GPU; needs only PyTorch):
   times each shape as the AIConfigurator collector does — six layers with their own weights
   run back to back in one CUDA graph, the graph replayed five times, time per layer = median
   replay / 6; shapes smallest first, each row written as it is timed —
   and writes `OUT_DIR/device_gemm.csv` (dtype, m, n, k, ms, set) and the device's name.
   `sweep` / `measure OUT_DIR docs/experiments/device_gemm_sweep.json`: the same timing over a
   dense m range for five shapes (`device_gemm_sweep.csv`): how time steps between grid points.
3. `python docs/experiments/device_gemm.py store CSV GPU` (here): writes the measured rows as
   held-out tables, `pools/measured/device/kernels/<GPU>/torch-linear/{gemm.parquet,
   meta.json}`, which `python docs/experiments/kernel_holdout.py` and
   `wrpsim.validate.kernels` then time with the shipped tables.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHAPES = HERE / "device_gemm_shapes.json"
#: tokens per GEMM, none of them on the tables' m grid (1 … 16, multiples of 16 … 256, of 256 …)
OFF_GRID_M = [24, 40, 100, 200, 300, 700, 1000, 1900, 3000, 6000]
#: the FP8 kernel timed here: the tables' FP8 rows are vLLM's CUTLASS per-tensor FP8 GEMM
#: (`CutlassFP8ScaledMMLinearKernel`), which plain PyTorch lacks; cuBLASLt's FP8 GEMM does the
#: same arithmetic, and the control set on the grid measures how far apart the two kernels are
FP8_KERNEL = "torch._scaled_mm (cuBLASLt), FP8 E4M3, per-tensor scales, BF16 output"
#: tokens on the grid, for the control set
GRID_M = [1, 8, 64, 256, 1024, 4096]
TPS = (1, 2, 4, 8)


def _repo() -> Path:
    return HERE.parents[1]


def shapes(dtype: str = "bf16") -> None:
    """Write the shape list (needs wrpsim, not a GPU): `bf16` (`device_gemm_shapes.json`) or
    `fp8` (`device_gemm_fp8_shapes.json`: the projections of every catalog model run with
    `precision: fp8`, whose n and k are multiples of 16 as FP8 GEMMs need; no LM heads, which
    vLLM keeps in BF16)."""
    sys.path.insert(0, str(_repo()))
    import numpy as np

    from wrpsim.errors import ConfigError
    from wrpsim.pool.catalog import models
    from wrpsim.pool.engines import build_latency_model, get_engine, kernels_for
    from wrpsim.pool.kernels import operators

    k = kernels_for(get_engine("vllm-0.24"), "h200-141gb")
    _, ns, ks, _ = k._gemm_cube(dtype)
    grid_n, grid_k = {int(v) for v in ns}, {int(v) for v in ks}
    held = set()
    for name in models():
        for tp in TPS:
            try:
                lat = build_latency_model(name, "h200-141gb", tp, precision=dtype)
            except ConfigError:
                continue
            gemms = [(n, kk) for _, dt, n, kk in operators.gemms(lat) if dt == dtype]
            if dtype == "bf16":
                gemms.append((-(-lat.model.vocab // lat.atp), lat.model.hidden))  # LM head
            held.update((int(n), int(kk)) for n, kk in gemms
                        if (int(n) not in grid_n or int(kk) not in grid_k)
                        and (dtype == "bf16" or (int(n) % 16 == 0 and int(kk) % 16 == 0)))
    held = sorted(held)
    rng = np.random.default_rng(7)
    pairs = sorted({(int(n), int(kk)) for n in ns for kk in ks
                    if 256 <= n <= 51200 and 256 <= kk <= 51200})
    control = [pairs[i] for i in sorted(rng.choice(len(pairs), 40, replace=False))]
    rows = ([[dtype, m, n, kk, "held_out"] for n, kk in held for m in OFF_GRID_M]
            + [[dtype, m, n, kk, "grid"] for n, kk in control for m in GRID_M])
    out = SHAPES if dtype == "bf16" else HERE / f"device_gemm_{dtype}_shapes.json"
    out.write_text(json.dumps({"columns": ["dtype", "m", "n", "k", "set"], "rows": rows})
                      + "\n")
    print(f"{len(held)} held-out (n, k) x {len(OFF_GRID_M)} m, {len(control)} grid (n, k) x "
          f"{len(GRID_M)} m: {len(rows)} GEMMs -> {out}")


#: (n, k) of the dense m sweep: Llama-3.1-8B's QKV, O, gate-up and down projections at TP 1 and
#: Llama-3.1-70B's down projection at TP 4
SWEEP_NK = [(6144, 4096), (4096, 4096), (28672, 4096), (4096, 14336), (8192, 7168)]
SWEEP = HERE / "device_gemm_sweep.json"


def sweep_shapes() -> None:
    """Write the dense m sweep (every m to 64, every 4th to 1,024, every 16th to 4,096) that
    shows how GEMM time steps between the tables' m grid points."""
    ms = list(range(1, 65)) + list(range(68, 1025, 4)) + list(range(1040, 4097, 16))
    rows = [["bf16", m, n, k, "sweep"] for n, k in SWEEP_NK for m in ms]
    SWEEP.write_text(json.dumps({"columns": ["dtype", "m", "n", "k", "set"], "rows": rows})
                     + "\n")
    print(f"{len(rows)} GEMMs -> {SWEEP}")


def measure(out_dir: str, shapes_file: str = "") -> None:
    """Time every shape of `shapes_file` (default `device_gemm_shapes.json`) on the GPU (needs
    PyTorch and CUDA); writes `<OUT_DIR>/<shapes file's stem>.csv`."""
    import time

    import torch
    from gputime import graph_ms  # this folder (the script's own)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    src = Path(shapes_file) if shapes_file else SHAPES
    spec = json.loads(src.read_text())
    dev = torch.device("cuda")
    torch.manual_seed(0)
    info = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "kernel": {"bf16": "torch.nn.functional.linear", "fp8": FP8_KERNEL}}
    one = torch.ones((), dtype=torch.float32, device=dev)

    def op(dtype):
        """The GEMM of `dtype` on (x, w): BF16 linear, or FP8 E4M3 x FP8 E4M3 with per-tensor
        scales and BF16 output (vLLM's per-tensor FP8 linear; here cuBLASLt's)."""
        if dtype == "bf16":
            return torch.nn.functional.linear
        return lambda x, w: torch._scaled_mm(x, w.t(), scale_a=one, scale_b=one,
                                             out_dtype=torch.bfloat16)

    def make(rows, cols, dtype):
        t = torch.randn(rows, cols, dtype=torch.bfloat16, device=dev)
        return t if dtype == "bf16" else t.to(torch.float8_e4m3fn)

    (out / "device.json").write_text(json.dumps(info) + "\n")  # also if stopped early
    csv = (out / (src.stem.replace("_shapes", "") + ".csv")).open("w")
    csv.write("dtype,m,n,k,ms,set\n")
    t0, done = time.time(), 0
    by_nk: dict = {}
    for dtype, m, n, k, kind in spec["rows"]:
        by_nk.setdefault((dtype, n, k), []).append((m, kind))
    for (dtype, n, k), ms in sorted(by_nk.items(), key=lambda e: e[0][1] * e[0][2]):  # small
        # first: a run stopped at its time limit keeps the most shapes
        f = op(dtype)
        ws = [make(n, k, dtype) for _ in range(6)]
        for m, kind in ms:
            x = make(m, k, dtype)
            for w in ws:  # warm-up, cuBLAS heuristics
                f(x, w)
            torch.cuda.synchronize()
            ms_layer = graph_ms(lambda f=f, x=x, ws=ws: [f(x, w) for w in ws], 5) / 6
            csv.write(f"{dtype},{m},{n},{k},{ms_layer:.6f},{kind}\n")
            done += 1
            del x
        csv.flush()
        del ws
        torch.cuda.empty_cache()
    csv.close()
    (out / "device.json").write_text(json.dumps({**info, "gemms": done,
                                                 "seconds": round(time.time() - t0, 1)}) + "\n")
    print(f"{done} GEMMs in {time.time() - t0:.0f} s -> {out}")


def store(csv: str, gpu: str) -> None:
    """Write the measured rows as a held-out table folder (needs wrpsim)."""
    import pyarrow as pa
    import pyarrow.compute as pac
    import pyarrow.csv as pc
    import pyarrow.parquet as pq

    t = pc.read_csv(csv)
    dev = Path(csv).with_name("device.json")
    info = json.loads(dev.read_text()) if dev.is_file() else {}
    labels = {("bf16", "held_out"): "torch-linear", ("bf16", "grid"): "torch-linear-grid",
              ("bf16", "sweep"): "torch-linear-msweep",
              ("fp8", "held_out"): "torch-scaled-mm-fp8",
              ("fp8", "grid"): "torch-scaled-mm-fp8-grid"}
    kernel = {"bf16": "torch.nn.functional.linear", "fp8": FP8_KERNEL}
    for (dtype, kind), label in labels.items():
        rows = t.filter(pac.and_(pac.equal(t["set"], kind),
                                 pac.equal(t["dtype"], dtype))).drop(["set"])
        if not rows.num_rows:
            continue
        rows = rows.cast(pa.schema([("dtype", pa.string()), ("m", pa.int32()),
                                    ("n", pa.int32()), ("k", pa.int32()),
                                    ("ms", pa.float64())]))
        d = _repo() / "pools" / "measured" / "device" / "kernels" / gpu / label
        d.mkdir(parents=True, exist_ok=True)
        pq.write_table(rows, d / "gemm.parquet", compression="zstd")
        what = {"held_out": "catalog models' projection GEMMs (and, in BF16, LM heads) at TP "
                            "1/2/4/8 whose n or k is off the AIConfigurator grid, at m off its "
                            "m grid",
                "grid": "control: (n, k, m) on the AIConfigurator grid, re-timed on this machine",
                "sweep": f"dense m sweep (1 to 4,096) of (n, k) = {SWEEP_NK}"}[kind]
        (d / "meta.json").write_text(json.dumps({
            "source": f"wrpsim developers' own measurement, {info.get('device', '?')}, torch "
                      f"{info.get('torch', '?')} (CUDA {info.get('cuda', '?')}), "
                      "docs/experiments/device_gemm.py measure; licence as wrpsim's",
            "tables": {"gemm": {"profile": what, "kernel": f"{kernel[dtype]}, "
                                "6 layers in one CUDA graph (the AIConfigurator collector's "
                                "method)", "rows": rows.num_rows}}}, indent=1) + "\n")
        print(f"{rows.num_rows} rows -> {d}")


if __name__ == "__main__":
    verb = sys.argv[1] if len(sys.argv) > 1 else ""
    if verb == "shapes" and len(sys.argv) in (2, 3):
        shapes(*sys.argv[2:])
    elif verb == "sweep":
        sweep_shapes()
    elif verb == "measure" and len(sys.argv) in (3, 4):
        measure(*sys.argv[2:])
    elif verb == "store" and len(sys.argv) == 4:
        store(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: device_gemm.py shapes [bf16|fp8] | sweep | "
                 "measure OUT_DIR [SHAPES_JSON] | store CSV GPU")
