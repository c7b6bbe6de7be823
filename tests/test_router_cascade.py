"""Cascades: escalation on flagged answers, cost never below the cheap model alone, abort."""

from __future__ import annotations

import pytest

from tests.conftest import compose_cfg, make_trace
from tests.test_router_fleets import LARGE, SMALL, pool, quality_trace, two_model_cfg
from wrpsim.errors import ConfigError
from wrpsim.metrics.quality import quality_summary
from wrpsim.sim import Simulation


def _cascade(**kw):
    return {"_target_": "wrpsim.router.CascadeRouter", **kw}


def _run(cfg, trace):
    sim = Simulation(cfg, trace)
    req, inst, end = sim.run()
    return sim, req, quality_summary(req, inst, sim.trace, sim.fleet.specs, 1.0, end,
                                     judged=sim.router.judged_quality
                                     if hasattr(sim.router, "judged_quality") else None)


def test_perfect_verifier_escalates_exactly_the_wrong_cheap_answers():
    trace = quality_trace(n=200, p_small=0.4, p_large=0.9)
    sim, req, q = _run(two_model_cfg(_cascade(verifier={"tpr": 1.0, "fpr": 0.0})), trace)
    rows = req.to_pylist()
    wrong = {i for i, o in enumerate(trace["outcomes"]) if o[SMALL] == 0.0}
    follow = [r for r in rows if r["parent_id"] is not None]
    assert {r["parent_id"] for r in follow} == wrong
    assert all(r["model"] == LARGE for r in follow)
    for r in follow:  # the escalation arrives when the cheap attempt finishes
        assert r["arrival_s"] == pytest.approx(rows[r["parent_id"]]["finish_s"])
    # final answer: the cheap one where right, the large one where escalated
    expect = sum(o[SMALL] if i not in wrong else o[LARGE]
                 for i, o in enumerate(trace["outcomes"])) / 200
    assert q["quality"] == pytest.approx(expect)
    assert q["followups_per_request"] == pytest.approx(len(wrong) / 200)
    assert sim.router.escalated == len(wrong)


@pytest.mark.parametrize(("tpr", "fpr"), [(1.0, 0.0), (0.8, 0.1), (0.0, 0.0), (1.0, 1.0)])
def test_a_cascade_never_costs_less_than_the_cheap_model_alone(tpr, fpr):
    trace = quality_trace(n=300, p_small=0.5, p_large=0.9)
    _, _, cheap = _run(two_model_cfg({"_target_": "wrpsim.router.UtilityRouter", "lam": 0.0,
                                      "models": [SMALL]}), trace)
    _, _, casc = _run(two_model_cfg(_cascade(verifier={"tpr": tpr, "fpr": fpr})), trace)
    for key in ("cost_per_1k_requests_usd", "token_cost_per_1k_requests_usd",
                "energy_per_request_j"):
        assert casc[key] >= cheap[key] - 1e-12
    assert casc["quality"] >= cheap["quality"] - 1e-12


def test_cascade_on_the_routellm_fleet_costs_more_than_mixtral_alone():
    base = ("workload=routellm-mmlu-gsm8k", "pool=two-model-mixtral-gpt4like",
            "workload.max_requests=2000")
    out = {}
    for name, ov in (("cheap", ("workload.model=mixtral-8x7b",)), ("cascade", ("router=cascade",))):
        sim = Simulation(compose_cfg(*base, *ov))
        req, inst, end = sim.run()
        out[name] = quality_summary(req, inst, sim.trace, sim.fleet.specs, sim.pue, end)
    assert out["cascade"]["cost_per_1k_requests_usd"] > out["cheap"]["cost_per_1k_requests_usd"]
    assert out["cascade"]["token_cost_per_1k_requests_usd"] > \
        out["cheap"]["token_cost_per_1k_requests_usd"]
    assert out["cascade"]["quality"] > out["cheap"]["quality"]
    assert out["cascade"]["e2e_final_p99_s"] > out["cheap"]["e2e_final_p99_s"]


def test_pool_aware_abort_skips_the_saturated_cheap_pool():
    # the cheap pool is slow (1 s per step, one sequence at a time): it saturates at once
    small = pool(SMALL, gpu="a10g-24gb", step_s=1.0, max_seqs=1)
    cfg = two_model_cfg(_cascade(models=[SMALL, LARGE], abort_when_saturated=True,
                                 saturation_outstanding=2,
                                 verifier={"tpr": 0.0, "fpr": 0.0}), small=small)
    trace = make_trace([0.01 * i for i in range(10)], [16] * 10, [4] * 10)
    sim, req, _ = _run(cfg, trace)
    models = [r["model"] for r in req.to_pylist()]
    assert models[:2] == [SMALL, SMALL] and set(models[2:]) == {LARGE}
    assert sim.router.aborted == 8
    assert [d[3] for d in sim.router.decisions][:3] == ["attempt", "attempt", "abort"]


def test_unknown_outcomes_fall_back_to_the_prior_and_bad_config_is_named():
    trace = make_trace([0.0, 0.1], [16, 16], [4, 4])
    cfg = two_model_cfg(_cascade(predictor={"default": 0.0}))  # prior 0: always wrong
    sim, req, _ = _run(cfg, trace)
    assert sim.router.escalated == 2  # the default verifier flags every wrong answer
    assert sum(r["parent_id"] is not None for r in req.to_pylist()) == 2
    with pytest.raises(ConfigError, match=r"router\.verifier: unknown key\(s\) \['recall'\]"):
        Simulation(two_model_cfg(_cascade(verifier={"recall": 1.0})), trace)
    with pytest.raises(ConfigError, match=r"router\.verifier\.tpr must be a number >= 0"):
        Simulation(two_model_cfg(_cascade(verifier={"tpr": 2})), trace)


def _expected_accuracy_trace(n, y_small, y_large):
    """`n` requests whose outcomes are expected accuracies (a category's), not 0 / 1."""
    out = [{SMALL: y_small, LARGE: y_large}] * n
    return make_trace([0.05 * i for i in range(n)], [64] * n, [8] * n, outcomes=out)


@pytest.mark.parametrize(("tpr", "fpr"), [(1.0, 0.0), (0.8, 0.1), (0.5, 0.5)])
def test_a_verdict_on_an_expected_accuracy_scores_what_it_tells(tpr, fpr):
    """Outcomes that are expected accuracies (0.7: right 70 % of the time): the verifier is
    told a draw at 0.7, and the answer it keeps scores its expected correctness given the
    verdict. Before, an accepted answer scored 0.7 whatever the draw said — a perfect verifier
    scored y² + (1 − y)·y_large, below a default one (new-user walkthrough, 2026-12-07). In
    expectation quality = y(1 − fpr) + P(reject)·y_large, and the measured rates are the
    configured ones."""
    from wrpsim.router.verifier import posterior

    y, yl, n = 0.7, 0.9, 400
    sim, _, q = _run(two_model_cfg(_cascade(verifier={"tpr": tpr, "fpr": fpr})),
                     _expected_accuracy_trace(n, y, yl))
    rejected = sim.router.escalated
    want = ((n - rejected) * posterior(y, True, tpr, fpr) + rejected * yl) / n
    assert q["quality"] == pytest.approx(want)  # (the draws' own mix, exactly)
    p_reject = y * fpr + (1 - y) * tpr
    assert rejected / n == pytest.approx(p_reject, abs=4 * (p_reject * (1 - p_reject) / n) ** .5)
    assert q["quality"] == pytest.approx(y * (1 - fpr) + p_reject * yl, abs=0.03)
    f = sim.router.summary_figures()
    if tpr == 1.0 and fpr == 0.0:  # told the truth: every kept answer right, none sent on
        assert q["quality"] == pytest.approx(y + (1 - y) * yl, abs=0.03)
        assert f["verifier_false_accept_rate"] == 0.0 == f["verifier_false_reject_rate"]
    else:
        assert f["verifier_false_accept_rate"] == pytest.approx(1 - tpr, abs=0.08)
        assert f["verifier_false_reject_rate"] == pytest.approx(fpr, abs=0.08)


def test_a_zero_or_one_outcome_is_its_own_posterior():
    from wrpsim.router.verifier import posterior

    for accepted in (True, False):
        for tpr, fpr in ((0.8, 0.1), (1.0, 0.0), (0.0, 1.0)):
            assert posterior(1.0, accepted, tpr, fpr) == 1.0
            assert posterior(0.0, accepted, tpr, fpr) == 0.0
    assert posterior(0.5, True, 0.8, 0.1) == pytest.approx(0.45 / (0.45 + 0.1))


def test_a_rejected_answer_kept_because_its_escalation_was_lost_scores_its_posterior():
    """A rejected cheap answer whose escalation was lost (the large pool down, requests
    dropped) is the answer the user keeps: it scores its expected correctness given the
    rejection, as an accepted one does given its acceptance (it scored its prior y: 0.849
    against 0.705; diff review, 2026-12-07). Behind a guard the same (the guard did not hand
    the inner cascade's verdicts or figures on)."""
    from wrpsim.router.verifier import posterior

    y, yl, n = 0.7, 0.9, 400
    trace = _expected_accuracy_trace(n, y, yl)
    cfg = two_model_cfg(_cascade(verifier={"tpr": 0.8, "fpr": 0.1}))
    cfg["failures"] = {"policy": "drop", "events": [{"pool": "large", "instance": 0,
                                                      "at_s": 0.0, "down_s": None}]}
    sim, _, q = _run(cfg, trace)
    esc = sim.router.escalated
    assert esc > 0
    want = ((n - esc) * posterior(y, True, 0.8, 0.1) + esc * posterior(y, False, 0.8, 0.1)) / n
    assert q["quality"] == pytest.approx(want)
    guarded = {"_target_": "wrpsim.router.GuardedRouter", "_recursive_": False,
               "inner": _cascade(verifier={"tpr": 0.8, "fpr": 0.1}), "guard_model": SMALL}
    sim, _, q = _run(two_model_cfg(guarded), trace)
    esc = sim.router.inner.escalated
    assert q["quality"] == pytest.approx(
        ((n - esc) * posterior(y, True, 0.8, 0.1) + esc * yl) / n)
    assert sim.router.summary_figures()["cascade_escalated"] == esc
