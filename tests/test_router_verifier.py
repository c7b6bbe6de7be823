"""The verifier of cascades and multi-round routers (wrpsim.router.verifier): a confidence from the
learned predictor whose false-accept / false-reject rates are measured against the replayed
outcomes and agree with what the outcome file implies; the oracle-rates verifier's measured
rates agree with its configured tpr / fpr; one-line config errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import compose_cfg
from tests.test_router_fleets import quality_trace, two_model_cfg
from wrpsim.errors import ConfigError
from wrpsim.router.learned import LearnedModel
from wrpsim.sim import Simulation

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "routers" / "data"
CHEAP = "llama3.1-8b"
TEST_RUN = ("workload=llmrouter-14-tasks-test", "pool=six-model-llmrouter")


def _test_rows() -> tuple[np.ndarray, np.ndarray]:
    """(learned estimate for the cheap model, its replayed score) of the 500 test rows, straight
    from the shipped files (prompt tokens as the workload counts them: ceil(chars / 4) + 40)."""
    df = pd.read_csv(DATA / "llmrouter_outcomes_9models.csv")
    df = df[df["split"] == "test"]
    model = LearnedModel.load(DATA / "llmrouter_predictor.json")
    tokens = np.ceil(df["prompt_chars"] / 4.0) + 40
    p = np.array([model.predict(CHEAP, c, t) for c, t in zip(df["category"], tokens)])
    return p, df["correct_llama31_8b"].to_numpy(dtype=float)


def _figures(*overrides: str) -> tuple[Simulation, dict]:
    sim = Simulation(compose_cfg("router=cascade-confidence", *TEST_RUN, *overrides))
    sim.run()
    return sim, sim.router.summary_figures()


def _logit(p):
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


@pytest.mark.parametrize("threshold", [0.4, 0.5, 0.7])
def test_a_confidence_verifier_errs_exactly_as_the_outcome_data_imply(threshold):
    p, y = _test_rows()
    sim, f = _figures(f"router.verifier.threshold={threshold}")
    accept = p >= threshold
    assert f["verifier_checks"] == 500 == sim.router.verifier.checks
    assert f["verifier_false_accept_rate"] == pytest.approx(
        ((1 - y) * accept).sum() / (1 - y).sum(), abs=1e-9)
    assert f["verifier_false_reject_rate"] == pytest.approx(
        (y * ~accept).sum() / y.sum(), abs=1e-9)
    assert f["verifier_reject_rate"] == pytest.approx((~accept).mean(), abs=1e-12)
    assert f["cascade_escalated"] == int((~accept).sum())
    # a higher threshold trades false accepts for false rejects
    lo, hi = _figures("router.verifier.threshold=0.3")[1], _figures(
        "router.verifier.threshold=0.8")[1]
    assert lo["verifier_false_accept_rate"] >= f["verifier_false_accept_rate"] >= \
        hi["verifier_false_accept_rate"]
    assert lo["verifier_false_reject_rate"] <= f["verifier_false_reject_rate"] <= \
        hi["verifier_false_reject_rate"]


def test_a_noisy_confidence_verifier_errs_as_implied_within_sampling_error():
    p, y = _test_rows()
    tau, sd = 0.5, 1.0
    _, f = _figures(f"router.verifier.threshold={tau}", f"router.verifier.noise_sd={sd}")
    # P(accept) per row = P(logit p + sd·ε >= logit τ) = Φ((logit p − logit τ) / sd)
    pa = np.array([0.5 * math.erfc(-(z - _logit(tau)) / (sd * math.sqrt(2)))
                   for z in _logit(p)])
    for w, got, acc in (((1 - y), f["verifier_false_accept_rate"], pa),
                        (y, f["verifier_false_reject_rate"], 1 - pa)):
        expect = (w * acc).sum() / w.sum()
        se = math.sqrt((w**2 * acc * (1 - acc)).sum()) / w.sum()
        assert abs(got - expect) < 3 * se, (got, expect, se)
        assert se > 0.01  # the noise is real: the measured rate is a sample


def test_an_answer_reading_verifier_errs_less_than_one_that_reads_none():
    _, none = _figures("router.verifier.threshold=0.5")
    _, reads = _figures("router.verifier.threshold=0.5", "router.verifier.skill=2")
    assert reads["verifier_false_accept_rate"] < none["verifier_false_accept_rate"]
    assert reads["verifier_false_reject_rate"] < none["verifier_false_reject_rate"]


def test_the_oracle_rates_verifier_measures_its_configured_rates():
    trace = quality_trace(n=3000, p_small=0.5, p_large=0.9, gap_s=0.01)
    cfg = two_model_cfg({"_target_": "wrpsim.router.CascadeRouter",
                         "verifier": {"tpr": 0.8, "fpr": 0.1}})
    sim = Simulation(cfg, trace)
    sim.run()
    f = sim.router.summary_figures()
    wrong = sum(o["llama3.1-8b"] == 0.0 for o in trace["outcomes"])
    assert f["verifier_kind"] == "oracle-rates" and f["verifier_checks"] == 3000
    se_fa = math.sqrt(0.2 * 0.8 / wrong)
    se_fr = math.sqrt(0.1 * 0.9 / (3000 - wrong))
    assert abs(f["verifier_false_accept_rate"] - 0.2) < 3 * se_fa
    assert abs(f["verifier_false_reject_rate"] - 0.1) < 3 * se_fr


def test_summary_json_reports_the_measured_rates(tmp_path):
    from wrpsim.sim import run

    s = run(compose_cfg("router=cascade-confidence", *TEST_RUN, "workload.max_requests=100"),
            tmp_path)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    for key in ("verifier_false_accept_rate", "verifier_false_reject_rate", "verifier_checks",
                "verifier_threshold", "cascade_escalated"):
        assert on_disk[key] == s[key] is not None
    assert on_disk["verifier_kind"] == "confidence"


def test_a_run_scores_a_perfect_verifiers_cascade_on_category_accuracies(tmp_path):
    """semantic-router-sample's outcomes are category accuracies: a cascade whose verifier is
    told the truth scored below one with the default error rates (0.7266 / 0.7292) and
    measured false accept and reject rates of 0.64 / 0.28 (new-user walkthrough, 2026-12-07).
    Its summary.json now scores the kept answers by what the verdict told."""
    from wrpsim.sim import run

    base = ("workload=semantic-router-sample", "pool=mixed-a100-h100", "router=cascade")
    perfect = run(compose_cfg(*base, "router.verifier.tpr=1.0", "router.verifier.fpr=0.0"),
                  tmp_path / "perfect")
    rates = run(compose_cfg(*base), tmp_path / "rates")
    assert perfect["verifier_false_accept_rate"] == 0.0 == perfect["verifier_false_reject_rate"]
    share = perfect["model_share"]["llama3.1-70b"]  # (escalated: the 8B's wrong answers)
    assert perfect["quality"] > rates["quality"] > 0.8 > share
@pytest.mark.parametrize(("verifier", "message"), [
    ({"kind": "judge"}, r"router\.verifier\.kind: unknown value 'judge'; valid choices: "
                        r"confidence, oracle-rates"),
    ({"kind": "confidence", "threshold": 1.5},
     r"router\.verifier\.threshold must be a number >= 0 and <= 1, got 1\.5"),
    ({"kind": "confidence", "threshold": -0.1}, r"router\.verifier\.threshold must be"),
    ({"kind": "confidence", "tpr": 0.9}, r"router\.verifier: tpr not read with kind: confidence"),
    ({"threshold": 0.5}, r"router\.verifier: threshold not read with kind: oracle-rates"),
    ({"kind": "confidence", "skill": -1}, r"router\.verifier\.skill must be a number >= 0"),
    ({"kind": "confidence", "predictor": {"kind": "oracle"}},
     r"router\.predictor\.kind: oracle needs router\.view\.kind: oracle"),
])
def test_bad_verifier_configs_are_named(verifier, message):
    trace = quality_trace(n=5)
    with pytest.raises(ConfigError, match=message):
        Simulation(two_model_cfg({"_target_": "wrpsim.router.CascadeRouter",
                                  "verifier": verifier}), trace)


def test_cli_reports_a_bad_threshold_in_one_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "wrpsim", "router=cascade-confidence", *TEST_RUN,
                        "router.verifier.threshold=2", f"hydra.run.dir={tmp_path}"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip() == ("wrpsim: error: router.verifier.threshold must be a number "
                                ">= 0 and <= 1, got 2")


def test_an_oracle_predictor_in_the_verifier_is_labelled_an_upper_bound():
    cfg = two_model_cfg({"_target_": "wrpsim.router.CascadeRouter",
                         "verifier": {"kind": "confidence", "predictor": {"kind": "oracle"}},
                         "view": {"kind": "oracle"}})
    sim = Simulation(cfg, quality_trace(n=5))
    assert sim.router.oracle_reads == ("per-model outcomes (verifier)",)
