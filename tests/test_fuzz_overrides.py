"""Seeded fuzzing of the run config: a value of the wrong kind or size under any key of a few
scenarios' resolved configs either runs or stops with one `WrpsimError` — never another
exception (a traceback on the command line). Cases from a fixed seed, so a failure reproduces.
When this was written (2026-12-07) such fuzzing had found tracebacks or hangs for a mapping in
router.service.signal (which this seed's cases hit at the commit before), an integer past int64
for a workload number, lists for an arrival process, a lengths kind or a distribution, a
1e21-second router decision and a predictor skill whose sigmoid overflowed.

Each value is parsed by Hydra's override grammar, as `key=value` on the command line is, and
set into the scenario's resolved config (composing each case anew cost 65 ms; Hydra's own
refusals — a group given a number — are `wrpsim.hydra_errors`', tested with the CLI)."""

from __future__ import annotations

import copy
import random
import signal

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from tests.conftest import compose_cfg, set_path
from wrpsim.errors import WrpsimError

#: scenarios whose resolved configs give the keys (each run small: 12 requests)
SCENARIOS = ((), ("pool=h100-llama70b-disagg", "network=fluid"),
             ("workload=chat-sessions", "router=session-affinity"),
             ("router=carrot-utility", "pool=two-model-mixtral-gpt4like",
              "workload=routellm-mmlu-gsm8k"),
             ("workload=closed-loop", "failures=random"))
VALUES = ("-1", "0", "abc", "1e12", "null", "[]", "{}", "0.5", "true", "nan", "inf", "[1,2]",
          "{a: 1}", "''", "999999999999999999999")
CASES = 240


def _leaves(node, path=()):
    """Key paths of the scalar, list and empty-mapping leaves of a resolved config."""
    if isinstance(node, dict) and node:
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    else:
        yield path


def _cases():
    """(scenario's config, overrides as typed, key path, value) of each case."""
    rng = random.Random(20261207)
    parser = OverridesParser.create()
    base = {s: compose_cfg(*s) for s in SCENARIOS}
    keys = {s: [p for p in _leaves(base[s]) if p != ("workload", "max_requests")]
            for s in SCENARIOS}
    for _ in range(CASES):
        s = rng.choice(SCENARIOS)
        path, text = rng.choice(keys[s]), rng.choice(VALUES)
        typed = f"{'.'.join(map(str, path))}={text}"
        yield base[s], (*s, typed), path, parser.parse_override(typed).value()


class _RanTooLong(Exception):
    """A case ran past `LIMIT_S` (an input the run steps through for ever)."""


#: seconds a case may take (each takes well under one)
LIMIT_S = 30


def _alarm(signum, frame):
    raise _RanTooLong


def test_a_bad_value_anywhere_runs_or_is_one_wrpsim_error(tmp_path):
    from wrpsim.sim import run

    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        raised = _run_cases(tmp_path, run)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert CASES // 2 < raised < CASES  # (most values are refused, some run)


def _run_cases(tmp_path, run) -> int:
    raised = 0
    for i, (base, typed, path, value) in enumerate(_cases()):
        cfg = set_path(copy.deepcopy(base), path, value)
        cfg["workload"]["max_requests"] = 12
        if run_or_refuse(" ".join(typed), run, cfg, str(tmp_path / str(i))) is not None:
            raised += 1
    return raised


def run_or_refuse(label: str, fn, *args) -> WrpsimError | None:
    """`fn(*args)` within `LIMIT_S` (the SIGALRM handler `_alarm` installed): None when it
    returns, the `WrpsimError` it raised; the test fails on a hang or any other exception."""
    signal.setitimer(signal.ITIMER_REAL, LIMIT_S)
    try:
        fn(*args)
    except WrpsimError as exc:
        return exc
    except _RanTooLong:
        pytest.fail(f"{label}: still running after {LIMIT_S} s")
    except Exception as exc:  # (the point: nothing else may escape)
        pytest.fail(f"{label}: {type(exc).__name__}: {exc}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return None
