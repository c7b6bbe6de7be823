"""What a run says before it starts about models a workload names: requested models no pool
serves (one line, with a suggestion) and outcomes that score models no pool serves."""

from __future__ import annotations

import warnings

import pytest

from tests.conftest import compose_cfg, make_trace
from wrpsim.errors import ConfigError, WrpsimWarning
from wrpsim.sim import Simulation


def test_a_requested_model_no_pool_serves_is_named_with_the_fleets_models():
    """A name that differs from a served one only in case or punctuation gets it suggested;
    another model a digit apart does not (llama3.1-7b is not a misspelt llama3.1-70b)."""
    trace = make_trace([0.0], [100], [5], model=["Llama3.1_70B"])
    with pytest.raises(ConfigError, match=r"workload requests model\(s\) \['Llama3\.1_70B'\] "
                       r"that no pool serves \(workload\.model, workload\.model_mix or the "
                       r"trace's model column\): 1 of 1 requests, the first at 0\.000 s; the "
                       r"fleet serves: llama3\.1-70b; did you mean llama3\.1-70b\?$"):
        Simulation(compose_cfg(), trace)
    # how many requests, from when (a production trace's names: one model for all of them)
    trace = make_trace([0.0, 1.5, 2.0], [100] * 3, [5] * 3,
                       model=["llama3.1-70b", "llama3.1-7b", "llama3.1-7b"])
    with pytest.raises(ConfigError, match=r": 2 of 3 requests, the first at 1\.500 s; the fleet "
                       r"serves: llama3\.1-70b; workload\.model=NAME sends every request to "
                       r"one model$"):
        Simulation(compose_cfg(), trace)


def test_outcomes_that_score_no_served_model_are_warned_about():
    """Outcomes naming only models outside the fleet left quality null, and those naming some
    left the others' answers out of it, without a word (`wrpsim.metrics.quality`)."""
    none = make_trace([0.0, 1.0], [100] * 2, [5] * 2,
                      outcomes=[{"mixtral-8x7b": 1.0, "gpt-4": 1.0}] * 2)
    with pytest.warns(WrpsimWarning, match=r"the workload's outcomes name gpt-4, mixtral-8x7b, "
                      r"none of which a pool serves \(llama3\.1-70b\): no answer can be scored "
                      r"and quality will be null"):
        Simulation(compose_cfg(), none)
    cfg = compose_cfg("pool=mixed-a100-h100")
    some = make_trace([0.0, 1.0], [100] * 2, [5] * 2, model=["llama3.1-8b", "llama3.1-70b"],
                      outcomes=[{"llama3.1-70b": 1.0, "Llama3.1-8B": 0.0}] * 2)
    with pytest.warns(WrpsimWarning, match=r"the workload's outcomes name Llama3\.1-8B, which "
                      r"no pool serves, and never name llama3\.1-8b: answers from it are left "
                      r"out of quality \(Llama3\.1-8B -> llama3\.1-8b\?\)"):
        Simulation(cfg, some)
    # naming only served models is not a mistake (a guard model's answers are not scored)
    fine = make_trace([0.0, 1.0], [100] * 2, [5] * 2, model=["llama3.1-8b", "llama3.1-70b"],
                      outcomes=[{"llama3.1-70b": 1.0}] * 2)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        Simulation(cfg, fine)
    assert not [w for w in seen if "outcomes" in str(w.message)]
