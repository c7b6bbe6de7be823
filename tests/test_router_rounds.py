"""Router-R1-style multi-round routing (wrpsim.router.rounds): one round is the utility router's
single-model choice, every round is a real call, stops happen for every reason, a larger budget
never lowers quality and is never exceeded, the answer is the best-judged round's outcome, and
bad config values are one line."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import compose_cfg
from tests.test_router_fleets import quality_trace, two_model_cfg
from tests.test_router_multicall import _roots
from wrpsim.errors import ConfigError
from wrpsim.metrics.quality import quality_summary
from wrpsim.router.learned import LearnedModel
from wrpsim.sim import Simulation

ROOT = Path(__file__).resolve().parents[1]
TEST_RUN = ("workload=llmrouter-14-tasks-test", "pool=six-model-llmrouter")
N = 300


def _run(router: str, *overrides: str, n: int = N):
    sim = Simulation(compose_cfg(f"router={router}", *TEST_RUN, f"workload.max_requests={n}",
                                 *overrides))
    req, inst, end = sim.run()
    q = quality_summary(req, inst, sim.trace, sim.fleet.specs, sim.pue, end,
                        answers=getattr(sim.router, "answers", None))
    df = req.to_pandas()
    df["root"] = _roots(df)
    return sim, df, q


@pytest.mark.parametrize("limit", ["router.max_rounds=1", "router.budget_usd=0"])
def test_one_round_or_a_zero_budget_is_the_utility_routers_single_model_choice(limit):
    _, util, qu = _run("learned-utility")
    sim, r1, qr = _run("router-r1", limit)
    assert r1["parent_id"].isna().all() and len(r1) == N  # no second round
    assert list(r1["model"]) == list(util["model"])
    assert qr["quality"] == pytest.approx(qu["quality"], abs=1e-12)
    assert qr["token_cost_per_1k_requests_usd"] == pytest.approx(
        qu["token_cost_per_1k_requests_usd"], rel=1e-12)
    assert sim.router.rounds == {1: N}
    assert sim.router.stops[("rounds" if "max_rounds" in limit else "budget")] == N
    assert sim.router.verifier.checks == 0  # nothing left to decide: never judged


def _token_cost(sim, df: pd.DataFrame) -> pd.Series:
    book = sim.router.book
    return pd.Series([book.cost(m, p, o) for m, p, o in
                      zip(df["model"], df["prompt_tokens"], df["output_tokens"])], index=df.index)


BUDGETS = [0.0, 1e-4, 3e-4, 1e-3, None]


def test_a_larger_budget_never_lowers_quality_and_is_never_exceeded():
    qualities, calls = [], []
    for b in BUDGETS:
        sim, df, q = _run("router-r1", f"router.budget_usd={'null' if b is None else b}")
        df["book_usd"] = _token_cost(sim, df)
        for _, rounds in df.groupby("root"):
            first = rounds.loc[rounds["parent_id"].isna(), "book_usd"].iloc[0]
            if b is not None:
                assert rounds["book_usd"].sum() <= max(b, first) * (1 + 1e-9)
        qualities.append(q["quality"])
        calls.append(len(df))
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(qualities)), qualities
    assert calls == sorted(calls) and calls[0] == N < calls[-1]
    assert qualities[-1] > qualities[0] + 0.02  # the rounds are worth something here


def test_every_round_is_a_real_call_and_the_answer_is_the_best_judged_one():
    sim, df, q = _run("router-r1", "router.budget_usd=null", "router.instruction_tokens=20")
    learned = LearnedModel.load(ROOT / "routers" / "data" / "llmrouter_predictor.json")
    tau, skill = sim.router.verifier.threshold, sim.router.verifier.skill
    trace = sim.trace.to_frame()
    answers = sim.router.answers
    multi = 0
    for i, rounds in df.groupby("root"):
        rounds = rounds.sort_values("request_id")
        models = list(rounds["model"])
        assert len(set(models)) == len(models) <= sim.router.max_rounds  # never re-asked
        for prev, nxt in zip(rounds.iloc[:-1].itertuples(), rounds.iloc[1:].itertuples()):
            assert nxt.parent_id == prev.request_id
            assert nxt.prompt_tokens == prev.prompt_tokens + prev.output_tokens + 20
            assert nxt.output_tokens == prev.output_tokens
            assert nxt.arrival_s == pytest.approx(prev.finish_s)
        a = answers[i]
        assert a.calls == len(rounds) and a.status == "answered"
        assert a.cost_usd == pytest.approx(rounds["cost_usd"].sum(), rel=1e-12)
        assert a.finish_s == rounds["finish_s"].iloc[-1]
        row = trace.iloc[i]
        ys = [float(row["outcomes"][m]) for m in models]
        if len(models) == 1:
            assert a.quality == ys[0]
            continue
        multi += 1
        # the verifier's confidence, recomputed from the shipped predictor and outcome file
        conf = []
        for m, y in zip(models, ys):
            p = min(max(learned.predict(m, row["category"], row["prompt_tokens"], 0.5), 1e-4),
                    1 - 1e-4)
            conf.append(1 / (1 + math.exp(-(math.log(p / (1 - p)) + skill * (2 * y - 1)))))
        # every round but the last was rejected; the kept answer is the most confident one
        assert all(c < tau for c in conf[:-1])
        best = max(range(len(conf)), key=lambda k: (conf[k], k))
        assert a.quality == ys[best]
    assert multi > 50
    assert q["followups_per_request"] == pytest.approx((len(df) - N) / N)


def test_stop_decisions_happen_for_every_reason_and_are_counted():
    sim, df, q = _run("router-r1", n=500)
    stops, rounds = sim.router.stops, sim.router.rounds
    # six candidates and three rounds: never out of models; every other reason happens
    assert stops.pop("models") == 0 and all(v > 0 for v in stops.values()), stops
    stops = sim.router.stops
    assert sum(stops.values()) == sum(rounds.values()) == 500
    assert sum(k * v for k, v in rounds.items()) == len(df)
    f = sim.router.summary_figures()
    assert f["rounds_stops"] == stops and f["rounds_mean"] == pytest.approx(len(df) / 500)
    assert 0 < f["verifier_false_accept_rate"] < 1 and 0 < f["verifier_false_reject_rate"] < 1
    assert q["answer_status"] == {"answered": 500}


def test_a_lost_round_fails_its_task():
    from tests.test_router_fleets import LARGE, SMALL, pool

    trace = quality_trace(n=20)
    # the small model cannot hold any prompt: round 0 (the best predicted, SMALL) is lost
    cfg = two_model_cfg({"_target_": "wrpsim.router.RoundRouter", "models": [SMALL, LARGE],
                         "predictor": {"table": None, "default": 0.5}},
                        small=pool(SMALL, gpu="a10g-24gb", kv_blocks=2))
    sim = Simulation(cfg, trace)
    sim.run()
    assert {a.status for a in sim.router.answers.values()} == {"failed"}
    assert not sim.router._state and not sim.router._calls


@pytest.mark.parametrize(("router", "message"), [
    ({"budget_usd": -1}, r"router\.budget_usd must be a number >= 0, got -1"),
    ({"max_rounds": 0}, r"router\.max_rounds must be a number >= 1, got 0"),
    ({"max_rounds": 1.5}, r"router\.max_rounds must be an integer >= 1, got 1\.5"),
    ({"models": ["llama3.1-8b", "gpt5"]},
     r"router\.models: model 'gpt5' is served by no pool; the fleet serves: "),
    ({"verifier": {"threshold": 1.2}},
     r"router\.verifier\.threshold must be a number >= 0 and <= 1, got 1\.2"),
    ({"verifier": {"kind": "llm"}},
     r"router\.verifier\.kind: unknown value 'llm'; valid choices: confidence, oracle-rates"),
    ({"lam": -0.1}, r"router\.lam must be a number >= 0"),
])
def test_bad_config_is_named(router, message):
    with pytest.raises(ConfigError, match=message):
        Simulation(two_model_cfg({"_target_": "wrpsim.router.RoundRouter", **router}),
                   quality_trace(n=5))


@pytest.mark.parametrize(("override", "line"), [
    ("router.budget_usd=-0.5", "router.budget_usd must be a number >= 0, got -0.5"),
    ("router.models=[llama3.1-8b,gpt5]", "router.models: model 'gpt5' is served by no pool; "
     "the fleet serves: codegemma-7b, gemma-2-9b, llama3.1-8b, mistral-7b-v0.3, "
     "nemotron-51b-class, qwen2.5-7b"),
])
def test_cli_bad_values_are_one_line(tmp_path, override, line):
    p = subprocess.run([sys.executable, "-m", "wrpsim", "router=router-r1", *TEST_RUN, override,
                        f"hydra.run.dir={tmp_path}"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip() == f"wrpsim: error: {line}"


def test_same_config_same_bytes(tmp_path):
    from wrpsim.sim import run

    cfg = compose_cfg("router=router-r1", *TEST_RUN, "workload.max_requests=100",
                      "router.verifier.noise_sd=1")
    run(cfg, tmp_path / "a")
    run(cfg, tmp_path / "b")
    for name in ("requests.parquet", "routing.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    a = (tmp_path / "a" / "summary.json").read_text().splitlines()
    b = (tmp_path / "b" / "summary.json").read_text().splitlines()
    assert [x for x in a if "wall" not in x] == [x for x in b if "wall" not in x]
    assert np.isfinite(float(next(x for x in a if '"quality"' in x).split(":")[1].strip(" ,")))


def test_out_of_models_stops_and_ties_keep_the_later_answer():
    from tests.test_router_fleets import LARGE, SMALL

    trace = quality_trace(n=40)
    # both models predicted at 0.5 (round 0: the first listed); every answer judged at 0.2 and
    # rejected (threshold 1): the second round is worth 0.3, then no model is left
    cfg = two_model_cfg({"_target_": "wrpsim.router.RoundRouter", "models": [SMALL, LARGE],
                         "predictor": {"default": 0.5},
                         "verifier": {"threshold": 1.0, "predictor": {"default": 0.2}}})
    sim = Simulation(cfg, trace)
    req, _, _ = sim.run()
    assert sim.router.stops["models"] == 40 and sim.router.rounds == {2: 40}
    assert req.column("model").to_pylist() == [SMALL] * 40 + [LARGE] * 40
    out = trace["outcomes"].tolist()
    assert [sim.router.answers[i].quality for i in range(40)] == [o[LARGE] for o in out]
