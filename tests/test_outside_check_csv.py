"""The outside check's cases (`docs/experiments/outside_check.csv`, docs/validation.md "An
outside check") are replayable as written: every row names catalog GPUs and models, settings
the script knows, a model that fits the row's tensor parallelism, and numbers where numbers
go — so a typo in a row added by hand fails here, not halfway through a 40 s run."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from wrpsim.pool.catalog import gpus, models

SCRIPT = Path(__file__).parent.parent / "docs" / "experiments" / "outside_check.py"


@pytest.fixture(scope="module")
def oc():
    spec = importlib.util.spec_from_file_location("outside_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_row_is_replayable(oc):
    rows = oc.cases()
    assert len(rows) >= 81
    names = [r["case"] for r in rows]
    assert len(set(names)) == len(names), "case names must be unique"
    for r in rows:
        assert r["gpu"] in gpus(), r["case"]
        assert r["model"] in models(), r["case"]
        assert models()[r["model"]].fits_tp(int(r["tp"])), r["case"]
        assert set(r["settings"].split("+")) <= set(oc.SETTINGS), r["case"]
        for key in ("requests", "prompt_tokens", "output_tokens"):
            assert int(r[key]) >= 1, (r["case"], key)
        assert r["clients"] or r["rate"], r["case"]  # a closed loop, or a constant rate
        for key in ("ttft_ms", "tpot_ms") + (("output_tok_s",) if r["output_tok_s"] else ()):
            v = float(r[key])
            assert math.isfinite(v) and v > 0, (r["case"], key)
        assert r["source"].startswith("github.com/"), r["case"]


def test_a_rate_row_replays_its_arrivals(oc):
    """A rate row's overrides make the workload the page ran: `requests` arrivals exactly
    1 / rate apart (guidellm's constant profile), or, with POISSON (`vllm bench serve
    --request-rate`), exponential gaps of mean 1 / rate (within 5 standard errors); every
    request the row's lengths."""
    import numpy as np

    from tests.conftest import compose_cfg
    from wrpsim.workload import build_workload

    rows = [r for r in oc.cases() if r["rate"]]
    assert any("POISSON" in r["settings"] for r in rows)
    for row in rows:
        df = build_workload(compose_cfg(*oc._load(row))["workload"], seed=0)
        assert len(df) == int(row["requests"]), row["case"]
        assert set(df.prompt_tokens) == {int(row["prompt_tokens"])}, row["case"]
        assert set(df.output_tokens) == {int(row["output_tokens"])}, row["case"]
        gaps, mean = np.diff(df.arrival_s.to_numpy()), 1.0 / float(row["rate"])
        if "POISSON" in row["settings"]:
            assert abs(gaps.mean() - mean) < 5 * mean / np.sqrt(len(gaps)), row["case"]
        else:
            assert np.allclose(gaps, mean), row["case"]
    burst = next(r for r in oc.cases() if not r["rate"])
    assert oc._load(burst)[0] == "workload=closed-loop"
