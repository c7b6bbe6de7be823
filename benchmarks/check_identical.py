"""Check that two source trees simulate byte-identical results (for pure speed work).

Usage::

    python benchmarks/check_identical.py --base /path/to/base-tree [--head .] \
        [--set core|all] [--only NAME ...] [--keep DIR]

Runs every scenario of the chosen set as a user does (`python -m wrpsim <overrides>
hydra.run.dir=...`, `PYTHONPATH` set to the tree) in the base tree and in the head tree, and
compares every result file the two runs wrote: Parquet files (`requests.parquet`,
`instances.parquet`, `tasks.parquet`, `network.parquet`, `routing.parquet`) and `config.yaml`
must be byte-identical (`cmp`); `summary.json`, `network.json` and `trace.json` must be equal
after parsing, except the wall-time fields (`WALL_KEYS`). Hydra's own `.hydra/` files, `_DONE`
(its `wall_s`) and the log are not compared. The base tree's outputs are kept under `--keep`
(default `/tmp/wrpsim-identical/<base commit>/`) and reused while the base commit is the same
(an uncommitted base tree is rerun every time).

The `core` set is the default scenario, `router=least-outstanding`, `+experiment=overload`,
the disaggregated pool and the disaggregated pool on the fluid fabric; `all` adds scenarios
covering the other engine paths (vLLM and Orca scheduling, a prefix cache, failures, QoE off,
a heterogeneous fleet, the 2023 analytical engine, a horizon, a traced run, an instance whose
collectives cross the fabric, a closed-loop benchmark, KV transfers on the packet engine in a
window of a fluid run and for a whole run). Prints one line per scenario and exits
1 if any differs.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CORE = {
    "default": [],
    "least-outstanding": ["router=least-outstanding"],
    "overload": ["+experiment=overload"],
    "disagg": ["pool=h100-llama70b-disagg"],
    "disagg-fluid": ["pool=h100-llama70b-disagg", "network=fluid"],
}
EXTRA = {
    "vllm-overload": ["+experiment=overload", "pool.pools.h100.scheduler.policy=vllm"],
    "orca": ["pool.pools.h100.scheduler.policy=orca", "pool.pools.h100.count=3"],
    "prefix-mooncake": ["workload=mooncake-conversation", "router=prefix-aware",
                        "pool.pools.h100.prefix_cache.enabled=true", "workload.rate_scale=2",
                        "workload.max_requests=5000"],
    "failures": ["failures=random"],
    "qoe-off": ["qoe=null", "+experiment=overload"],
    "hetero": ["pool=hetero-llama70b", "router=least-kv"],
    "splitwise": ["pool.pools.h100.engine=splitwise-2023"],
    "horizon": ["sim.horizon_s=900", "+experiment=overload", "router=power-of-d"],
    "traced": ["sim.trace=true", "workload.max_requests=1500", "pool=h100-llama70b-disagg"],
    "collectives": ["workload.max_requests=200", "network=fluid", "pool.pools.h100.tp=16",
                    "pool.pools.h100.count=1", "network.collectives=true"],
    "closed-loop": ["workload=closed-loop", "workload.source.concurrency=64",
                    "workload.source.num_requests=3000"],
    "packet-window": ["pool=h100-llama70b-disagg", "network=fluid", "network.packet_window=[0,10]",
                      "workload.max_requests=3000"],
    "packet-fabric": ["pool=h100-llama70b-disagg", "network=packet", "workload.max_requests=100"],
}
#: fields that hold wall-clock time, not simulated results
WALL_KEYS = {"sim_wall_s", "wall_s"}
JSON_FILES = {"summary.json", "network.json", "trace.json"}
SKIP = {"_DONE", "wrpsim.log"}


def _commit(tree: Path) -> str | None:
    """HEAD of `tree` when its wrpsim sources are committed, else None (also outside git: the
    base is then rerun every time)."""
    git = ["git", "-C", str(tree)]
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "wrpsim", "conf", "pools",
                            "routers", "workloads", "hydra_plugins"],
                           capture_output=True, text=True)
    if dirty.returncode or dirty.stdout.strip():
        return None
    return subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def run(tree: Path, overrides: list[str], out: Path) -> float:
    """`python -m wrpsim` of `tree` into `out`; return its wall seconds."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "wrpsim", *overrides, f"hydra.run.dir={out}",
                        "sim.progress=false"], cwd=tree, env=env, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"{tree}: python -m wrpsim {' '.join(overrides)} failed:\n{p.stderr}")
    return time.perf_counter() - t0


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in WALL_KEYS}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def compare(a: Path, b: Path) -> list[str]:
    """Differences between the result files of two run directories (empty: identical)."""
    fa = {p.name for p in a.iterdir() if p.is_file() and p.name not in SKIP}
    fb = {p.name for p in b.iterdir() if p.is_file() and p.name not in SKIP}
    diffs = [f"only in base: {n}" for n in sorted(fa - fb)]
    diffs += [f"only in head: {n}" for n in sorted(fb - fa)]
    for name in sorted(fa & fb):
        if name in JSON_FILES:
            ja = _strip(json.loads((a / name).read_text()))
            jb = _strip(json.loads((b / name).read_text()))
            if ja != jb:
                keys = sorted(k for k in set(ja) | set(jb) if ja.get(k) != jb.get(k)) \
                    if isinstance(ja, dict) and isinstance(jb, dict) else ["(whole file)"]
                diffs.append(f"{name} differs: {keys[:8]}")
        elif not filecmp.cmp(a / name, b / name, shallow=False):
            diffs.append(f"{name} differs (bytes)")
    return diffs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True, type=Path)
    ap.add_argument("--head", default=Path(__file__).resolve().parents[1], type=Path)
    ap.add_argument("--set", choices=("core", "all"), default="core")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--keep", type=Path, default=None)
    args = ap.parse_args()
    base, head = args.base.resolve(), args.head.resolve()
    for flag, tree in (("--base", base), ("--head", head)):
        if not (tree / "wrpsim" / "__main__.py").is_file():
            ap.error(f"{flag} {tree}: not a wrpsim source tree (no wrpsim/__main__.py)")
    scenarios = dict(CORE) if args.set == "core" else {**CORE, **EXTRA}
    if args.only is not None:
        unknown = [k for k in args.only if k not in CORE and k not in EXTRA]
        if unknown or not args.only:
            ap.error(f"--only {' '.join(unknown) or '(nothing)'}: unknown scenario; valid: "
                     f"{', '.join([*CORE, *EXTRA])}")
        scenarios = {k: v for k, v in {**CORE, **EXTRA}.items() if k in args.only}
    commit = _commit(base)
    keep = args.keep or Path("/tmp/wrpsim-identical") / (commit or f"dirty-{os.getpid()}")
    scratch = Path("/tmp/wrpsim-identical") / f"head-{os.getpid()}"
    bad = 0
    for name, ov in scenarios.items():
        ref = keep / name
        if commit is None or not (ref / "_DONE").exists():
            tb = run(base, ov, ref)
        else:
            tb = float("nan")
        th = run(head, ov, scratch / name)
        diffs = compare(ref, scratch / name)
        bad += bool(diffs)
        files = len([p for p in ref.iterdir() if p.is_file() and p.name not in SKIP])
        state = "IDENTICAL" if not diffs else "DIFFERENT: " + "; ".join(diffs)
        print(f"{name:18s} {files} files  base {tb:5.1f} s  head {th:5.1f} s  {state}",
              flush=True)
    print(f"{len(scenarios) - bad}/{len(scenarios)} scenarios identical "
          f"(base {base} @ {commit or 'uncommitted'}, head {head})")
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
