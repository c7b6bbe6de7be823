"""Side by side: wrpsim's default scenario vs the request-level peer `vllm-sr-sim`, whole process.

Usage: `python benchmarks/bench_peer.py [--repeat 5] [--venv DIR] [--peer-version V]`.

The peer (the vLLM Semantic Router fleet simulator, `vllm-sr-sim` on PyPI, Apache-2.0) is not
a dependency of wrpsim: the script installs the pinned version into its own virtual environment
(`--venv`, default `~/.cache/wrpsim/peer-venv`; created once, reused after) with that venv's pip.

Both simulators replay the same trace, the shipped Azure 2023 conversation trace (19,366
requests, `workloads/traces/azure_conv_2023.csv`): wrpsim as `python -m wrpsim` (its default
scenario: 4 instances of Llama-3.1-70B on 4 x H100, round robin), the peer through its own
Python API (`fleet_sim.workload.trace.TraceWorkload`, format `splitwise`: the trace converted to
seconds since the first arrival, prompt and output tokens) on one pool of 4 H100 instances behind
its least-loaded router, in a driver script run by the venv's interpreter. (The peer's
`azure_csv` loader expects numeric timestamps and silently skips the trace's date strings,
hence the conversion.) The two model different things at different fidelity — iterations and
batches vs a request-level formula — so only the wall time is compared, not the latencies.

Each repeat runs the two whole processes alternately (interpreter start, imports, trace load,
simulation, writing results), so both see the same machine state; the script prints every wall
time, the medians and `ratio` = peer median / wrpsim median (1.0 = parity; the issue's target
is >= 0.5), as one JSON line at the end.

Both run with compiled bytecode, as installed packages do: pip compiled the peer's modules when
it installed them, and wrpsim's are compiled once into `--pycache` (`PYTHONPYCACHEPREFIX`, with
`PYTHONDONTWRITEBYTECODE` unset for wrpsim's process only) by one untimed warm-up run of each
simulator before the timed repeats (which also fills wrpsim's trace and latency caches, as any
second run finds them). `--no-bytecode` times wrpsim compiling its sources in every run instead
(what an environment with `PYTHONDONTWRITEBYTECODE=1` does; ~0.08 s more per run here).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PEER = "vllm-sr-sim"
PEER_VERSION = "0.1.0.dev20260713123629"
ROOT = Path(__file__).resolve().parents[1]
TRACE = ROOT / "workloads" / "traces" / "azure_conv_2023.csv"

DRIVER = r'''
import sys, time
t0 = time.perf_counter()
from fleet_sim.core.fleet import Fleet, FleetConfig, PoolConfig
from fleet_sim.gpu_profiles.profiles import H100_80GB
from fleet_sim.workload.trace import TraceWorkload
arrivals = TraceWorkload(sys.argv[1], fmt="splitwise").generate()
fc = FleetConfig(pools=[PoolConfig("h100", H100_80GB, 4, 32768)],
                 router_type="LeastLoadedRouter")
result = Fleet(fc).run(arrivals, verbose=False)
summary = result.summary(2000.0)
print(len(arrivals), "requests;", "in-process", round(time.perf_counter() - t0, 3), "s")
'''


def ensure_peer(venv: Path, version: str) -> Path:
    """The venv's interpreter with `vllm-sr-sim==version` installed (installs on first use)."""
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run([str(py), "-m", "pip", "show", PEER], capture_output=True, text=True)
    if f"Version: {version}" not in probe.stdout:
        subprocess.run([str(py), "-m", "pip", "install", "-q", f"{PEER}=={version}"], check=True)
    return py


def peer_trace(out: Path) -> Path:
    """The shipped trace in the peer's `splitwise` CSV layout (seconds, prompt, output)."""
    import pandas as pd

    df = pd.read_csv(TRACE)
    ts = pd.to_datetime(df["TIMESTAMP"])
    t = (ts - ts.min()).dt.total_seconds()
    path = out / "trace_splitwise.csv"
    pd.DataFrame({"timestamp": t.round(6), "num_prefill_tokens": df["ContextTokens"],
                  "num_decode_tokens": df["GeneratedTokens"]}).to_csv(path, index=False)
    return path


def timed(cmd: list[str], cwd: Path, env: dict) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode:
        raise SystemExit(f"bench_peer: {' '.join(cmd[:3])} failed ({p.returncode}):\n"
                         f"{p.stderr[-2000:]}")
    return wall, (p.stdout + p.stderr).strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--venv", type=Path, default=Path.home() / ".cache/wrpsim/peer-venv")
    ap.add_argument("--peer-version", default=PEER_VERSION)
    ap.add_argument("--pycache", type=Path, default=Path.home() / ".cache/wrpsim/bench-pycache",
                    help="where wrpsim's compiled bytecode is kept (PYTHONPYCACHEPREFIX)")
    ap.add_argument("--no-bytecode", action="store_true",
                    help="wrpsim compiles its sources in every run (PYTHONDONTWRITEBYTECODE=1)")
    args = ap.parse_args()
    py_peer = ensure_peer(args.venv, args.peer_version)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    ours_env = dict(env)
    if args.no_bytecode:
        ours_env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        ours_env.pop("PYTHONDONTWRITEBYTECODE", None)
        ours_env["PYTHONPYCACHEPREFIX"] = str(args.pycache)
    with tempfile.TemporaryDirectory(prefix="wrpsim-peer-") as tmp:
        tmp = Path(tmp)
        trace = peer_trace(tmp)
        driver = tmp / "peer_driver.py"
        driver.write_text(DRIVER)
        ours_cmd = [sys.executable, "-m", "wrpsim", f"hydra.run.dir={tmp / 'run'}"]
        peer_cmd = [str(py_peer), str(driver), str(trace)]
        timed(ours_cmd, ROOT, ours_env)  # warm-up, untimed: bytecode and caches
        timed(peer_cmd, tmp, env)
        ours, peer = [], []
        for i in range(args.repeat):
            w, _ = timed(ours_cmd, ROOT, ours_env)
            ours.append(w)
            p, line = timed(peer_cmd, tmp, env)
            peer.append(p)
            print(f"repeat {i + 1}: wrpsim {w:.2f} s | {PEER} {p:.2f} s ({line})",
                  file=sys.stderr)
    m_ours, m_peer = statistics.median(ours), statistics.median(peer)
    print(json.dumps({"trace": TRACE.name, "repeat": args.repeat,
                      "peer": f"{PEER}=={args.peer_version}",
                      "wrpsim_bytecode": "compiled every run" if args.no_bytecode else "cached",
                      "wrpsim_s": [round(x, 3) for x in ours],
                      "peer_s": [round(x, 3) for x in peer],
                      "wrpsim_median_s": round(m_ours, 3), "peer_median_s": round(m_peer, 3),
                      "ratio": round(m_peer / m_ours, 3)}))


if __name__ == "__main__":
    main()
