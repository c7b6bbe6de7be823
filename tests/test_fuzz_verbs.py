"""Seeded fuzzing of the other command-line verbs, as tests/test_fuzz_overrides.py fuzzes
`python -m wrpsim`: a value of the wrong kind or size under a key of a verb's defaults either
runs or stops with one line naming it — never a traceback, never a hang. Cases from a fixed
seed per verb, so a failure reproduces (`_cases(verb)` lists them).

`perf`, `net`, `validate`, `report` and `calibrate` are run as their command lines are, in
this process: `main(argv)` (`wrpsim.cli.verb_main`) with the arguments of a small valid run
(`BASES`, each checked to run) and then `key=value`, the value typed as Hydra's grammar reads
it. Each case exits 0 — stdout's last line strict JSON (no NaN or Infinity) — or 2 with
exactly one `wrpsim: error: …` line on stderr; `wrpsim: warning: …` lines may come before, and
nothing else. `plan` is a Hydra app: as for the main command, the value is set into its
composed config (small: 40 requests, at most 4 instances and 12 simulations a pool, no
load-sensitivity runs, no report) and its task run; it returns or raises one `WrpsimError`.

When this was written (2026-12-07) such fuzzing found, at the commit before: tracebacks for a
seed past 64 bits or an infinite slo.ttft_s in a plan (after its whole search), report's
time_bins=10**21, a number as calibrate's kernels=, and a zero efficiency under the
splitwise-2023 engine (perf printed NaN for nan); and values taken silently — out_dir=0, [] or
{} as the default folder, chunks=true as chunks' default 1, latency.cudagraph_max_tokens=0.5
as 0, a plan's sim.progress=abc."""

from __future__ import annotations

import copy
import json
import random
import signal

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from tests.conftest import made_up_engine_steps, set_path
from tests.test_fuzz_overrides import LIMIT_S, VALUES, _alarm, _leaves, _RanTooLong, run_or_refuse

#: the verbs with `main(argv)` and the cases each gets (plan's: `PLAN_CASES`)
CASES = {"perf": 250, "net": 300, "validate": 120, "report": 100, "calibrate": 100}
PLAN_CASES = 300
#: VALUES and a few more: a negative infinity, a denormal, a list of a name
MORE = (*VALUES, "-inf", "1e-300", "[abc]")


def _keys(verb: str, base: list[str]) -> list[tuple]:
    """Key paths of `conf/<verb>.yaml`'s defaults (perf: and the `latency.*` fields of the
    base's engine)."""
    from wrpsim.cli import load_defaults

    keys = list(_leaves(load_defaults(verb)))
    if verb == "perf":
        from wrpsim.pool.catalog import CALIBRATION_FIELDS
        from wrpsim.pool.engines import CONSTANT_FIELDS

        fields = CALIBRATION_FIELDS if "engine=splitwise-2023" in base else CONSTANT_FIELDS
        keys += [("latency", f) for f in fields]
    return keys


#: valid arguments of small, fast runs of each verb (OUT: the case's folder; SWEEP and STEPS:
#: `fixtures`'); a case picks one, then the key
BASES = {
    "perf": (["model=llama3.1-8b", "tp=1"], ["engine=splitwise-2023"]),
    "net": (["leaves=2", "hosts_per_leaf=2", "spines=2", "out_dir=OUT"],
            ["leaves=2", "hosts_per_leaf=2", "spines=2", "out_dir=OUT", "engine=packet",
             "flow_bytes=64KiB"],
            ["leaves=2", "hosts_per_leaf=2", "spines=2", "out_dir=OUT",
             "pattern=allreduce_tree", "flow_bytes=64KiB", "ranks=4"]),
    "validate": (["fast=true", "sets=[llmservingsim]", "out_dir=OUT"],),
    "report": (["sweep_dir=SWEEP", "out_dir=OUT"],),
    "calibrate": (["engine=fz", "steps=STEPS", "fit=[layer_overhead_us]", "out_dir=OUT/engines"],),
}


def _base(base: list[str], case_dir, fixtures) -> list[str]:
    """`base` with its placeholders filled in."""
    return [a.replace("OUT", str(case_dir)).replace("SWEEP", str(fixtures["sweep"]))
            .replace("STEPS", str(fixtures["steps"])) for a in base]


def _cases(verb: str) -> list[tuple[list[str], str]]:
    """(base, `key=value`) of each case of `verb`, from its own seed."""
    rng = random.Random(f"20261207-{verb}")
    keys = {i: _keys(verb, b) for i, b in enumerate(BASES[verb])}
    out = []
    for _ in range(CASES[verb]):
        i = rng.randrange(len(BASES[verb]))
        out.append((BASES[verb][i],
                    f"{'.'.join(map(str, rng.choice(keys[i])))}={rng.choice(MORE)}"))
    return out


def run_case(main, argv: list[str], capsys) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `main(argv)` within `LIMIT_S`; a `_RanTooLong` or
    any other exception propagates."""
    signal.setitimer(signal.ITIMER_REAL, LIMIT_S)
    try:
        code = main(argv)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    out, err = capsys.readouterr()
    return code, out, err


def problem(code: int, out: str, err: str) -> str | None:
    """What is wrong with a case's outcome under the verbs' contract, or None."""
    lines = err.splitlines()
    errors = [ln for ln in lines if ln.startswith("wrpsim: error: ")]
    other = [ln for ln in lines if not ln.startswith(("wrpsim: error: ", "wrpsim: warning: "))]
    if other:
        return f"stderr line of no kind: {other[0]!r}"
    if code == 2:
        return None if len(errors) == 1 else f"status 2 with {len(errors)} error lines: {err!r}"
    if code != 0:
        return f"status {code}: {err!r}"
    if errors:
        return f"status 0 with an error line: {errors[0]!r}"
    try:
        json.loads(out.splitlines()[-1], parse_constant=_not_json)
    except (IndexError, ValueError) as exc:
        return f"status 0, last line of stdout is not strict JSON ({exc}): {out[-300:]!r}"
    return None


def _not_json(name: str):
    raise ValueError(f"{name} in the JSON line")


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    """A finished two-run sweep (report's input) and a steps CSV (calibrate's)."""
    import sys

    from wrpsim.__main__ import main

    root = tmp_path_factory.mktemp("fuzzverbs")
    argv = sys.argv
    sys.argv = ["wrpsim", "-m", f"hydra.sweep.dir={root / 'sweep'}", "workload.max_requests=12",
                "seed=0,1", "sim.progress=false"]
    try:
        main()
    finally:
        sys.argv = argv
    return {"sweep": root / "sweep", "steps": made_up_engine_steps(root / "steps.csv")}


def _main(verb: str):
    from importlib import import_module

    return import_module({"perf": "wrpsim.perf", "net": "wrpsim.net"}.get(
        verb, f"wrpsim.{verb}.__main__")).main


@pytest.fixture()
def alarm():
    previous = signal.signal(signal.SIGALRM, _alarm)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture()
def own_engines(monkeypatch):
    """Engines registered by one case's `calibrate out_dir=` forgotten before the next."""
    from wrpsim.pool import engines as E

    monkeypatch.setattr(E, "_EXTRA_DIRS", [])
    E.clear_caches()
    yield E
    E.clear_caches()


@pytest.mark.parametrize("verb", sorted(CASES))
def test_a_bad_value_under_any_key_of_a_verb_runs_or_is_one_error_line(
        verb, fixtures, tmp_path, monkeypatch, capsys, alarm, own_engines):
    main = _main(verb)
    monkeypatch.chdir(tmp_path)  # (a fuzzed out_dir is a folder here)
    for j, base in enumerate(BASES[verb]):  # (each base runs: the cases change one key of it)
        argv = _base(base, tmp_path / f"base{j}", fixtures)
        code, out, err = run_case(main, argv, capsys)
        assert code == 0 and problem(code, out, err) is None, (argv, err)
    refused = 0
    for i, (base, typed) in enumerate(_cases(verb)):
        argv = [*_base(base, tmp_path / str(i), fixtures), typed]
        own_engines._EXTRA_DIRS.clear()
        own_engines.clear_caches()
        try:
            code, out, err = run_case(main, argv, capsys)
        except _RanTooLong:
            pytest.fail(f"{verb} {' '.join(argv)}: still running after {LIMIT_S} s")
        except Exception as exc:  # (the point: nothing may escape verb_main)
            pytest.fail(f"{verb} {' '.join(argv)}: {type(exc).__name__}: {exc}")
        why = problem(code, out, err)
        if why:
            pytest.fail(f"{verb} {' '.join(argv)}: {why}")
        refused += code == 2
    assert 0 < refused < CASES[verb]  # (most values are refused, some run)


def _plan_cases():
    """(the composed small plan config, `key=value` as typed, key path, value) of each case."""
    from tests.test_plan_config import compose_plan

    base = compose_plan("workload.max_requests=40", "plan.load_sensitivity=0",
                        "plan.report=false", "plan.max_instances=4", "plan.max_evaluations=12",
                        "plan.recheck_shuffle_window_s=null")
    keys = [p for p in _leaves(base) if p != ("workload", "max_requests")]
    rng = random.Random("20261207-plan")
    parser = OverridesParser.create()
    for _ in range(PLAN_CASES):
        path, text = rng.choice(keys), rng.choice(MORE)
        typed = f"{'.'.join(map(str, path))}={text}"
        yield base, typed, path, parser.parse_override(typed).value()


def test_a_bad_value_anywhere_in_a_plan_runs_or_is_one_wrpsim_error(tmp_path, capsys, alarm):
    from wrpsim.plan.__main__ import _task

    refused = 0
    for i, (base, typed, path, value) in enumerate(_plan_cases()):
        cfg = set_path(copy.deepcopy(base), path, value)
        exc = run_or_refuse(f"plan {typed}", _task, cfg, str(tmp_path / str(i)))
        if exc is not None:
            assert "\n" not in str(exc), f"plan {typed}: a message of several lines: {exc}"
            refused += 1
        capsys.readouterr()
    assert PLAN_CASES // 2 < refused < PLAN_CASES
