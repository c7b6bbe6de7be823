"""Fit the per-GPU power shape (`wrpsim.pool.kernels.power.PowerModel`) on measured watts.

`active`, `w_compute` and `w_memory` minimise the squared error of the average power per GPU,
a linear least-squares problem with non-negative coefficients, because average power is linear
in them: with busy fraction b and time-averaged utilisations u_c, u_m,

    P = idle + (TDP - idle) x (active x b + w_compute x u_c + w_memory x u_m).

The GPUs measured by ML.ENERGY (H100, B200) share one shape by default (`shared=true`): the
three numbers are fractions of each GPU's own idle-to-TDP span, i.e. how much of its power
headroom a GPU spends when its silicon is busy, computing or streaming, which need not depend
on the generation. Fitted jointly (one least-squares problem over both GPUs' runs, each row
scaled by its own span) it predicted the held-out runs better than a shape per GPU when it was
chosen (median power error on ML.ENERGY's test split: H100 8.8 against 12.7 %, B200 13.1
against 13.6 %), because three numbers fitted on 31 noisy B200 runs overfit; on 2026-12-07,
with each run's repeats replayed as the same prompts, the shared shape is better on H100 and a
little worse on B200 (shared: H100 9.4, B200 14.8 %; per GPU: 10.5, 14.2 %; docs/validation.md),
and the shared shape, fewer numbers, is kept. `shared=false` fits each GPU alone. The A100
(Splitwise profile, a 2023 engine) is always fitted alone.

Sources of (b, u_c, u_m, P) points:

- ML.ENERGY closed-loop runs (`wrpsim.validate.mlenergy.mlenergy_cases`): each case is simulated
  twice with a probe power model that reports u_c, then u_m, as its "power" (b is the busy
  share of the same window), so the utilisations are those of the simulated iterations,
  averaged over the benchmark's steady state as its watts are;
- the Splitwise profile (A100, `pools/catalog/profiles/splitwise_llama2_70b.csv`): each run is a
  prefill of its measured duration and decode steps of theirs; the utilisations are the work
  of those iterations (`iteration_work`) over the measured times.
"""

from __future__ import annotations

import numpy as np

from wrpsim.pool.kernels.power import POWER_FIELDS, utilisation


def probe_points(case, engine: str | None = None) -> tuple[float, float, float]:
    """(busy fraction, mean u_compute, mean u_memory) per GPU of `case`'s simulation, averaged
    over the window its benchmark measured power on (`wrpsim.validate.replay.simulate`: the
    steady state for ML.ENERGY, else the whole run). Two runs: the power model steers nothing
    in these single-pool replays (only a router that reads power would), so both runs are the
    same and the first's busy fraction is the second's."""
    from wrpsim.validate.replay import case_warnings_once, simulate

    with case_warnings_once():
        c = simulate(case, engine, power_probe=(0.0, 1.0, 0.0))
        m = simulate(case, engine, power_probe=(0.0, 0.0, 1.0))
    return c["busy_frac"], c["power_w"], m["power_w"]


def splitwise_points(gpu: str = "a100-80gb") -> list[tuple[float, float, float, float]]:
    """(b, u_c, u_m, measured W per GPU) of the Splitwise profile runs on `gpu` with a usable
    power reading (`wrpsim.pool.calibrate`'s filters), engine vllm-0.24's model of Llama-2-70B
    for the work and the measured durations for the time."""
    from wrpsim.pool.calibrate import MIN_POWER_FRAC, load_profile
    from wrpsim.pool.catalog import get_gpu
    from wrpsim.pool.engines import build_latency_model

    prof = load_profile()
    prof = prof[(prof["hardware"] == gpu) & prof["fits"]
                & (prof["average_power"] >= MIN_POWER_FRAC)]
    g = get_gpu(gpu)
    pts = []
    for r in prof.itertuples():
        lat = build_latency_model("llama2-70b", gpu, int(r.tensor_parallel))
        b, p = int(r.batch_size), int(r.prompt_size)
        t_pre = r.prompt_time / 1e3
        t_dec = (r.e2e_time - r.prompt_time) / 1e3
        steps = max(1, int(r.n_gen) - 1)
        uc_p, um_p = utilisation(lat, b * p, 0, 0.0, b * p * (p + 1) / 2.0, t_pre)
        uc_d, um_d = utilisation(lat, 0, b, b * r.ctx, 0.0, t_dec / steps)
        tot = t_pre + t_dec
        pts.append((1.0, (uc_p * t_pre + uc_d * t_dec) / tot, (um_p * t_pre + um_d * t_dec) / tot,
                    float(r.average_power) * g.tdp_w))
    return pts


def fit_shared(rows, fields: dict | None = None) -> tuple[dict, dict]:
    """Non-negative least squares of the three power fields on rows (idle_w, tdp_w, (b, u_c,
    u_m, W)) of one GPU or several: one shape, each row's utilisations scaled by its own GPU's
    idle-to-TDP span; returns (fields, {'n', 'median_pct', 'max_pct'}) of the absolute %
    errors. With `fields` given, nothing is fitted: the errors are those of that shape on
    `rows`."""
    from scipy.optimize import lsq_linear

    a = np.array([[b * (tdp - idle), uc * (tdp - idle), um * (tdp - idle)]
                  for idle, tdp, (b, uc, um, _) in rows])
    idle_w = np.array([idle for idle, _, _ in rows])
    y = np.array([p[3] for _, _, p in rows]) - idle_w
    if fields is None:
        x = lsq_linear(a, y, bounds=(0.0, np.inf)).x
        fields = {k: round(float(v), 4) for k, v in zip(POWER_FIELDS, x)}
    pred = a @ np.array([fields[k] for k in POWER_FIELDS]) + idle_w
    ape = np.abs(pred / (y + idle_w) - 1.0) * 100
    return fields, {"n": len(y), "median_pct": round(float(np.median(ape)), 1),
                    "max_pct": round(float(ape.max()), 1)}


def main(argv: list[str] | None = None) -> int:
    """`python -m wrpsim.calibrate.power [mlenergy_dir=DIR] [shared=true|false]`: fit the power
    shapes of the GPUs with measurements (H100 and B200 on ML.ENERGY's fit split, one shared
    shape unless shared=false; A100 on the Splitwise profile) and print them as
    pools/catalog/power.yaml entries, with the in-fit error (per GPU)."""
    import sys

    from wrpsim.cli import apply_flat
    from wrpsim.errors import WrpsimError, boolean
    from wrpsim.io import optional_path
    from wrpsim.pool.catalog import get_gpu
    from wrpsim.validate.__main__ import mlenergy_root
    from wrpsim.validate.mlenergy import mlenergy_cases

    try:
        cfg = apply_flat({"mlenergy_dir": None, "shared": True},
                         sys.argv[1:] if argv is None else argv, "calibrate.power")
        boolean("calibrate.power: shared", cfg["shared"])
        optional_path(cfg["mlenergy_dir"], "mlenergy_dir")  # (0, [] or {} was taken as null)
        root = mlenergy_root(cfg["mlenergy_dir"], "calibrate.power")
        points: dict[str, list] = {"a100-80gb": splitwise_points()}
        if root is not None:
            for case in mlenergy_cases(root):
                if case.split == "fit":
                    b, uc, um = probe_points(case)
                    points.setdefault(case.gpu, []).append((b, uc, um, case.measured["power_w"]))
        shared = [g for g in points if g != "a100-80gb"] if cfg["shared"] else []
        if len(shared) < 2:
            shared = []
        joint = fit_shared([(get_gpu(g).idle_w, get_gpu(g).tdp_w, p)
                            for g in shared for p in points[g]])[0] if shared else None
        for gpu, pts in points.items():
            g = get_gpu(gpu)
            fields, err = fit_shared([(g.idle_w, g.tdp_w, p) for p in pts],
                                     joint if gpu in shared else None)
            note = (f" (shape shared with {', '.join(x for x in shared if x != gpu)})"
                    if gpu in shared else "")
            body = "".join(f"\n  {k}: {v}" for k, v in fields.items())
            print(f"{gpu}:{body}\n  # {err['n']} runs, in-fit median {err['median_pct']} %, "
                  f"max {err['max_pct']} %{note}")
    except WrpsimError as exc:
        print(f"wrpsim: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
