"""Guarded routing: a real guard call first, its latency counted; block, divert, hand on."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import make_trace
from tests.test_router_fleets import LARGE, SMALL, pool
from wrpsim.errors import ConfigError
from wrpsim.metrics.quality import quality_summary
from wrpsim.router import routing_table
from wrpsim.sim import Simulation

GUARD = "qwen2.5-7b"
CATS = ["math", "code", "chat", "legal", None]


def _cfg(router: dict, guard: dict | None = None) -> dict:
    return {
        "seed": 0, "slo": {"ttft_s": 1.0, "tpot_s": 0.1}, "pue": 1.0,
        "pool": {"name": "guarded", "default_model": SMALL,
                 "pools": {"guard": guard or pool(GUARD, step_s=0.02),
                           "small": pool(SMALL, gpu="a10g-24gb"), "large": pool(LARGE)}},
        "router": {"_target_": "wrpsim.router.GuardedRouter", "guard_model": GUARD, **router},
    }


def _trace(n: int = 50):
    cats = [CATS[i % len(CATS)] for i in range(n)]
    out = [{SMALL: float(i % 2), LARGE: 1.0} for i in range(n)]
    return make_trace(np.arange(n) * 0.5, [100] * n, [20] * n, category=cats, outcomes=out)


def _run(router: dict, trace=None, guard=None):
    sim = Simulation(_cfg(router, guard), _trace() if trace is None else trace)
    req, inst, _ = sim.run()
    q = quality_summary(req, inst, sim.trace, None, answers=sim.router.answers)
    return sim, req.to_pandas().set_index("request_id"), q


def test_the_guard_call_comes_first_and_its_latency_counts():
    sim, df, q = _run({"guard_output_tokens": 6, "guard_instruction_tokens": 40})
    guard, main = df[df["parent_id"].isna()], df[df["parent_id"].notna()]
    assert len(guard) == len(main) == 50 and set(df["status"]) == {"completed"}
    assert set(guard["model"]) == {GUARD} and set(main["model"]) == {SMALL}
    assert (guard["output_tokens"] == 6).all() and (guard["prompt_tokens"] == 140).all()
    assert (main["prompt_tokens"] == 100).all() and (main["output_tokens"] == 20).all()
    for _, row in main.iterrows():  # the main call starts when the guard call finishes
        g = df.loc[int(row["parent_id"])]
        assert row["arrival_s"] == pytest.approx(g["finish_s"])
    e2e = main["finish_s"].to_numpy() - guard["arrival_s"].to_numpy()
    assert q["e2e_final_p50_s"] == pytest.approx(np.median(e2e))
    assert q["e2e_final_p50_s"] > np.median(main["e2e_s"]) + np.median(guard["e2e_s"]) - 1e-9
    assert q["quality"] == pytest.approx(0.5)  # the inner answer: SMALL, right on odd ids
    assert sim.router.verdicts == {"pass": 50}
    # without the guard the same requests finish sooner
    plain = Simulation({**_cfg({}), "router": {"_target_": "wrpsim.router.LeastOutstanding"}},
                       _trace())
    req, inst, _ = plain.run()
    assert quality_summary(req, inst, plain.trace, None)["e2e_final_p50_s"] < \
        q["e2e_final_p50_s"]
    # one side-table row per call
    table = routing_table(sim.router)
    assert table.num_rows == len(df)
    assert sorted(set(table.column("decision").to_pylist())) == ["guard:pass", "pass"]


def test_blocked_categories_are_refused_after_the_guard_and_counted():
    sim, df, q = _run({"block": ["code"], "refusal_quality": 0.0})
    code = [i for i in range(50) if CATS[i % 5] == "code"]
    assert sim.router.verdicts == {"block": 10, "pass": 40}
    assert not (df["parent_id"].isin(code)).any()  # no main call for a blocked request
    for i in code:
        a = sim.router.answers[i]
        assert a.status == "blocked" and a.calls == 1 and a.quality == 0.0
        assert a.finish_s == df.loc[i, "finish_s"] and a.cost_usd == df.loc[i, "cost_usd"] > 0
    expect = np.mean([0.0 if i in code else float(i % 2) for i in range(50)])
    assert q["quality"] == pytest.approx(expect)
    assert q["answer_status"] == {"blocked": 10}
    dec = routing_table(sim.router).column("decision").to_pylist()
    assert dec.count("guard:block") == 10
    # refusing the right thing: a refusal scored 1
    _, _, q1 = _run({"block": ["code"], "refusal_quality": 1.0})
    assert q1["quality"] == pytest.approx(expect + 10 / 50)


def test_a_category_no_request_has_is_warned_about_not_matched_in_silence():
    """`block=[cdoe]` blocked nothing without a word (a review's `moral_scenario` for MMLU's
    `moral_scenarios`); each field naming a category the workload never has is now warned
    about once, with the workload's categories and the nearest one. Known names: silent."""
    from wrpsim.errors import WrpsimWarning

    with pytest.warns(WrpsimWarning) as got:
        sim, _, _ = _run({"block": ["cdoe"], "divert": ["legal"], "domains": ["math", "chta"]})
    lines = [str(w.message) for w in got if "names categor" in str(w.message)]
    assert lines == [
        "router.block names category no request of the workload has: cdoe; its categories: "
        "chat, code, legal, math; did you mean 'code'?",
        "router.domains names category no request of the workload has: chta; its categories: "
        "chat, code, legal, math; did you mean 'chat'?"]
    assert sim.router.verdicts.get("block", 0) == 0
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", WrpsimWarning)
        _run({"block": ["code"]})


def test_divert_and_out_of_domain_go_to_the_divert_model():
    sim, df, q = _run({"divert": ["chat"], "domains": ["math", "code", "chat"],
                       "divert_model": LARGE, "divert_output_tokens": 5})
    assert sim.router.verdicts == {"pass": 20, "divert": 10, "out_of_domain": 20}
    main = df[df["parent_id"].notna()]
    for _, row in main.iterrows():
        cat = CATS[int(row["parent_id"]) % 5]
        if cat in ("math", "code"):
            assert row["model"] == SMALL and row["output_tokens"] == 20
        else:  # chat diverted; legal and unknown are out of domain
            assert row["model"] == LARGE and row["output_tokens"] == 5
    assert q["answer_status"] == {"diverted": 30}
    ans = sim.router.answers
    assert all(a.quality == 1.0 and a.calls == 2 for a in ans.values())  # LARGE is right
    assert q["quality"] == pytest.approx((30 + sum(i % 2 for i in range(50)
                                                    if CATS[i % 5] in ("math", "code"))) / 50)


def test_the_guard_reads_categories_through_its_classifier():
    sim, _, _ = _run({"block": ["code"], "classifier": {"confusion": {"code": {"chat": 1.0}}}})
    assert sim.router.verdicts == {"pass": 50}


def test_inner_routers_route_the_passed_calls_and_keep_their_follow_ups():
    # a mapping: every passed call goes where the inner policy says
    _, df, _ = _run({"inner": {"_target_": "wrpsim.router.UtilityRouter", "lam": 0.0,
                               "models": [LARGE]}})
    assert set(df.loc[df["parent_id"].notna(), "model"]) == {LARGE}
    # a catalog name
    sim, df, _ = _run({"inner": "least-outstanding"})
    assert type(sim.router.inner).__name__ == "LeastOutstanding"
    assert set(df.loc[df["parent_id"].notna(), "model"]) == {SMALL}
    # a cascade (perfect verifier): its escalations are follow-ups of the passed call, and the
    # final answer is the deepest one
    sim, df, q = _run({"inner": {"_target_": "wrpsim.router.CascadeRouter",
                                 "models": [SMALL, LARGE], "verifier": {"tpr": 1.0}}})
    esc = df[df["parent_id"].isin(df.index[df["parent_id"].notna()])]
    assert len(esc) == sim.router.inner.escalated == 25 and set(esc["model"]) == {LARGE}
    assert q["quality"] == 1.0  # SMALL's wrong answers (even ids) escalated to LARGE
    # an ensemble inside the guard: its answers score the requests
    sim, df, q = _run({"inner": {"_target_": "wrpsim.router.EnsembleRouter",
                                 "models": [SMALL, LARGE, LARGE]}})
    assert len(df) == 50 * 4 and q["answer_status"] == {"answered": 50}
    assert q["quality"] == 1.0  # majority of (SMALL, LARGE, LARGE) with LARGE always right
    table = routing_table(sim.router)
    assert table.num_rows == len(df)


def test_a_lost_guard_call_leaves_the_request_unanswered():
    _, df, q = _run({}, guard=pool(GUARD, kv_blocks=2))
    assert (df["status"] == "dropped").all() and len(df) == 50
    assert q["answer_status"] == {"failed": 50} and q["quality"] == 0.0


def test_a_lost_main_call_leaves_the_request_unanswered():
    trace = _trace()
    trace.loc[trace.index % 5 == 0, "prompt_tokens"] = 5000  # too long for the small pool
    cfg = _cfg({})
    cfg["pool"]["pools"]["small"] = pool(SMALL, kv_blocks=100)
    sim = Simulation(cfg, trace)
    req, inst, _ = sim.run()
    q = quality_summary(req, inst, sim.trace, None, answers=sim.router.answers)
    assert q["answer_status"] == {"failed": 10}
    assert q["quality"] == pytest.approx(sum(i % 2 for i in range(50) if i % 5) / 50)


def test_bad_config_is_named():
    with pytest.raises(ConfigError, match=r"router\.guard_model: model 'llama-guard' is served "
                                          r"by no pool; the fleet serves: llama3\.1-70b, "
                                          r"llama3\.1-8b, qwen2\.5-7b"):
        Simulation(_cfg({"guard_model": "llama-guard"}), _trace())
    with pytest.raises(ConfigError, match=r"router\.divert_model: model 'x'"):
        Simulation(_cfg({"divert_model": "x"}), _trace())
    with pytest.raises(ConfigError, match=r"router\.block and router\.divert both list "
                                          r"\['code'\]"):
        Simulation(_cfg({"block": ["code"], "divert": ["code", "chat"]}), _trace())
    with pytest.raises(ConfigError, match=r"router\.inner: unknown router 'nope'; valid "
                                          r"choices: .*cascade.*routellm-threshold"):
        Simulation(_cfg({"inner": "nope"}), _trace())
    with pytest.raises(ConfigError, match=r"router\.inner: router\.strong: model 'gpt5'"):
        Simulation(_cfg({"inner": {"_target_": "wrpsim.router.ThresholdRouter",
                                   "strong": "gpt5"}, "_recursive_": False}), _trace())
    with pytest.raises(ConfigError, match=r"router\.block must be a list of categories"):
        Simulation(_cfg({"block": "code"}), _trace())


def test_cli_blocks_a_category_of_the_shipped_workload(tmp_path):
    cmd = [sys.executable, "-m", "wrpsim", "workload=routellm-mmlu-gsm8k",
           "pool=guarded-mixtral-gpt4like", "router=guarded", "workload.max_requests=150",
           "workload.outcomes.order=file", "router.block=[abstract_algebra]",
           "router.guard_model=llama3.1-8b", f"hydra.run.dir={tmp_path}"]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["answer_status"] == {"blocked": 100}  # the file's first 100 prompts
    req = pq.read_table(tmp_path / "requests.parquet").to_pandas()
    assert len(req) == 150 + 50 and set(req["status"]) == {"completed"}
    guard = req[req["parent_id"].isna()]
    assert set(guard["model"]) == {"llama3.1-8b"} and (guard["output_tokens"] == 8).all()
    routing = pq.read_table(tmp_path / "routing.parquet").to_pandas()
    assert (routing["decision"] == "guard:block").sum() == 100
    p = subprocess.run([*cmd[:-1], "router.guard_model=llama9", f"hydra.run.dir={tmp_path}"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip() == ("wrpsim: error: router.guard_model: model 'llama9' is served "
                                "by no pool; the fleet serves: gpt4-class, llama3.1-8b, "
                                "mixtral-8x7b")
