"""`conf/plan.yaml` and the `plan` section: composition, clear errors, impossible SLOs, the
objectives, and determinism (same seed, same plan.json bytes)."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from wrpsim.errors import ConfigError
from wrpsim.plan import run_plan
from wrpsim.plan.schemas import CANDIDATE_FIELDS

SMALL = ("workload.max_requests=1000",)


def compose_plan(*overrides: str) -> dict:
    """The config `python -m wrpsim.plan <overrides>` would use, as a plain dict."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from tests.conftest import register_catalogs_once
    from wrpsim.paths import catalog_dir

    register_catalogs_once()
    with initialize_config_dir(config_dir=str(catalog_dir("conf")), version_base="1.3"):
        cfg = compose("plan", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


def plan_cli(tmp_path, *overrides):
    cmd = [sys.executable, "-m", "wrpsim.plan", f"hydra.run.dir={tmp_path}", *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600)


def test_plan_config_composes_with_the_run_groups_and_no_pool():
    cfg = compose_plan("workload=azure-code-2023", "plan.objective=energy")
    assert "pool" not in cfg
    assert cfg["workload"]["name"] == "azure-code-2023"
    assert cfg["router"]["_target_"] == "wrpsim.router.LeastOutstanding"
    assert cfg["plan"]["objective"] == "energy"
    assert sorted(cfg["plan"]["candidates"]) == ["a100", "h100", "h200"]


@pytest.mark.parametrize(("overrides", "message"), [
    (["plan.candidates.h100.gpu=h100-81gb"],
     r"plan\.candidates\.h100\.gpu: unknown value 'h100-81gb'; valid choices: a100-80gb"),
    (["+plan.candidates.h100.count=3"], r"plan\.candidates\.h100\.count: candidates have no count"),
    ([f"plan.candidates.{c}.gpu=a10g-24gb" for c in ("a100", "h100", "h200")], r"GiB"),
    (["plan.candidates.h100.tp=3"], r"tp must be an integer >= 1 that divides"),
    (["plan.objective=speed"], r"plan\.objective: unknown value 'speed'; valid choices: cost"),
    (["plan.candidates.h100.role=sideways"], r"plan\.candidates\.h100\.role: unknown value"),
    (["plan.pd_ratios=[1:0]"], r"plan\.pd_ratios: each ratio is 'P:D'"),
    (["plan.slo.ttft_p99_s=null", "plan.slo.tpot_p99_s=null"], r"plan\.slo sets no target"),
    (["+plan.slo.ttft_p42_s=1"], r"plan\.slo: unknown key\(s\) \['ttft_p42_s'\]"),
    (["+plan.colour=red"], r"plan: unknown key\(s\) \['colour'\]"),
    (["plan.max_instances=0"], r"plan\.max_instances must be an integer >= 1, got 0"),
    (["plan.recheck_seed=0"], r"plan\.recheck_seed must differ from seed"),
    (["plan.candidates.h200.model=llama3.1-8b"], r"several models"),
    (["+pool=h100-llama70b"], r"pool group is replaced by plan\.candidates"),
    (["+plan.candidates.h100.foo=1"],
     r"plan\.candidates\.h100: unknown key\(s\) \['foo'\]; valid keys: gpu, model, tp, scheduler"),
    (["plan.candidates.a100.tp=1", "plan.candidates.h100.tp=1", "plan.candidates.h200.tp=1"],
     r"^plan\.candidates\.a100: llama3\.1-70b needs 131\.4 GiB.* \(and 2 more candidate\(s\) that "
     r"do not fit\)$"),
    (["sim.horizon_s=30"], r"^plan: sim\.horizon_s must be null: a plan judges each fleet on "
                           r"whole traces"),
    (["plan.pd_ratios=[]"], r"^plan\.pd_ratios must list at least one 'P:D' ratio"),
    # a nan or inf target passed (nan <= 0 is false) and crashed writing plan.json after the
    # whole search; a nan window was taken as 'nan s'
    (["plan.slo.ttft_p99_s=nan"], r"^plan\.slo\.ttft_p99_s must be null or a finite number > 0, "
                                  r"got nan$"),
    (["plan.slo.tpot_p99_s=inf"], r"^plan\.slo\.tpot_p99_s must be null or a finite number"),
    (["plan.recheck_shuffle_window_s=nan"],
     r"^plan\.recheck_shuffle_window_s must be null or a finite number >= 0\.001, got nan$"),
    # a window of 1e-300 s overflowed into one window of the whole trace; a load sensitivity
    # of 1e-7 made 1 - x and 1 + x the same trace's tag
    (["plan.search_window_s=1e-300"],
     r"^plan\.search_window_s must be null or a finite number >= 1, got 1e-300$"),
    (["plan.recheck_shuffle_window_s=1e-300"],
     r"^plan\.recheck_shuffle_window_s must be null or a finite number >= 0\.001, got 1e-300$"),
    # one output token a request: TPOT is undefined for every fleet ("misses by undefined")
    (["workload=constant-rate", "workload.source.output_tokens=1"],
     r"^plan\.slo\.tpot_p99_s: every request of the workload has one output token.*set "
     r"plan\.slo\.tpot_p99_s=null$"),
    (["plan.load_sensitivity=1e-7"],
     r"^plan\.load_sensitivity must be 0 \(none\) or a number in \[0\.01, 1\), got 1e-07$"),
    # a seed past 64 bits was simulated and then stopped writing candidates.parquet with an
    # OverflowError (tests/test_fuzz_verbs.py); seed 2**63 - 1 left its recheck, seed + 1, none
    (["seed=999999999999999999999"],
     r"^seed must be an integer in \[0, 9223372036854775806\] for a plan \(candidates\.parquet"),
    (["seed=9223372036854775807"], r"^seed must be an integer in \[0, 9223372036854775806\]"),
    (["plan.recheck_seed=9223372036854775808"],
     r"^plan\.recheck_seed must be an integer in \[0, 9223372036854775807\], got "
     r"9223372036854775808$"),
    # an infinite per-request threshold was simulated through the whole search and then
    # stopped writing plan.json (which records it) with a ValueError traceback
    (["slo.ttft_s=inf"], r"^slo\.ttft_s must be a finite number > 0, got inf$"),
    (["slo.tpot_s=inf", "plan.slo.attainment_min=0.9"],
     r"^slo\.tpot_s must be a finite number > 0, got inf$"),
    # the planner sets sim.progress off for its simulations: any value passed unread (auto
    # and null, which the simulator takes, run: below)
    (["sim.progress=abc"], r"^sim\.progress must be auto, true or false, got 'abc'$"),
    (["sim.progress=[]"], r"^sim\.progress must be auto, true or false, got \[\]$"),
    # the two sides of a disaggregated candidate must hold one KV element type: refused before
    # any simulation, under the plan's own key (the engine would name pool.pools.h100-decode)
    (["plan.candidates.h100.role=disaggregated", "+plan.candidates.h100.prefill={kv_dtype: fp8}"],
     r"^plan\.candidates\.h100\.prefill\.kv_dtype: fp8 differs from the decode side's auto .*"
     r"valid choices: auto, bf16$"),
])
def test_bad_plan_configs_name_the_field(overrides, message):
    cfg = compose_plan(*SMALL, *overrides)
    with pytest.raises(ConfigError, match=message):
        run_plan(cfg, "/nonexistent-never-written")


@pytest.mark.parametrize("overrides", [
    ("sim.progress=auto",), ("sim.progress=null",),  # (the simulator's values: unread here)
    # the largest 64-bit seed fits candidates.parquet when the recheck's seed is given (only
    # its default, seed + 1, would not)
    ("seed=9223372036854775807", "plan.recheck_seed=0"),
])
def test_values_the_run_takes_are_not_refused_by_the_plan(overrides, tmp_path):
    cfg = compose_plan("workload.max_requests=40", "plan.load_sensitivity=0", "plan.report=false",
                       "plan.max_instances=4", "plan.max_evaluations=12", *overrides)
    record = run_plan(cfg, tmp_path)
    assert record["slo_met"]
    seeds = pq.read_table(tmp_path / "candidates.parquet").column("seed").to_pylist()
    assert max(seeds) == (9223372036854775807 if "plan.recheck_seed=0" in overrides else 1)


def test_bad_config_on_the_command_line_is_one_line_and_status_2(tmp_path):
    p = plan_cli(tmp_path, *SMALL, "plan.candidates.a100.gpu=a100-81gb")
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        "wrpsim: error: plan.candidates.a100.gpu: unknown value 'a100-81gb'; valid choices: "
        "a100-80gb, a10g-24gb, b200-180gb, b300-288gb, gb200-186gb, h100-80gb, h100-nvl-94gb, "
        "h100-pcie-80gb, "
        "h200-141gb, l4-24gb, l40s-48gb, mi300x-192gb, rtx4090-24gb, rtxpro6000-96gb; did you mean "
        "'a100-80gb'?"]
    assert not (tmp_path / "plan.json").exists()


@pytest.mark.parametrize(("override", "line"), [
    ("plan.candidates.h100.count=3",
     "plan.candidates.h100.count: candidates have no count (the planner chooses it); "
     "remove the key"),
    ("plan.slo.e2e_p99_s=30",
     "plan.slo.e2e_p99_s: not set in conf/plan.yaml, so add it with a '+': +plan.slo.e2e_p99_s=…; "
     "targets: ttft_mean_s, ttft_p50_s, ttft_p90_s, ttft_p99_s, tpot_mean_s, tpot_p50_s, "
     "tpot_p90_s, tpot_p99_s, e2e_mean_s, e2e_p50_s, e2e_p90_s, e2e_p99_s, queue_wait_mean_s, "
     "attainment_min, unserved_max"),
])
def test_keys_the_yaml_leaves_out_get_the_plans_own_message(tmp_path, override, line):
    p = plan_cli(tmp_path, *SMALL, override)
    assert p.returncode == 2 and p.stderr.strip().splitlines() == [f"wrpsim: error: {line}"]


def test_a_candidate_that_does_not_fit_is_left_out_not_fatal(tmp_path):
    """An H200 at TP 1 cannot hold Llama-3.1-70B's weights: the plan used to stop with that
    error; now the candidate is left out with one warning and listed as impossible, and the
    other candidates are planned."""
    p = plan_cli(tmp_path, *SMALL, "plan.candidates.h200.tp=1", "plan.load_sensitivity=0",
                 "json=true")
    assert p.returncode == 0, p.stderr
    warned = [ln for ln in p.stderr.splitlines() if "candidate left out of the plan" in ln]
    assert len(warned) == 1 and warned[0].startswith(
        "wrpsim: warning: plan.candidates.h200: llama3.1-70b needs 131.4 GiB"), p.stderr
    record = json.loads(p.stdout)
    assert [n for n in record["search"]["impossible"] if n.startswith("candidate h200: does "
                                                                       "not fit: ")]
    assert {f["candidate"] for f in record["fleet"]} <= {"a100", "h100"}


def test_impossible_slo_is_a_plan_with_slo_met_false_and_a_message(tmp_path):
    p = plan_cli(tmp_path, *SMALL, "plan.slo.tpot_p99_s=0.001", "plan.load_sensitivity=0",
                 "json=true")
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    assert len(p.stdout.splitlines()) == 1  # json=true: plan.json, nothing else
    record = json.loads(p.stdout)
    assert record == json.loads((tmp_path / "plan.json").read_text())
    assert record["slo_met"] is False
    assert record["message"].startswith("no fleet meets the SLO")
    assert "tpot_p99_s target 0.001 s is below" in record["message"]
    assert "impossible at any count" in p.stderr
    assert f"wrpsim.plan: warning: {record['message']}" in p.stderr.splitlines()
    assert len(record["search"]["impossible"]) == 3
    assert (tmp_path / "report.html").is_file() and (tmp_path / "report.md").is_file()
    md = (tmp_path / "report.md").read_text()
    assert "SLO NOT met" in md
    assert record["recheck"]["instances_added"] is False and record["search"]["found"] is False
    for text in (md, (tmp_path / "report.html").read_text()):  # nothing was repaired
        assert "instances were added" not in text
        assert "so nothing was repaired: this is the closest fleet found" in text
    assert "| pool with one instance fewer |" not in md  # no header-only tables
    assert "One instance fewer: none" in md and "No candidate was searched" in md
    # the closest fleet is the closest of every fleet evaluated, beyond the first guesses
    t = pq.read_table(tmp_path / "candidates.parquet").to_pandas()
    s = t[t.trace == "search"]
    worst = s.margins_json.map(lambda j: min(v for v in json.loads(j).values()))
    assert (s.phase == "best-effort").all() and len(s) > 3  # grown past the three guesses
    assert worst[s.chosen].iloc[0] == worst.max()


def test_unreachable_slo_within_max_instances_says_which_target_misses(tmp_path):
    # 0.35 s: above one h100 instance's own TTFT for the p99 prompt (0.30 s; the a100 and h200
    # candidates' are above it: impossible), out of reach of 3 instances under this load
    cfg = compose_plan(*SMALL, "plan.slo.ttft_p99_s=0.35", "plan.slo.tpot_p99_s=null",
                       "plan.max_instances=3", "plan.load_sensitivity=0", "plan.report=false")
    record = run_plan(cfg, tmp_path)
    assert record["slo_met"] is False
    assert "no fleet of at most 3 instances per pool met it" in record["message"]
    assert "misses ttft_p99_s by" in record["message"]


def test_same_seed_gives_the_same_plan_json_bytes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    # 300 requests (SMALL has 1,000): determinism needs no more, and each plan takes 1.3 s less
    args = ("workload.max_requests=300", "plan.load_sensitivity=0", "plan.report=false")
    for d in (a, b):
        d.mkdir()
        p = plan_cli(d, *args)
        assert p.returncode == 0, p.stderr
    assert (a / "plan.json").read_bytes() == (b / "plan.json").read_bytes()
    ta, tb = (pq.read_table(d / "candidates.parquet").drop(["sim_wall_s"]) for d in (a, b))
    assert ta.equals(tb)
    fixed = [n for n, _ in CANDIDATE_FIELDS if n != "sim_wall_s"]
    assert ta.schema.names[: len(fixed)] == fixed
    assert ta.schema.metadata[b"wrpsim.table"] == b"plan_candidates"
    assert [n for n in ta.schema.names if n.startswith("count.")] == [
        "count.a100", "count.h100", "count.h200"]


@pytest.mark.parametrize("objective", ["energy", "gpus"])
def test_each_objective_picks_the_best_feasible_candidate_it_evaluated(tmp_path, objective):
    cfg = compose_plan(*SMALL, f"plan.objective={objective}", "plan.load_sensitivity=0",
                       "plan.report=false")
    record = run_plan(cfg, tmp_path)
    assert record["slo_met"] and record["objective"] == objective
    assert record["message"].startswith(
        {"energy": "lowest-energy fleet: ", "gpus": "fewest-GPU fleet: "}[objective])
    if objective == "energy":  # the verdict shows the objective's own figure
        assert f"{record['energy_kwh']:.4g} kWh over the trace)" in record["message"]
    t = pq.read_table(tmp_path / "candidates.parquet").to_pandas()
    ok = t[(t.trace == "search") & t.slo_met]
    col = {"energy": "energy_kwh", "gpus": "gpu_count"}[objective]
    assert t.loc[t.chosen & (t.trace == "search"), col].iloc[0] == ok[col].min()


def test_single_type_only_and_disaggregated_candidates(tmp_path):
    cfg = compose_plan(*SMALL, "plan.mix=false", "plan.candidates.h100.role=disaggregated",
                       "plan.pd_ratios=[1:1,1:2]", "plan.load_sensitivity=0",
                       "plan.report=false")
    record = run_plan(cfg, tmp_path)
    assert record["slo_met"]
    pools = {f["pool"] for f in record["fleet"]}
    assert pools in ({"a100"}, {"h200"}, {"h100-prefill", "h100-decode"})
    ratios = [r["pd_ratio"] for r in record["search"]["single_type"] if r["candidate"] == "h100"]
    assert ratios == ["1:1", "1:2"]
    same = [r for r in record["search"]["single_type"] if r["candidate"] == "h100"]
    assert same[1]["same_as"] == ("1:1" if same[1]["fleet"] == same[0]["fleet"] and
                                  same[0]["fleet"] else None)


def test_an_exhausted_search_budget_is_reported(tmp_path):
    cfg = compose_plan(*SMALL, "plan.max_evaluations=2", "plan.load_sensitivity=0",
                       "plan.report=false")
    record = run_plan(cfg, tmp_path)
    assert record["search"]["complete"] is False
    assert record["search"]["search_evaluations"] == 2
    assert "stopped at plan.max_evaluations (2)" in record["message"]


def test_a_gpu_without_kernel_measurements_is_flagged_uncalibrated(tmp_path):
    cfg = compose_plan(*SMALL, "plan.load_sensitivity=0", "plan.mix=false",
                       "+plan.candidates.mi300x={gpu: mi300x-192gb, model: llama3.1-70b, tp: 1}")
    record = run_plan(cfg, tmp_path)
    assert record["uncalibrated"] == ["mi300x"]  # the other candidates' GPUs are measured
    single = {c["candidate"]: c["uncalibrated"] for c in record["search"]["single_type"]}
    assert single == {"a100": False, "h100": False, "h200": False, "mi300x": True}
    md = (tmp_path / "report.md").read_text()
    assert "| mi300x (uncalibrated: roofline) |" in md  # the compared single-type fleet
    rough = [f for f in record["fleet"] if "uncalibrated" in f["calibration"]]
    if rough:  # recommended: the verdict and the fleet table say so
        assert "Note: uncalibrated: roofline for mi300x (mi300x-192gb)" in record["message"]
        assert "| uncalibrated: roofline |" in md
    else:
        assert "uncalibrated" not in record["message"]


def test_a_budget_that_stops_the_search_does_not_claim_no_fleet_meets_the_slo(tmp_path):
    cfg = compose_plan(*SMALL, "plan.max_evaluations=1", "plan.load_sensitivity=0",
                       "plan.report=false", "plan.slo.ttft_p99_s=0.35")
    record = run_plan(cfg, tmp_path)
    assert record["slo_met"] is False and record["search"]["complete"] is False
    assert "instances per pool met it" not in record["message"]
    assert "no fleet simulated before the search budget ran out met it" in record["message"]
    assert "stopped at plan.max_evaluations (1)" in record["message"]


def test_run_wide_slo_thresholds_the_plan_does_not_target_are_named():
    """`python -m wrpsim.plan slo.ttft_s=1.0` planned for p99 TTFT <= 2 s and said 'meets the
    SLO': the thresholds only matter with plan.slo.attainment_min, so a changed one warns."""
    import warnings

    from wrpsim.errors import WrpsimWarning
    from wrpsim.plan.planner import _warn_unused_thresholds

    def said(cfg, plan):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _warn_unused_thresholds(cfg, plan)
        return [str(w.message) for w in caught if issubclass(w.category, WrpsimWarning)]

    from types import SimpleNamespace

    from wrpsim.plan.slo import SLOTargets

    plan = SimpleNamespace(slo=SLOTargets.parse({"ttft_p99_s": 2.0}))
    assert said({"slo": {"ttft_s": 2.0, "tpot_s": 0.1}}, plan) == []  # the defaults
    msg = said({"slo": {"ttft_s": 1.0, "tpot_s": 0.1}}, plan)
    assert len(msg) == 1 and msg[0].startswith("slo.ttft_s=1.0 is the per-request threshold")
    att = SimpleNamespace(slo=SLOTargets.parse({"ttft_p99_s": 2.0, "attainment_min": 0.99}))
    assert said({"slo": {"ttft_s": 1.0}}, att) == []


def test_a_p99_ttft_target_below_the_p99_prompts_prefill_is_impossible_at_any_count():
    """The TTFT floor of a percentile target is the prefill of the prompt at that percentile,
    alone (it was the median prompt's for every percentile, so a trace whose p99 prompt takes
    9 s to prefill searched up to 32 instances and never said why it missed p99 <= 2 s)."""
    from wrpsim.plan import estimate
    from wrpsim.plan.config import PoolTemplate
    from wrpsim.pool.fleet import build_latency, parse_pool

    cfg = {"gpu": "h100-80gb", "model": "llama3.1-70b", "tp": 4}
    t = PoolTemplate("h100", "h100", "both", cfg, "h100-80gb", 4, 16.0)
    stats = estimate.TraceStats(100, 100.0, 1.0, 1.0, 2000.0, 200.0, 1000.0, 90000,
                                prompt_p90=8000.0, prompt_p99=85000.0)
    lat = build_latency(parse_pool("h100", {**cfg, "count": 1}))
    p50, p99 = estimate.floors(t, stats), estimate.floors(t, stats, "p99")
    assert p50["ttft"] == lat.iteration_s(1000, 1000 * 1001 / 2, 0, 0)
    assert p99["ttft"] == lat.iteration_s(85000, 85000 * 85001 / 2, 0, 0) > 2.0 > p50["ttft"]
    assert p99["prompt"] == 85000 and p99["tpot"] == p50["tpot"]


def test_a_plan_sweep_keeps_stdout_for_the_json_lines(tmp_path):
    """Hydra's 'Launching 2 jobs locally' lines went to stdout in a plan sweep (conf/plan.yaml
    lacked the run app's hydra_logging), so json=true lines could not be parsed."""
    cmd = [sys.executable, "-m", "wrpsim.plan", "-m", "workload.max_requests=200",
           "plan.load_sensitivity=0", "plan.report=false", "plan.objective=cost,gpus",
           "json=true", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert p.returncode == 0, p.stderr
    assert [json.loads(ln)["objective"] for ln in p.stdout.splitlines()] == ["cost", "gpus"]
    assert "Launching 2 jobs" in p.stderr


def test_energy_objective_reports_the_energy_of_the_fleet_needed_at_other_loads(tmp_path):
    """Under plan.objective=energy the load-sensitivity rows carry the energy of the fleet
    needed at that load (`needed_energy_kwh`: its own evaluation's energy_kwh), and report.md's
    load table shows it."""
    cfg = compose_plan(*SMALL, "plan.objective=energy", "plan.load_sensitivity=0.2")
    record = run_plan(cfg, tmp_path)
    rows = record["load_sensitivity"]
    assert [r["load"] for r in rows] == [0.8, 1.2]
    assert all(r["needed_counts"] for r in rows)  # (this small plan finds one at each load)
    t = pq.read_table(tmp_path / "candidates.parquet").to_pandas()
    for r in rows:
        if r["needed_counts"] is None:
            assert r["needed_energy_kwh"] is None
            continue
        same = t.trace == f"load-{r['load']:g}"
        for pool, n in r["needed_counts"].items():
            same &= t[f"count.{pool}"] == n
        run = t[same]
        assert len(run) == 1 and run.energy_kwh.iloc[0] == r["needed_energy_kwh"]
    md = (tmp_path / "report.md").read_text()
    assert "kWh needed (over that load's trace)" in md


def test_a_fabric_too_small_for_larger_fleets_bounds_the_search_instead_of_aborting(tmp_path):
    """A fleet with more GPUs than the `network` fabric holds is out of the planner's reach,
    not a config error: the search stops at the largest fleet that fits (16 GPUs: 2 + 2
    instances of 4), never simulates a larger one, and the message says the fabric bounded it."""
    cfg = compose_plan("workload.end_s=120", "workload.rate_scale=5", "~plan.candidates.a100",
                       "~plan.candidates.h200", "plan.candidates.h100.role=disaggregated",
                       "plan.pd_ratios=[1:1]", "plan.load_sensitivity=0", "plan.report=false",
                       "network=fluid", "network.leaves=8", "network.hosts_per_leaf=2")
    record = run_plan(cfg, tmp_path)
    assert record["gpu_count"] <= 16
    rows = pq.read_table(tmp_path / "candidates.parquet").to_pylist()
    assert rows and max(r["gpu_count"] for r in rows) <= 16
    assert "The network fabric bounded the search: " in record["message"]
    assert "the fabric has 16" in record["message"]
    if record["message"].startswith("no fleet meets"):  # no claim of a search to max_instances
        assert "fewer where the network fabric bounded the search" in record["message"]
    if record["slo_met"]:  # (then one instance fewer is judged, with its reason in plan.json)
        assert all(o["reason"] for o in record["one_fewer"])


def test_an_impossible_target_on_a_small_fabric_reports_a_closest_fleet_that_fits(tmp_path):
    """A target no count meets makes the planner simulate best-effort fleets instead of
    searching; on a fabric of 16 GPUs the first of them is halved until it fits (it used to be
    simulated unplaced, leaving no fleet to report: a traceback). The verdict names a fleet
    the fabric holds."""
    cfg = compose_plan("workload.end_s=120", "workload.rate_scale=5", "~plan.candidates.a100",
                       "~plan.candidates.h200", "plan.candidates.h100.role=disaggregated",
                       "plan.pd_ratios=[1:1]", "plan.load_sensitivity=0", "plan.report=false",
                       "network=fluid", "network.leaves=8", "network.hosts_per_leaf=2",
                       "plan.slo.ttft_p99_s=0.001")
    record = run_plan(cfg, tmp_path)
    assert record["message"].startswith("no fleet meets the SLO")
    assert "impossible at any count" in record["message"]
    assert 0 < record["gpu_count"] <= 16


def test_a_fabric_smaller_than_any_fleet_is_one_clear_error(tmp_path):
    """Disaggregated TP 8 needs two servers of 8 GPUs; a fabric of one server holds no fleet
    of the candidate at all: a ConfigError that says so and what to change."""
    cfg = compose_plan("workload.end_s=60", "~plan.candidates.a100", "~plan.candidates.h200",
                       "plan.candidates.h100.role=disaggregated", "plan.candidates.h100.tp=8",
                       "plan.pd_ratios=[1:1]", "plan.load_sensitivity=0", "plan.report=false",
                       "network=fluid", "network.leaves=8", "network.hosts_per_leaf=1")
    with pytest.raises(ConfigError, match=r"no fleet of plan.candidates fits the network "
                                          r"fabric.*the fabric has 8 GPUs.*network.leaves"):
        run_plan(cfg, tmp_path)


def test_two_candidates_kv_types_never_pair_in_one_fleet(tmp_path):
    """Disaggregated candidates of FP8 and BF16 KV caches are a valid plan: mixing never pairs
    one's prefill pools with the other's decode pools (such a fleet cannot run), so the plan
    neither refuses the config nor stops at its first such fleet; `plan.pd_ratios: null` is
    the default 1:1."""
    from wrpsim.plan.evaluate import Evaluator

    cfg = compose_plan("workload.end_s=120", "plan.candidates.h100.role=disaggregated",
                       "+plan.candidates.h100.kv_dtype=fp8",
                       "plan.candidates.h200.role=disaggregated", "plan.load_sensitivity=0",
                       "plan.report=false", "plan.pd_ratios=null")
    record = run_plan(cfg, tmp_path)
    assert record["search"]["pd_ratios"] == ["1:1"]
    widths = {f["kv_dtype"] in ("fp8",) for f in record["fleet"] if f["role"] != "both"}
    assert len(widths) <= 1
    from wrpsim.plan.config import parse_plan

    plan = parse_plan(cfg["plan"])
    ev = Evaluator({}, plan.pools, plan.slo, {}, 10)
    names = [p.name for p in plan.pools]
    mixed = tuple(1 if n in ("h100-prefill", "h200-decode") else 0 for n in names)
    assert "prefill and decode pools with KV caches of different types (bf16 in h200-decode, " \
           "fp8 in h100-prefill)" in ev.invalid(mixed)


def test_a_closed_loop_trace_is_described_by_its_clients():
    """A closed-loop benchmark has every arrival at 0: the plan describes it by its clients,
    not as "400 requests over 0 s"; a timed trace keeps its span."""
    from wrpsim.plan.config import parse_plan
    from wrpsim.plan.planner import build_traces

    cfg = compose_plan("workload=closed-loop", "workload.source.concurrency=16",
                       "workload.source.num_requests=64", "plan.load_sensitivity=0")
    traces = build_traces(cfg, parse_plan(cfg["plan"]), 0)
    assert traces["full"].description == "full trace: 64 requests from 16 closed-loop clients"
    timed = compose_plan("workload.end_s=120", "plan.load_sensitivity=0")
    desc = build_traces(timed, parse_plan(timed["plan"]), 0)["full"].description
    assert desc.startswith("full trace: ") and desc.endswith(" s") and "over" in desc


def test_a_closed_loop_first_guess_follows_its_clients():
    """A closed loop's arrivals are all at 0 (no rate): the first guess takes its clients'
    rate by Little's law, so it grows with the clients and stays below the cap, where the
    peak "rate" of a zero-length trace sent it to `max_instances`."""
    from wrpsim.plan import estimate
    from wrpsim.plan.config import parse_plan
    from wrpsim.plan.planner import build_traces

    guesses = []
    for clients in (8, 64):
        cfg = compose_plan("workload=closed-loop", f"workload.source.concurrency={clients}",
                           "workload.source.num_requests=256", "plan.load_sensitivity=0")
        plan = parse_plan(cfg["plan"])
        stats = estimate.trace_stats(build_traces(cfg, plan, 0)["search"].frame)
        assert stats.clients == clients
        pools = [p for p in plan.pools if p.candidate == plan.candidates[0]]
        guesses.append(sum(estimate.first_guess(pools, stats, plan.slo,
                                                plan.max_instances).values()))
    assert guesses[0] < guesses[1] < len(pools) * plan.max_instances


def test_drops_within_unserved_max_do_not_make_a_candidate_impossible(tmp_path):
    """A KV cache too small for the longest requests drops them at any count — but when the
    target allows that share unserved, the candidate is not impossible (it was reported as a
    miss 'by -4.8 %' though every margin held); a prefill pool needs room for the prompt
    alone (prompt + output was checked)."""
    cfg = compose_plan("workload.end_s=60", "~plan.candidates.a100", "~plan.candidates.h200",
                       "+plan.candidates.h100.kv_blocks=200", "plan.slo.unserved_max=0.1",
                       "plan.load_sensitivity=0", "plan.report=false")
    record = run_plan(cfg, tmp_path / "kv")
    assert "dropped at any count" not in record["message"] and record["slo_met"]
    cfg = compose_plan("workload.end_s=60", "~plan.candidates.a100", "~plan.candidates.h200",
                       "plan.candidates.h100.role=disaggregated",
                       "+plan.candidates.h100.prefill={kv_blocks: 258}", "plan.pd_ratios=[1:1]",
                       "plan.load_sensitivity=0", "plan.report=false")
    record = run_plan(cfg, tmp_path / "pre")
    assert "KV" not in record["message"] and record["slo_met"]


def test_the_ttft_floor_is_no_bound_where_a_prefix_cache_skips_prompt_tokens(tmp_path):
    """Sessions sharing an 8,000-token system prompt: one instance's time for the whole median
    prompt (0.61 s) made a 0.3 s p50 target 'impossible at any count', where the cache
    serves most of each prompt (measured p50 TTFT 0.06 s)."""
    cfg = compose_plan("workload=chat-sessions", "workload.source.num_sessions=100",
                       "workload.source.system={tokens: 8000, prefixes: 1, zipf_s: 1.0}",
                       "workload.source.first_prompt={dist: lognormal, mean: 64, sigma: 0.3, "
                       "max: 200}",
                       "workload.source.new_tokens={dist: lognormal, mean: 32, sigma: 0.3, "
                       "max: 100}",
                       "workload.source.output={dist: geometric, mean: 32, max: 64}",
                       "workload.source.turns={dist: geometric, mean: 1, max: 1}",
                       "~plan.candidates.a100", "~plan.candidates.h200",
                       "plan.slo.ttft_p99_s=null", "+plan.slo.ttft_p50_s=0.3",
                       "plan.load_sensitivity=0", "plan.report=false")
    record = run_plan(cfg, tmp_path)
    assert "impossible" not in record["message"] and record["slo_met"]


def test_a_plan_on_the_nic_network_runs_and_a_grown_search_fleet_is_said(tmp_path):
    """network=nic (in --help) failed: the fabric check built a fabric of kind nic. And a fleet
    the search found on a window, failed on the full trace and grown, was called the cheapest
    without a word (another fleet may be cheaper on the full trace)."""
    cfg = compose_plan("workload.end_s=60", "network=nic", "plan.load_sensitivity=0",
                       "plan.report=false")
    assert run_plan(cfg, tmp_path / "nic")["slo_met"]
    cfg = compose_plan("workload.end_s=60", "workload.rate_scale=3", "plan.search_window_s=5",
                       "plan.slo.ttft_p99_s=0.6", "plan.load_sensitivity=0",
                       "plan.report=false")
    record = run_plan(cfg, tmp_path / "grown")
    assert record["message"].startswith("fleet (the search's cheapest on busiest 5 s window")
    assert "failed the full trace and was grown)" in record["message"]


def test_a_fixed_length_closed_loop_recheck_is_said_to_add_no_evidence(tmp_path):
    """The recheck of a closed loop of fixed lengths replays the same requests; the note said
    so for one request but not for 200 (the reshuffled clients' column changed dtype, so the
    two traces did not compare equal)."""
    cfg = compose_plan("workload=closed-loop", "workload.max_requests=200",
                       "plan.load_sensitivity=0", "plan.report=false")
    record = run_plan(cfg, tmp_path)
    assert record["message"].endswith("so the recheck replayed the same requests and adds no "
                                      "evidence).")


def test_the_plans_router_takes_the_deployment_keys_a_run_takes():
    """docs/planning.md plans with `router.view.kind=oracle`; the planner's config had no
    router deployment block, so the override was 'router.view: unknown key'."""
    cfg = compose_plan("router.view.kind=oracle", "router.replicas=2")
    assert cfg["router"]["view"] == {"kind": "oracle", "interval_s": 1.0, "delay_s": 0.0}
    assert cfg["router"]["replicas"] == 2
    assert cfg["router"]["_target_"] == "wrpsim.router.LeastOutstanding"


def test_a_fleet_with_instances_to_spare_is_shrunk_to_the_one_that_is_needed(tmp_path):
    """A search cut short by its budget stopped at 3 × A100 while its own one-fewer check found
    2 × A100 meeting the SLO on both traces ('meets the SLO on both traces' beside the
    'cheapest' fleet): the plan is now the smaller fleet, and says where the search stopped."""
    cfg = compose_plan("workload.end_s=60", "plan.max_evaluations=1", "plan.report=false")
    record = run_plan(cfg, tmp_path)
    assert record["slo_met"]
    assert "where the search stopped, had instances to spare: fewer met both traces" in record[
        "message"]
    assert not any(o["slo_met"] for o in record["one_fewer"])


def test_a_templates_context_limit_is_the_runs():
    """The planner's context-drop note uses the limit the run enforces (`parse_pool`): the
    pool's max_context, else the model's, and none under a constant latency model."""
    from wrpsim.plan.config import PoolTemplate
    from wrpsim.plan.planner import _context_of

    base = {"gpu": "h100-80gb", "model": "llama3.1-8b", "tp": 1}

    def ctx(**cfg):
        return _context_of(PoolTemplate("p", "c", "colocated", {**base, **cfg}, "h100-80gb", 1,
                                        1.0))

    assert ctx() == 131072
    assert ctx(max_context=8192) == 8192
    assert ctx(latency={"kind": "constant", "decode_step_s": 0.02, "prefill_s_fixed": 0.1},
               kv_blocks=1000) == 0
    assert ctx(gpu="no-such-gpu") == 0  # (the run refuses it; the estimate does not fail first)


def test_a_router_files_own_deployment_is_kept_in_a_plan():
    """conf/plan.yaml's router deployment (service.signal: none) is a default, as in
    conf/config.yaml: it listed `_self_` after the router group, so a plan simulated
    semantic-multi-signal without the signal cost its file sets (service.signal: rules)."""
    from tests.conftest import compose_cfg

    cfg = compose_plan("router=semantic-multi-signal")
    assert cfg["router"]["service"]["signal"] == "rules"
    assert cfg["router"]["service"] == compose_cfg(
        "router=semantic-multi-signal")["router"]["service"]
    assert compose_plan()["router"]["service"]["signal"] == "none"
    assert compose_plan("router.service.signal=cpu_rule")["router"]["service"]["signal"] \
        == "cpu_rule"


def test_a_setting_that_changes_nothing_is_warned_once_per_plan_not_muted(tmp_path):
    """Every simulation of a plan builds the same settings: their warnings (here the NIC
    bandwidth that network.kind=none ignores) were muted with the fleet-larger-than-trace one;
    now each is one line per plan, and that one stays muted."""
    p = plan_cli(tmp_path, "workload.max_requests=200", "network=nic", "network.kind=none")
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("wrpsim: warning:")]
    assert len(lines) == 1 and "network.nic_gbps=400 changes nothing" in lines[0], p.stderr
    (tmp_path / "b").mkdir()
    p = plan_cli(tmp_path / "b", "workload.max_requests=3")
    assert p.returncode == 0 and "wrpsim: warning:" not in p.stderr, p.stderr


def test_a_candidates_own_warning_is_one_line_per_plan(tmp_path):
    """A candidate setting that changes nothing (a host-DRAM KV tier without a prefix cache)
    is warned about when the plan is read; the estimates, checks and simulations that parse
    the candidate again said it six more times, and now do not."""
    import warnings

    cfg = compose_plan("workload.max_requests=200", "~plan.candidates.a100",
                       "~plan.candidates.h200", "plan.load_sensitivity=0", "plan.report=false",
                       "+plan.candidates.h100.kv_tiers.dram_gib=10",
                       "+plan.candidates.h100.prefix_cache.enabled=false")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        run_plan(cfg, tmp_path)
    dram = [w for w in seen if "kv_tiers.dram_gib" in str(w.message)]
    assert len(dram) == 1, [str(w.message) for w in seen]


def test_a_plan_whose_fleet_runs_past_512_sequences_a_step_says_so(tmp_path):
    """A planned fleet whose pool averages more than 512 decoding sequences an iteration on the
    full trace is warned about once, as a run is (its decode times there likely optimistic:
    docs/validation.md); with more instances sharing the load, it is not."""
    import warnings

    from wrpsim.errors import WrpsimWarning

    load = ("workload=closed-loop", "workload.source.concurrency=1024",
            "workload.source.num_requests=2048", "workload.source.prompt_tokens=32",
            "workload.source.output_tokens=512", "plan.candidates.h100.scheduler.max_seqs=1024",
            "~plan.candidates.a100", "~plan.candidates.h200", "plan.report=false",
            "plan.load_sensitivity=0")
    cfg = compose_plan(*load, "plan.slo.ttft_p99_s=1000", "plan.slo.tpot_p99_s=1")
    with pytest.warns(WrpsimWarning, match=r"plan: the planned fleet's pool h100: its busiest "
                                           r"instance ran [\d,]+ decoding sequences") as got:
        record = run_plan(cfg, tmp_path / "one")
    assert record["slo_met"]
    assert sum("above 512 sequences a step" in str(w.message) for w in got) == 1
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        more = run_plan(compose_plan(*load, "plan.slo.tpot_p99_s=0.05"), tmp_path / "more")
    assert more["slo_met"] and more["counts"] == {"h100": 4}  # ~256 sequences each
    assert not any("above 512 sequences a step" in str(w.message) for w in seen)


def test_a_candidates_kv_too_small_for_its_context_is_said_once_under_its_plan_key(tmp_path):
    """Qwen3-32B on one H100 at gpu_mem_util 0.9 holds KV for fewer tokens than its context:
    the plan said so under `plan.candidates.h100`, then every fleet it simulated said it again
    under `pool.pools.h100` — a key a plan refuses (review of 2026-12-07). Once, under the
    plan's key."""
    import warnings

    cfg = compose_plan("workload.max_requests=100", "~plan.candidates.a100",
                       "~plan.candidates.h200", "plan.load_sensitivity=0", "plan.report=false",
                       "plan.candidates.h100.model=qwen3-32b", "plan.candidates.h100.tp=1",
                       "+plan.candidates.h100.scheduler.gpu_mem_util=0.9")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        run_plan(cfg, tmp_path)
    said = [str(w.message) for w in seen if "fewer than its max_context" in str(w.message)]
    assert len(said) == 1 and said[0].startswith("plan.candidates.h100: "), said
    assert "Set plan.candidates.h100.max_context to at most" in said[0]


def test_each_pool_says_its_batching_so_a_candidate_added_without_a_scheduler_is_seen(
        tmp_path):
    """A candidate added with '+' and no `scheduler` takes its engine's batch defaults (vLLM's
    8,192 tokens and 1,024 sequences on a B200), where the shipped candidates set 2,048 and
    256; the report did not show it (new-user walkthrough, 2026-12-07). Each pool's batching
    is in plan.json's fleet rows and the report's fleet table."""
    from wrpsim.plan.config import parse_plan
    from wrpsim.plan.report import fleet_table

    cfg = compose_plan("+plan.candidates.b200.gpu=b200-180gb",
                       "+plan.candidates.b200.model=llama3.1-70b", "+plan.candidates.b200.tp=2")
    got = {p.name: p.batching for p in parse_plan(cfg["plan"]).pools}
    assert got["b200"] == "sarathi, 8,192 tokens, 1,024 sequences"
    assert got["h100"] == got["a100"] == "sarathi, 2,048 tokens, 256 sequences"
    head, rows = fleet_table({"fleet": [{"pool": "b200", "gpu": "b200-180gb", "tp": 2,
                                          "role": "both", "count": 1, "gpus": 2,
                                          "cost_per_hour_usd": 16.0, "batching": got["b200"],
                                          "calibration": "vllm-0.24: kernels"}]})
    assert rows[0][head.index("batching")] == got["b200"]
