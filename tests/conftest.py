"""Shared fixtures: small fleets with the constant latency model, trace builders."""

from __future__ import annotations

import functools
import os
import sys

import numpy as np
import pandas as pd
import pytest


def pytest_configure(config):
    """The suite tests the shipped catalog: a developer's own `WRPSIM_CATALOG` is set aside
    (tests that need a user catalog set it themselves)."""
    os.environ.pop("WRPSIM_CATALOG", None)


def gpu_yaml(name: str = "x", **fields) -> str:
    """The smallest valid entry of a user's gpus.yaml, as YAML text: `fields` replace or add
    to its numbers; its calibration copies the H100's."""
    vals = {"bf16_tflops": 1, "mem_gib": 1, "mem_bw_gbs": 1, "tdp_w": 2, "idle_w": 1,
            "link_gbs": 1, "price_per_hour_usd": 1, **fields}
    return (f"{name}:\n" + "".join(f"  {k}: {v}\n" for k, v in vals.items())
            + "  calibration: {from: h100-80gb}\n")


def make_trace(arrivals, prompts, outputs, **extra) -> pd.DataFrame:
    """A canonical trace DataFrame from plain sequences."""
    df = pd.DataFrame({
        "arrival_s": np.asarray(arrivals, dtype=np.float64),
        "prompt_tokens": np.asarray(prompts, dtype=np.int64),
        "output_tokens": np.asarray(outputs, dtype=np.int64),
    })
    for k, v in extra.items():
        df[k] = v
    return df


def fabric_transfers(net_cfg: dict, plan) -> tuple[dict, object]:
    """Run `plan` — [(start_s, src_gpus, dst_gpus, nbytes, name)] — on a fabric built from the
    network config `net_cfg` (`wrpsim.network.transfer.build_fabric`, seed 0); returns
    ({name: finish time}, the fabric)."""
    import simpy

    from wrpsim.network.transfer import build_fabric

    f = build_fabric(net_cfg, seed=0)
    env = simpy.Environment()
    f.attach(env)
    out = {}

    def starter(t, src, dst, nbytes, name):
        yield env.timeout(t)
        f.transfer(src, dst, nbytes, lambda now, n=name: out.setdefault(n, now))

    for t, src, dst, nbytes, name in plan:
        env.process(starter(t, src, dst, nbytes, name))
    env.run()
    return out, f


def lindley(arrivals, service) -> np.ndarray:
    """Queue waits of a FIFO single server, in arrival order."""
    out, free = [], 0.0
    for a, s in zip(arrivals.tolist(), service.tolist()):
        start = a if a > free else free
        out.append(start - a)
        free = start + s
    return np.asarray(out)


def constant_cfg(step_s=0.01, count=1, kv_blocks=100_000, policy="sarathi", max_seqs=256,
                 token_budget=2048, block_size=16, router="RoundRobin", prefill_s_per_token=0.0,
                 **pool_extra) -> dict:
    """A run config with one pool of constant-latency instances."""
    pool = {
        "gpu": "h100-80gb", "model": "llama3.1-8b", "tp": 1, "count": count,
        "kv_blocks": kv_blocks,
        "scheduler": {"policy": policy, "max_seqs": max_seqs, "token_budget": token_budget,
                      "block_size": block_size},
        "latency": {"kind": "constant", "decode_step_s": step_s,
                    "prefill_s_per_token": prefill_s_per_token},
    }
    pool.update(pool_extra)
    return {
        "seed": 0, "slo": {"ttft_s": 1.0, "tpot_s": 0.1}, "pue": 1.0,
        "pool": {"name": "test", "pools": {"p": pool}},
        "router": {"_target_": f"wrpsim.router.{router}"},
    }


@pytest.fixture
def trace_factory():
    """Expose `make_trace` to tests."""
    return make_trace


@functools.cache
def register_catalogs_once() -> None:
    """`wrpsim.app.register_catalogs`, once per test session: it checks every catalog YAML (Hydra
    reads the options through `wrpsim://catalogs`), and the catalogs do not change while the
    tests run (their root is fixed, `wrpsim.paths.catalog_root` is cached)."""
    from wrpsim.app import register_catalogs

    register_catalogs()


def compose_cfg(*overrides: str) -> dict:
    """The run config `python -m wrpsim <overrides>` would use, as a plain dict."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from wrpsim.paths import catalog_dir

    register_catalogs_once()
    with initialize_config_dir(config_dir=str(catalog_dir("conf")), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


def run_app(monkeypatch, capsys, tmp_path, *args, module="wrpsim"):
    """(exit status, stdout, stderr) of `python -m <module> args` run in this process."""
    from importlib import import_module

    main = import_module(f"{module}.__main__").main
    flags = [a for a in args if a.startswith("-")]
    rest = [a for a in args if not a.startswith("-")]
    monkeypatch.setattr(sys, "argv", [module, *flags, f"hydra.run.dir={tmp_path / 'run'}",
                                      f"hydra.sweep.dir={tmp_path / 'sweep'}", *rest])
    monkeypatch.chdir(tmp_path)
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def made_up_engine_steps(path, steps=((0, 1), (0, 16), (0, 128), (512, 8), (2048, 0)),
                         layer_overhead_us: float = 30.0):
    """A calibrate steps CSV at `path` (returned): Llama-3.1-8B on one H100 timed by the
    shipped engine with its layer floor set to `layer_overhead_us` — a made-up engine whose
    constant a fit must find; `steps` are (prefill tokens, decode sequences of 700 tokens)."""
    from wrpsim.pool.engines import build_latency_model

    truth = build_latency_model("llama3.1-8b", "h100-80gb", 1,
                                overrides={"layer_overhead_us": layer_overhead_us})
    rows = [{"model": "llama3.1-8b", "gpu": "h100-80gb", "tp": 1, "prefill_tokens": p,
             "decode_seqs": b, "decode_ctx": b * 700,
             "step_ms": truth.iteration_s(p, p * (p + 1) / 2, b, b * 700) * 1e3}
            for p, b in steps]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def set_path(cfg: dict, path: tuple, value) -> dict:
    """`cfg` with the nested key `path` (a tuple of keys) set to `value` (in place)."""
    node = cfg
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return cfg
