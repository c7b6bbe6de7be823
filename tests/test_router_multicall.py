"""Multi-call routing: fan-out ensembles (vote, judge, fusion) and chains, on real rows."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import compose_cfg, make_trace
from tests.test_router_fleets import LARGE, SMALL, pool, quality_trace, two_model_cfg
from wrpsim.errors import ConfigError
from wrpsim.metrics.quality import quality_summary
from wrpsim.router.multicall import fusion_quality, judge_quality, majority
from wrpsim.sim import Simulation

ROOT = Path(__file__).resolve().parents[1]
OUTCOMES = ROOT / "routers" / "data" / "routellm_outcomes_mixtral_vs_gpt4.csv"
MIX, GPT = "mixtral-8x7b", "gpt4-class"
N = 400  # a slice of the shipped workload, in file order: request i = outcome row i


def _shipped(router: str, *overrides: str, n: int = N):
    cfg = compose_cfg("workload=routellm-mmlu-gsm8k", "pool=two-model-mixtral-gpt4like",
                      f"router={router}", f"workload.max_requests={n}",
                      "workload.outcomes.order=file", *overrides)
    sim = Simulation(cfg)
    req, inst, end = sim.run()
    q = quality_summary(req, inst, sim.trace, sim.fleet.specs, sim.pue, end,
                        answers=sim.router.answers)
    return sim, req.to_pandas(), q


def _csv(n: int = N) -> dict[str, np.ndarray]:
    """Replayed correctness straight from the shipped file: {model: 0/1 per prompt}."""
    df = pd.read_csv(OUTCOMES).iloc[:n]
    return {MIX: df["correct_small"].astype(float).to_numpy(),
            GPT: df["correct_large"].astype(float).to_numpy(),
            "prompt_tokens": np.ceil(df["prompt_chars"].to_numpy() / 4).astype(int)}


def _roots(df: pd.DataFrame) -> pd.Series:
    """Root original of every row (follow-ups of follow-ups included)."""
    parent = dict(zip(df["request_id"], df["parent_id"]))

    def root(i):
        while not pd.isna(parent[i]):
            i = int(parent[i])
        return i
    return df["request_id"].map(root)


def test_vote_closed_forms():
    assert majority([1.0, 0.0, 1.0]) == 1.0 and majority([0.0, 1.0, 0.0]) == 0.0
    assert majority([1.0, 0.0]) == 1.0 and majority([0.0, 1.0]) == 0.0  # tie: the first call
    assert majority([0.6] * 3) == pytest.approx(0.6**3 + 3 * 0.6**2 * 0.4)  # 0.648
    # two calls: a strict majority is both right; a tie whose first is right is p1·(1 − p2)
    assert majority([0.7, 0.4]) == pytest.approx(0.7 * 0.4 + 0.7 * 0.6)
    assert majority([0.9, 0.5, 0.2, 0.6]) == pytest.approx(sum(
        np.prod([p if b else 1 - p for p, b in zip([0.9, 0.5, 0.2, 0.6], bits)])
        for bits in np.ndindex(2, 2, 2, 2)
        if sum(bits) > 2 or (sum(bits) == 2 and bits[0])))
    assert judge_quality([1.0, 1.0], 0.3) == 1.0 and judge_quality([0.0, 0.0], 0.9) == 0.0
    assert judge_quality([1.0, 0.0, 0.0], 0.8) == pytest.approx(0.8)
    assert judge_quality([0.5, 0.5], 0.8) == pytest.approx(0.25 + 0.8 * 0.5)
    assert fusion_quality([1.0, 1.0, 0.0], 1.0, 0.2) == 1.0  # both right
    assert fusion_quality([0.0, 0.0, 1.0], 1.0, 0.7) == pytest.approx(0.7)  # they disagree
    assert fusion_quality([0.0, 0.0, 1.0], 0.0, 0.7) == 0.0


@pytest.mark.parametrize("models", [[MIX, GPT, GPT], [MIX, MIX, GPT], [GPT, MIX]])
def test_ensemble_on_the_shipped_outcomes_costs_its_calls_and_votes_their_outcomes(models):
    sim, df, q = _shipped("ensemble-vote", f"router.models=[{','.join(models)}]")
    truth = _csv()
    k = len(models)
    assert len(df) == k * N and set(df["status"]) == {"completed"}
    df["root"] = _roots(df)
    answers = sim.router.answers
    assert sorted(answers) == list(range(N))
    expect = []
    for i, calls in df.groupby("root"):
        # every call is a real row: its model, the prompt's own length, a latency, a cost
        assert sorted(calls["model"]) == sorted(models)
        assert (calls["prompt_tokens"] == truth["prompt_tokens"][i]).all()
        assert (calls["e2e_s"] > 0).all() and (calls["cost_usd"] > 0).all()
        assert (calls["arrival_s"] == calls["arrival_s"].iloc[0]).all()  # in parallel
        a = answers[i]
        assert a.calls == k and a.status == "answered"
        assert a.cost_usd == pytest.approx(calls["cost_usd"].sum(), rel=1e-12)
        assert a.finish_s == calls["finish_s"].max()
        # majority of the replayed outcomes, computed here from the file (ties: first call)
        ys = [truth[m][i] for m in models]
        right = sum(ys)
        expect.append(1.0 if 2 * right > k else (ys[0] if 2 * right == k else 0.0))
        assert a.quality == expect[-1]
    assert q["quality"] == pytest.approx(np.mean(expect))
    # the run's busy cost is the sum of every call's cost
    assert df["cost_usd"].sum() == pytest.approx(sum(a.cost_usd for a in answers.values()))
    assert q["cost_per_1k_requests_usd"] == pytest.approx(df["cost_usd"].sum() / N * 1000)
    assert q["answer_status"] == {"answered": N}
    e2e = [answers[i].finish_s - df.loc[i, "arrival_s"] for i in range(N)]
    assert q["e2e_final_p50_s"] == pytest.approx(np.percentile(e2e, 50))


def test_a_vote_of_one_model_replays_that_model_at_more_calls_and_cost():
    _, one, q1 = _shipped("ensemble-vote", "router.k=1")
    _, three, q3 = _shipped("ensemble-vote", "router.k=3")
    assert q1["quality"] == q3["quality"] == pytest.approx(_csv()[MIX].mean())
    assert len(three) == 3 * len(one)
    # three times the calls; less than three times the busy cost: the parallel calls of one
    # request share their prefill and decode iterations (batching)
    assert one["cost_usd"].sum() < three["cost_usd"].sum() < 3 * one["cost_usd"].sum()


@pytest.mark.parametrize("aggregate", ["judge", "fusion"])
def test_judge_and_fusion_call_an_aggregator_on_the_candidates_answers(aggregate):
    acc = 0.7
    sim, df, q = _shipped(f"ensemble-{aggregate}", f"router.models=[{MIX},{GPT}]",
                          f"router.{aggregate}_accuracy={acc}", "router.instruction_tokens=50")
    truth = _csv()
    df["root"] = _roots(df)
    answers = sim.router.answers
    expect = []
    for i, calls in df.groupby("root"):
        assert len(calls) == 3
        cands, agg = calls.iloc[:2], calls.iloc[2]  # ids: the root, its follow-up, then agg
        assert agg["model"] == GPT and agg["parent_id"] == i
        assert agg["prompt_tokens"] == truth["prompt_tokens"][i] + \
            cands["output_tokens"].sum() + 50
        assert agg["output_tokens"] == (16 if aggregate == "judge" else calls.iloc[0][
            "output_tokens"])
        assert agg["arrival_s"] == pytest.approx(cands["finish_s"].max())
        a = answers[i]
        assert a.finish_s == agg["finish_s"] and a.calls == 3
        assert a.cost_usd == pytest.approx(calls["cost_usd"].sum(), rel=1e-12)
        # judge: both candidates right 1, none 0, they disagree: acc. fusion: the vote of
        # [s, g] is s (a tie goes to the first call), the aggregator's own answer is g; they
        # agree -> that, disagree -> acc: the same numbers here
        s, g = truth[MIX][i], truth[GPT][i]
        expect.append(1.0 if s and g else (0.0 if not (s or g) else acc))
        assert a.quality == pytest.approx(expect[-1])
    assert q["quality"] == pytest.approx(np.mean(expect))
    assert q["e2e_final_p50_s"] > np.median(df.loc[df["parent_id"].isna(), "e2e_s"])


@pytest.mark.parametrize("extra", [0, 32])
def test_chain_prompts_each_round_with_the_previous_prompt_and_answer(extra):
    sim, df, q = _shipped("chain-refine", f"router.models=[{MIX},{GPT},{GPT}]",
                          f"router.instruction_tokens={extra}", n=200)
    truth = _csv(200)
    by_id = df.set_index("request_id")
    df["root"] = _roots(df)
    answers = sim.router.answers
    for i, calls in df.groupby("root"):
        assert list(calls["model"]) == [MIX, GPT, GPT]
        first, second, third = (by_id.loc[r] for r in calls["request_id"])
        assert second["parent_id"] == i and third["parent_id"] == calls["request_id"].iloc[1]
        assert second["prompt_tokens"] == first["prompt_tokens"] + first["output_tokens"] + extra
        assert third["prompt_tokens"] == second["prompt_tokens"] + second["output_tokens"] + \
            extra
        assert second["arrival_s"] == pytest.approx(first["finish_s"])
        assert second["output_tokens"] == first["output_tokens"] == third["output_tokens"]
        a = answers[i]
        assert a.quality == truth[GPT][i] and a.finish_s == third["finish_s"]
        assert a.cost_usd == pytest.approx(calls["cost_usd"].sum(), rel=1e-12)
    assert q["quality"] == pytest.approx(truth[GPT].mean())
    assert q["followups_per_request"] == 2.0


def _tiny_kv(model):
    return pool(model, kv_blocks=2)  # 32 tokens: a 64-token prompt never fits


def _run(router, trace, small=None, large=None):
    sim = Simulation(two_model_cfg(router, small=small, large=large), trace)
    req, inst, _ = sim.run()
    q = quality_summary(req, inst, sim.trace, None, answers=sim.router.answers)
    return sim, req.to_pandas(), q


def test_lost_calls_resolve_every_answer_exactly_once():
    trace = quality_trace(n=50)
    out = trace["outcomes"].tolist()
    ens = {"_target_": "wrpsim.router.EnsembleRouter", "models": [SMALL, LARGE, SMALL]}
    # the large pool cannot hold any prompt: its call is dropped, the vote is over the other two
    sim, df, q = _run(ens, trace, large=_tiny_kv(LARGE))
    assert (df["status"] == "dropped").sum() == 50
    assert not sim.router._open and not sim.router._calls
    answers = sim.router.answers
    for i in range(50):
        a = answers[i]
        assert a.status == "partial" and a.calls == 3
        assert a.quality == out[i][SMALL]  # two SMALL calls agree
    assert q["quality"] == pytest.approx(np.mean([o[SMALL] for o in out]))
    # every candidate lost: the answer fails, scored 0, once
    sim, df, q = _run({**ens, "models": [LARGE, LARGE]}, trace, large=_tiny_kv(LARGE))
    assert {a.status for a in sim.router.answers.values()} == {"failed"}
    assert q["quality"] == 0.0 and q["quality_requests"] == 50 and q["e2e_final_p50_s"] is None
    # the judge is lost: failed too, after its candidates completed
    judge = {**ens, "aggregate": "judge", "models": [SMALL, SMALL],
             "aggregator_model": LARGE}
    sim, df, q = _run(judge, trace, large=_tiny_kv(LARGE))
    assert {a.status for a in sim.router.answers.values()} == {"failed"}
    assert (df["status"] == "completed").sum() == 100 and (df["status"] == "dropped").sum() == 50
    assert q["quality"] == 0.0 and q["answer_status"] == {"failed": 50}
    # a lost chain round fails its answer
    chain = {"_target_": "wrpsim.router.ChainRouter", "models": [SMALL, LARGE]}
    sim, df, q = _run(chain, trace, large=_tiny_kv(LARGE))
    assert len(sim.router.answers) == 50 and q["answer_status"] == {"failed": 50}


def test_a_vote_with_a_lost_call_finishes_with_its_last_surviving_call():
    # the LARGE call is dropped at admission (t = 0): the answer is the SMALL calls' vote
    trace = make_trace([0.0], [64], [8], outcomes=[{SMALL: 1.0, LARGE: 0.0}])
    ens = {"_target_": "wrpsim.router.EnsembleRouter", "models": [SMALL, LARGE, SMALL]}
    sim, df, _ = _run(ens, trace, large=_tiny_kv(LARGE))
    a = sim.router.answers[0]
    assert a.finish_s == df.loc[df["status"] == "completed", "finish_s"].max()
    assert a.quality == 1.0


@pytest.mark.parametrize("policy", ["drop", "reroute"])
def test_calls_lost_to_an_instance_failure_resolve_their_answers(policy):
    trace = quality_trace(n=200, gap_s=0.01)
    out = trace["outcomes"].tolist()
    models = [SMALL, LARGE, LARGE]
    cfg = two_model_cfg({"_target_": "wrpsim.router.EnsembleRouter", "models": models},
                        large=pool(LARGE, count=2, step_s=0.05))
    cfg["failures"] = {"policy": policy,
                       "events": [{"pool": "large", "instance": 0, "at_s": 0.5, "down_s": 1.0}]}
    sim = Simulation(cfg, trace)
    req, inst, _ = sim.run()
    df = req.to_pandas()
    df["root"] = _roots(df)
    answers = sim.router.answers
    assert sorted(answers) == list(range(200)) and not sim.router._calls
    lost = df["drop_reason"] == "instance_failed"
    if policy == "drop":
        assert lost.sum() > 10
    else:
        assert not lost.any() and (df["attempts"] > 1).sum() > 10
    for i, calls in df.groupby("root"):
        a = answers[i]
        assert a.cost_usd == pytest.approx(calls["cost_usd"].sum(), rel=1e-12)
        done = calls[calls["status"] == "completed"].sort_values("request_id")
        assert a.status == ("answered" if len(done) == 3 else "partial")
        ys = [out[i][m] for m in done["model"]]
        assert a.quality == majority(ys)
    q = quality_summary(req, inst, sim.trace, None, answers=answers)
    assert q["answer_status"].get("partial", 0) == (df.loc[lost, "root"].nunique())


def test_tasks_open_at_the_horizon_count_as_unanswered():
    trace = quality_trace(n=20, gap_s=0.0)
    cfg = two_model_cfg({"_target_": "wrpsim.router.ChainRouter", "models": [SMALL, LARGE]},
                        small=pool(SMALL, step_s=1.0))
    cfg["sim"] = {"horizon_s": 2.0}
    sim = Simulation(cfg, trace)
    req, inst, _ = sim.run()
    answers = sim.router.answers
    assert {a.status for a in answers.values()} == {"pending"}
    q = quality_summary(req, inst, sim.trace, None, answers=answers)
    assert q["quality"] == 0.0 and q["answer_status"] == {"pending": 20}


def test_expected_accuracies_vote_as_independent_calls():
    trace = make_trace(np.arange(30) * 0.1, [32] * 30, [4] * 30,
                       outcomes=[{SMALL: 0.6, LARGE: 0.9}] * 30)
    _, _, q = _run({"_target_": "wrpsim.router.EnsembleRouter", "k": 3}, trace)
    assert q["quality"] == pytest.approx(0.648)  # Condorcet: 3 independent calls at 0.6


def test_decisions_label_every_call():
    sim, df, _ = _run({"_target_": "wrpsim.router.EnsembleRouter", "aggregate": "fusion",
                       "k": 2, "instruction_tokens": 0}, quality_trace(n=10))
    labels = {d[0]: d[3] for d in sim.router.decisions}
    assert sorted(labels) == sorted(df["request_id"])
    assert sorted(labels.values()) == ["call"] * 20 + ["fusion"] * 10


def test_bad_config_is_named():
    trace = quality_trace(n=5)
    ens = "wrpsim.router.EnsembleRouter"
    with pytest.raises(ConfigError, match=r"router\.aggregate: unknown value 'best'; valid "
                                          r"choices: fusion, judge, vote"):
        Simulation(two_model_cfg({"_target_": ens, "aggregate": "best"}), trace)
    with pytest.raises(ConfigError, match=r"router\.models: model 'gpt5' is served by no pool; "
                                          r"the fleet serves: llama3\.1-70b, llama3\.1-8b"):
        Simulation(two_model_cfg({"_target_": ens, "models": [SMALL, "gpt5"]}), trace)
    with pytest.raises(ConfigError, match=r"router\.aggregator_model: model 'x'"):
        Simulation(two_model_cfg({"_target_": ens, "aggregate": "judge",
                                  "aggregator_model": "x"}), trace)
    with pytest.raises(ConfigError, match=r"judge needs at least two calls"):
        Simulation(two_model_cfg({"_target_": ens, "aggregate": "judge", "k": 1}), trace)
    with pytest.raises(ConfigError, match=r"router\.k must be"):
        Simulation(two_model_cfg({"_target_": ens, "k": 0}), trace)
    with pytest.raises(ConfigError, match=r"router\.models: model 'y'"):
        Simulation(two_model_cfg({"_target_": "wrpsim.router.ChainRouter",
                                  "models": [SMALL, "y"]}), trace)


def test_cli_runs_the_catalog_entries_and_reports_bad_values_in_one_line(tmp_path):
    base = [sys.executable, "-m", "wrpsim", "workload=routellm-mmlu-gsm8k",
            "pool=two-model-mixtral-gpt4like", "workload.max_requests=100",
            f"hydra.run.dir={tmp_path}"]
    p = subprocess.run([*base, "router=ensemble-judge"], capture_output=True, text=True,
                       cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["answer_status"] == {"answered": 100}
    p = subprocess.run([*base, "router=ensemble-vote", "router.aggregate=majority"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip() == ("wrpsim: error: router.aggregate: unknown value 'majority'; "
                                "valid choices: fusion, judge, vote")


def test_summary_json_scores_the_answers(tmp_path):
    from wrpsim.sim import run

    cfg = two_model_cfg({"_target_": "wrpsim.router.EnsembleRouter", "k": 3})
    summary = run(cfg, tmp_path, trace=quality_trace(n=30))
    assert summary["answer_status"] == {"answered": 30}
    assert summary["followups_per_request"] == 2.0
    assert not math.isnan(summary["quality"])


def test_quality_summary_scores_answers_by_their_root_original():
    from tests.test_router_metrics import _instances, _requests
    from wrpsim.router import Answer
    from wrpsim.workload import Request

    req = _requests([  # 0: three calls; 1: one call; 2: a call answered by a guard's refusal
        (0, None, "a", "completed", 0.0, 1.0), (3, 0, "b", "completed", 0.0, 2.0),
        (4, 3, "c", "completed", 2.0, 4.0),
        (1, None, "a", "completed", 1.0, 1.5),
        (2, None, "g", "completed", 2.0, 2.5), (5, 2, "a", "dropped", 2.5, math.nan),
    ])
    reqs = [Request(i, 0.0, 10, 5, outcomes={"a": 0.0, "b": 1.0, "c": 1.0}) for i in range(3)]
    inst = _instances([1.0], [1], [1.0], [1.0])
    base = quality_summary(req, inst, reqs, None)
    assert base["quality"] == pytest.approx(0.5)  # final calls: c, a, and g (no outcome: out)
    # the answer of task 0 keyed by a follow-up (under a wrapping router), the deeper key wins
    answers = {0: Answer(0.0, 9.0, 3, 0.0, "answered"), 3: Answer(0.5, 3.0, 2, 0.0, "partial"),
               2: Answer(0.0, math.nan, 2, 0.0, "failed")}
    q = quality_summary(req, inst, reqs, None, answers=answers)
    assert q["quality"] == pytest.approx((0.5 + 0.0 + 0.0) / 3)
    assert q["quality_answered"] == pytest.approx(0.25)  # 0.5 and task 1's own 0.0
    assert q["answer_status"] == {"failed": 1, "partial": 1}
    assert q["e2e_final_p50_s"] == pytest.approx(np.median([3.0, 0.5]))  # 3.0 - 0, 1.5 - 1
    assert "answer_status" not in base


def test_a_model_choosing_router_on_a_one_model_fleet_says_it_has_nothing_to_choose():
    """An ensemble on the default one-model fleet ran silently: four calls a request, all to
    the same model, quality null. Every router whose decision is the model says so once; a
    router that places requests (least outstanding) does not."""
    import warnings

    from wrpsim.errors import WrpsimWarning

    cfg = two_model_cfg({"_target_": "wrpsim.router.EnsembleRouter"})
    cfg["pool"]["pools"] = {"large": pool(LARGE)}
    with pytest.warns(WrpsimWarning, match=r"the ensemble_vote router chooses which model answers, "
                                           r"and the fleet serves one \(llama3\.1-70b\): every "
                                           r"call goes to it"):
        Simulation(cfg, make_trace([0.0, 0.5], [100, 100], [10, 10]))
    cfg["router"] = {"_target_": "wrpsim.router.LeastOutstanding"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", WrpsimWarning)
        Simulation(cfg, make_trace([0.0, 0.5], [100, 100], [10, 10]))
