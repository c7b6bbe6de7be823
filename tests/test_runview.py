"""What a run and a sweep print for a person (stderr) and for a script (`json=true`, stdout)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_app
from wrpsim.runview import SWEEP_HEADER, run_line, sweep_header, sweep_line
from wrpsim.verdict import verdict

SMALL = ("workload.max_requests=200", "pool.pools.h100.count=2")


def test_a_run_prints_a_short_summary_on_stderr_and_nothing_on_stdout(monkeypatch, capsys,
                                                                      tmp_path):
    code, out, err = run_app(monkeypatch, capsys, tmp_path, *SMALL)
    assert code == 0, err
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == ("wrpsim: azure-conv-2023 -> round_robin -> h100-llama70b + 1 pool "
                        "override (seed 0)")
    assert [ln.split()[0] for ln in lines[1:]] == [
        "fleet", "requests", "TTFT", "TPOT", "SLO", "QoE", "cost", "energy", "time", "results"]
    assert lines[1] == "  fleet      h100: 2 x 4 h100-80gb (llama3.1-70b) = 8 GPUs"
    assert lines[2] == "  requests   200 total, 200 completed, 0 dropped, 0 unfinished"
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert f"${s['cost_usd']:,.2f} total over the trace" in err
    from wrpsim.runview import _kwh

    assert f"{_kwh(s['energy_kwh'])} kWh total (PUE 1.3)" in err
    assert (_kwh(9.7712), _kwh(0.0021935), _kwh(0.15), _kwh(0.0)) == (
        "9.77", "0.00219", "0.150", "0.00")
    assert f"results    {tmp_path / 'run'}" in err
    import pyarrow.parquet as pq  # token-budget use: batch tokens over the budget, per instance

    inst = pq.read_table(tmp_path / "run" / "instances.parquet").to_pylist()
    for i in inst:
        tokens = i["prefill_tokens"] + i["decode_tokens"]
        assert 0 < i["token_budget_use"] == min(1.0, tokens / (i["iterations"] * 2048))
    assert s["mean_token_budget_use"] == pytest.approx(
        sum(i["token_budget_use"] for i in inst) / len(inst))
    assert s["mean_kv_use"] == pytest.approx(sum(i["kv_mean_util"] for i in inst) / len(inst))
    assert s["mean_decode_batch"] == pytest.approx(
        sum(i["decode_tokens"] / i["decode_iterations"] for i in inst) / len(inst))


def test_json_true_prints_the_summary_json_on_stdout_and_does_not_change_results(
        monkeypatch, capsys, tmp_path):
    code, out, _ = run_app(monkeypatch, capsys, tmp_path, *SMALL, "json=true")
    assert code == 0
    assert json.loads(out) == json.loads((tmp_path / "run" / "summary.json").read_text())
    first = (tmp_path / "run" / "requests.parquet").read_bytes()
    config = (tmp_path / "run" / "config.yaml").read_text()
    assert "json" not in config  # a printing option, not part of the scenario
    code, out, _ = run_app(monkeypatch, capsys, tmp_path, *SMALL)
    assert code == 0 and out == ""
    assert (tmp_path / "run" / "requests.parquet").read_bytes() == first
    code, _, err = run_app(monkeypatch, capsys, tmp_path, *SMALL, "json=yes")
    assert code == 2 and err.strip() == "wrpsim: error: json must be true or false, got 'yes'"


def test_json_true_in_a_sweep_names_each_run_also_when_resumed(monkeypatch, capsys, tmp_path):
    """Parallel jobs print in completion order: each line says its run, folder and overrides;
    a run skipped on resume prints its stored summary the same way."""
    args = ("-m", *SMALL, "router=round-robin,least-outstanding", "json=true")
    code, out, _ = run_app(monkeypatch, capsys, tmp_path, *args)
    assert code == 0
    first = [json.loads(ln) for ln in out.splitlines()]
    assert [(d["run"], d["overrides"][-1]) for d in first] == [
        ("0", "router=round-robin"), ("1", "router=least-outstanding")]
    for d in first:
        stored = json.loads((tmp_path / "sweep" / d["run"] / "summary.json").read_text())
        assert {k: v for k, v in d.items() if k not in ("run", "out_dir", "overrides")} == stored
        assert d["out_dir"] == str(tmp_path / "sweep" / d["run"])
        assert not any(o.startswith("json=") for o in d["overrides"])
    code, out, err = run_app(monkeypatch, capsys, tmp_path, *args)
    assert code == 0 and err.count("already completed with the same config") == 2
    assert [json.loads(ln) for ln in out.splitlines()] == first


def test_a_sweep_prints_aligned_lines_and_a_closing_table(monkeypatch, capsys, tmp_path):
    code, out, err = run_app(monkeypatch, capsys, tmp_path, "-m", *SMALL,
                             "router=round-robin,least-outstanding",
                             "pool.pools.h100.gpu=h100-80gb,a10g-24gb")
    assert code == 0 and out == ""
    lines = [ln for ln in err.splitlines() if not ln.startswith("[")]
    sweep = tmp_path / "sweep"
    start = lines.index(f"wrpsim: sweep {sweep}: 4 runs (p99 latencies in s; goodput in "
                        f"req/s; cost and energy are totals over the trace)")
    table = lines[start:]
    assert table[1] == "  every run: pool.pools.h100.count=2 workload.max_requests=200"
    assert table[2] == SWEEP_HEADER
    rows = table[3:7]
    assert [r.split()[0] for r in rows] == ["0", "1", "2", "3"]
    assert rows[1].split()[1:4] == ["failed", "(see", "1/error.json)"]  # a10g: 70B does not fit
    ok = [r for r in rows if "failed" not in r]
    assert len(ok) == 2 and len({r.index(" router=") for r in ok}) == 1  # aligned columns
    assert table[7].startswith("best SLO attainment (within 0.1 point ties), then lowest cost "
                               "(within 1 % ties), then fewest requests unanswered, then lower "
                               "p99 TTFT, then run number: run ")
    per_run = [ln for ln in lines[:start] if ln.startswith("wrpsim: run ")]
    assert [ln.split()[2] for ln in per_run] == ["0", "2"]  # as each completed run finished
    assert len({ln.index(" | SLO ") for ln in per_run}) == 1  # aligned
    assert per_run[1].endswith("GPUs | workload.max_requests=200 pool.pools.h100.count=2 "
                               "router=least-outstanding pool.pools.h100.gpu=h100-80gb")
    assert sum(ln.startswith("wrpsim: error: ") for ln in lines[:start]) == 2  # failed ones
    assert not any("offered load" in ln for ln in table)


def test_a_sweep_over_load_warns_that_costs_compare_at_one_load_only(monkeypatch, capsys,
                                                                     tmp_path):
    """Runs at rate_scale 1 and 4 replay traces of different lengths: the cheaper total can be
    the shorter trace's; the closing table says so, as the dashboard does."""
    code, _, err = run_app(monkeypatch, capsys, tmp_path, "-m", *SMALL,
                           "workload.rate_scale=1,4")
    assert code == 0, err
    assert ("  the runs differ in offered load (workload.rate_scale): a total over the trace "
            "shrinks with a shorter trace, so compare costs of runs at the same load"
            ) in err.splitlines()


def test_a_sweep_over_traces_of_different_sizes_says_costs_do_not_compare(monkeypatch, capsys,
                                                                         tmp_path):
    """A sweep over max_requests (or trace files) compared totals over traces of 100 and 300
    requests without a word: no swept key measures load, but the traces differ in size."""
    code, _, err = run_app(monkeypatch, capsys, tmp_path, "-m", "pool.pools.h100.count=2",
                           "workload.max_requests=100,300")
    assert code == 0, err
    assert ("  the runs replay traces of 100 to 300 requests: a total over the trace shrinks "
            "with a shorter trace, so compare costs of runs at the same load"
            ) in err.splitlines()
    from wrpsim.report.choice import trace_sizes

    assert trace_sizes([{"requests_total": 5}, {"requests_total": 5}, None]) is None
    assert trace_sizes([{"requests_total": 1200}, {"requests_total": 5}]) == "5 to 1,200"


def test_a_sweep_with_no_run_says_so(monkeypatch, capsys, tmp_path):
    """`seed=range(0,0)`: Hydra launched nothing and said only 'Launching 0 jobs'."""
    code, _, err = run_app(monkeypatch, capsys, tmp_path, "-m", *SMALL, "seed=range(0,0)")
    assert code == 0, err
    assert any(ln.startswith("wrpsim: warning: the sweep ") and ln.endswith(
        "has no run: a swept value list is empty") for ln in err.splitlines()), err


def test_a_sweep_over_qoe_shows_the_qoe_mean_of_each_run(monkeypatch, capsys, tmp_path):
    code, _, err = run_app(monkeypatch, capsys, tmp_path, "-m", *SMALL, "qoe.ttft_s=0.05",
                           "qoe.tokens_per_s=5,200")
    assert code == 0, err
    q = [json.loads((tmp_path / "sweep" / r / "summary.json").read_text())["qoe_mean"]
         for r in ("0", "1")]
    assert q[0] > q[1]  # a faster reader is harder to keep up with
    lines = err.splitlines()
    per_run = sorted(ln for ln in lines if ln.startswith("wrpsim: run "))
    assert [ln.split(" | QoE ")[1][:5] for ln in per_run] == [f"{x:.3f}" for x in q]
    head = lines.index(SWEEP_HEADER)
    assert [ln.split()[5] for ln in lines[head + 1:head + 3]] == [f"{x:.3f}" for x in q]


def test_run_line_has_labelled_fixed_width_fields():
    s = {"ttft_p99_s": 0.5, "tpot_p99_s": 0.02, "slo_attainment": 0.987, "cost_usd": 1234.5,
         "energy_kwh": 12.0, "gpu_count": 16}
    a = run_line(s, "3", ["router=x"])
    assert a == ("wrpsim: run    3 | TTFT p99    500 ms | TPOT p99     20 ms | SLO  98.7 % | "
                 "QoE     – | $   1,234.50 |     12.00 kWh |    16 GPUs | router=x")
    b = run_line({**s, "ttft_p99_s": 12.25, "cost_usd": 1.0, "qoe_mean": 0.87649}, "12",
                 ["router=yy"])
    assert "| SLO  98.7 % | QoE 0.876 | $" in b
    assert len(a.split("router=")[0]) == len(b.split("router=")[0])


def test_sweep_line_columns_have_fixed_widths():
    s = {"ttft_p99_s": 0.5, "tpot_p99_s": 0.02, "slo_attainment": 0.987, "goodput_rps": 4.2,
         "cost_usd": 1234.5, "energy_kwh": 12.0, "gpu_count": 16}
    a = sweep_line(s, "3", ["router=x"])
    b = sweep_line({**s, "cost_usd": 1.0, "ttft_p99_s": 12.25, "qoe_mean": 0.5}, "12",
                   ["router=yy"])
    assert len(a.split("router=")[0]) == len(b.split("router=")[0]) == len(SWEEP_HEADER) - 9
    assert a.split() == ["3", "0.5", "0.02", "98.7", "%", "–", "4.2", "1,234.50", "12.00", "16",
                         "router=x"]
    assert b.split()[5] == "0.500" and SWEEP_HEADER.split()[4] == "qoe_mean"
    c = sweep_line(s, "3", ["router=x"], qoe=False)  # a sweep with QoE off everywhere
    assert c.split() == a.split()[:5] + a.split()[6:]
    assert len(c.split("router=")[0]) == len(sweep_header(qoe=False)) - 9
    assert "qoe_mean" not in sweep_header(qoe=False)


def test_an_overloaded_fleet_says_it_cannot_carry_the_trace(monkeypatch, capsys, tmp_path):
    code, _, err = run_app(monkeypatch, capsys, tmp_path, "workload.max_requests=300",
                           "workload.rate_scale=20", "pool.pools.h100.count=1")
    assert code == 0
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["slo_attainment"] < 0.5
    assert err.splitlines()[-1].startswith(
        f"wrpsim: warning: only {100 * s['slo_attainment']:.1f} % of requests met the SLO "
        f"(p99 TTFT ")
    assert err.splitlines()[-1].endswith("this fleet cannot carry the trace (python -m "
                                         "wrpsim.plan finds one that can)")


def test_an_slo_missed_on_an_idle_fleet_is_not_called_load():
    """tracelab-agent: 43-48k-token prefills miss the TTFT target with 0.08 s of queueing and
    20 % utilization: more instances would not help, so the warning must not say so."""
    from wrpsim.verdict import verdict

    s = {"requests_total": 300, "requests_completed": 300, "slo_attainment": 0.474,
         "ttft_p99_s": 4.43, "tpot_p99_s": 0.0185, "queue_wait_mean_s": 0.08,
         "mean_utilization": 0.20, "slo_ttft_s": 2.0}
    line = verdict(s)
    assert "cannot carry" not in line and line.startswith("only 47.4 % of requests met the SLO")
    assert "without queueing (mean queue wait 80 ms, utilization 20.0 %)" in line
    assert "prefill exceeds the TTFT target (2 s)" in line
    assert "cannot carry the trace" in verdict({**s, "queue_wait_mean_s": 1.5})
    assert "cannot carry the trace" in verdict({**s, "mean_utilization": 0.9})
    # disaggregated, decode-bound: prefill instances idle, requests wait for decode KV blocks
    assert "cannot carry the trace" in verdict({**s, "kv_wait_mean_s": 3.5})
    assert "cannot carry" not in verdict({**s, "kv_wait_mean_s": 0.0})


def test_misses_cut_off_by_the_horizon_are_called_so(monkeypatch, capsys, tmp_path):
    """A horizon that ends the run while most requests still run: they count as misses, and
    the warning says the horizon cut them off, not that prompts are too long for the GPU."""
    code, _, err = run_app(monkeypatch, capsys, tmp_path, "workload.max_requests=40",
                           "workload.rate_scale=10", "sim.horizon_s=3")
    assert code == 0, err
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["slo_attainment"] < 0.5 and s["requests_in_flight"] >= 0.5 * (
        s["requests_total"] - round(s["slo_attainment"] * s["requests_total"]))
    last = err.splitlines()[-1]
    assert (f"{s['requests_in_flight']:,} of {s['requests_total']:,} requests were still "
            f"running when the run ended at sim.horizon_s (3 s)") in last
    assert "idle fleet" not in last and "cannot carry" not in last


def test_misses_that_are_drops_are_called_drops_not_latency(monkeypatch, capsys, tmp_path):
    """Instances failing every 100 s with policy=drop: most requests are dropped while the
    completed ones meet the SLO; the warning must name the drops and their main reason, not
    blame long prompts on an idle fleet."""
    code, _, err = run_app(monkeypatch, capsys, tmp_path, "workload.max_requests=2000",
                           "failures=random", "failures.mtbf_s=100", "failures.policy=drop")
    assert code == 0, err
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["requests_dropped"] > 1000 and s["slo_attainment"] < 0.5
    reasons = s["drop_reasons"]
    assert sum(reasons.values()) == s["requests_dropped"]
    assert reasons.get("instance_failed", 0) == s["requests_lost"]
    main, n = max(reasons.items(), key=lambda kv: kv[1])
    last = err.splitlines()[-1]
    assert last.startswith("wrpsim: warning: only ")
    assert (f"{s['requests_dropped']:,} of 2,000 requests were dropped, most for {main} "
            f"({n:,}") in last
    assert "the misses are dropped requests, not latency" in last
    assert "idle fleet" not in last and "cannot carry" not in last
    # drops that are a minority of the misses leave the latency verdict in charge
    few = {**s, "requests_dropped": 10, "drop_reasons": {"context": 10}}
    assert "dropped" not in verdict(few)
    # no drops at all: summary.json still says so
    assert verdict({**s, "requests_dropped": 0, "drop_reasons": {}}) is not None


def test_verdict_is_silent_for_a_fleet_that_carries_its_trace():
    assert verdict({"requests_total": 10, "requests_completed": 10, "slo_attainment": 0.9}) is None
    assert verdict({"requests_total": 10, "requests_completed": 0, "slo_attainment": 0.0}) \
        .startswith("no request of 10 completed")


def test_a_dropped_request_is_never_silent(tmp_path):
    """A run that meets its SLO but drops a request too long for its model said only '1
    dropped'; now one warning per drop reason says how many and why — unless the verdict
    already blames the drops. A trace request beyond Llama-3.1-8B's 131,072-token context, run
    end to end, prints it."""
    import subprocess
    import sys

    from wrpsim.verdict import drop_warnings

    s = {"requests_total": 100, "requests_completed": 99, "requests_dropped": 1,
         "slo_attainment": 0.99, "drop_reasons": {"context": 1}}
    assert drop_warnings(s) == ["1 of 100 requests dropped for context (longer than the "
                                "context length: the model's, or the pool's max_context) "
                                "(requests.parquet: drop_reason)"]
    assert drop_warnings({**s, "drop_reasons": {}}) == []
    most = {**s, "requests_completed": 10, "requests_dropped": 90, "slo_attainment": 0.1,
            "drop_reasons": {"context": 90}}
    assert "dropped" in verdict(most) and drop_warnings(most, verdict(most)) == []
    # a sweep prints no verdict for its runs: there the drops are warned about all the same
    assert drop_warnings(most) == ["90 of 100 requests dropped for context (longer than the "
                                   "context length: the model's, or the pool's max_context) "
                                   "(requests.parquet: drop_reason)"]
    trace = tmp_path / "t.csv"
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                     "2023-11-16 18:15:46.0,100,10\n2023-11-16 18:15:46.5,200000,10\n"
                     "2023-11-16 18:15:47.0,100,10\n")
    p = subprocess.run(
        [sys.executable, "-m", "wrpsim", f"workload.source.path={trace}",
         "pool.pools.h100.model=llama3.1-8b", "pool.pools.h100.tp=1",
         "pool.pools.h100.count=1", f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert ("wrpsim: warning: 1 of 3 requests dropped for context (longer than the context "
            "length: the model's, or the pool's max_context)") in p.stderr

def test_summary_shows_prefix_hits_and_flags_a_measurement_fleet():
    from wrpsim.runview import run_summary

    s = {"requests_total": 10, "requests_completed": 10, "slo_attainment": 1.0,
         "prefix_hit_ratio_blocks": 0.366, "prefix_hit_ratio_tokens": 0.373}
    oracle = {"pool": {"pools": {"oracle": {"gpu": "h100-80gb", "model": "m", "count": 1,
                                            "latency": {"kind": "constant"},
                                            "prefix_cache": {"enabled": True}}}}}
    text = run_summary(s, oracle, "out")
    assert ("  prefix     36.6 % of prompt blocks (37.3 % of prompt tokens) served from the "
            "prefix cache") in text
    assert "not a serving estimate" in text
    served = {"pool": {"pools": {"h100": {"gpu": "h100-80gb", "model": "m", "count": 4}}}}
    text = run_summary({**s, "prefix_hit_ratio_blocks": None}, served, "out")
    assert "prefix " not in text and "not a serving estimate" not in text
    # hash ids in the trace but no pool caching prefixes: no line about the prefix cache
    assert "prefix " not in run_summary({**s, "prefix_hit_ratio_blocks": 0.0}, served, "out")


def test_the_winner_breaks_ties_by_p99_ttft_then_run_number():
    from wrpsim.report.choice import winner

    a = {"slo_attainment": 1.0, "cost_usd": 10.0, "ttft_p99_s": 0.5}
    assert winner([("0", {**a, "slo_attainment": 0.9, "cost_usd": 1.0}), ("1", a)]) == "1"
    assert winner([("0", a), ("1", {**a, "cost_usd": 9.0})]) == "1"  # then the lowest cost
    assert winner([("0", a), ("1", {**a, "ttft_p99_s": 0.4})]) == "1"  # equal cost: p99 TTFT
    assert winner([("10", a), ("2", a), ("3", a)]) == "2"  # all equal: run number, not text
    assert winner([("0", {**a, "ttft_p99_s": None}), ("1", a)]) == "1"  # missing p99 last
    assert winner([("0", {**a, "cost_usd": None}), ("1", {**a, "ttft_p99_s": 0.9})]) == "1"
    assert winner([("0", {**a, "cost_usd": None}), ("1", {**a, "cost_usd": None,
                                                          "ttft_p99_s": 0.4})]) == "1"
    assert winner([("0", None)]) is None


def test_a_run_that_dropped_requests_does_not_win_on_the_p99_it_left_them_out_of():
    """A failures sweep: the retry run answered every request (99.90 %, p99 TTFT 404 ms), the
    drop run lost 7 (99.88 %, 403 ms: its p99 leaves them out). Attainment and cost tie; the
    run that answered more wins before p99 is compared."""
    from wrpsim.report.choice import winner

    retry = {"slo_attainment": 0.9990, "cost_usd": 10.0, "ttft_p99_s": 0.4043,
             "requests_total": 6000, "requests_completed": 6000}
    drop = {**retry, "slo_attainment": 0.9988, "ttft_p99_s": 0.4027,
            "requests_completed": 5993}
    assert winner([("1", retry), ("3", drop)]) == "1"
    assert winner([("1", {**retry, "requests_completed": 5993}), ("3", drop)]) == "3"


def test_an_attainment_edge_the_table_cannot_show_does_not_outweigh_cost():
    """99.95 % against 99.951 % (or 99.9 % against 100 %) tie: the cheaper run wins; a 0.2
    point edge still decides."""
    from wrpsim.report.choice import winner

    cheap = {"slo_attainment": 0.9995, "cost_usd": 10.0, "ttft_p99_s": 1.0}
    assert winner([("0", cheap), ("1", {**cheap, "slo_attainment": 0.99951,
                                        "cost_usd": 20.0})]) == "0"
    assert winner([("0", {**cheap, "slo_attainment": 0.999}),
                   ("1", {**cheap, "slo_attainment": 1.0, "cost_usd": 20.0})]) == "0"
    assert winner([("0", {**cheap, "slo_attainment": 0.998}),
                   ("1", {**cheap, "slo_attainment": 1.0, "cost_usd": 20.0})]) == "1"


def test_the_winner_is_not_decided_by_cost_noise():
    """Identical fleets differ in cost only by when the last request finished (a sweep of
    random vs round-robin: $2.4365 vs $2.4354): costs within 1 % of the cheapest tie, so the
    lower p99 TTFT wins; a cost 1 % or more above the cheapest still loses."""
    from wrpsim.report.choice import winner

    rnd = {"slo_attainment": 1.0, "cost_usd": 2.4354, "ttft_p99_s": 0.400}
    rr = {"slo_attainment": 1.0, "cost_usd": 2.4365, "ttft_p99_s": 0.341}
    assert winner([("0", rnd), ("1", rr)]) == "1"
    assert winner([("0", rnd), ("1", {**rr, "cost_usd": 2.4354 * 1.0099})]) == "1"
    assert winner([("0", rnd), ("1", {**rr, "cost_usd": 2.4354 * 1.011})]) == "0"
    # the band is measured from the cheapest run, so the order of the runs never matters
    c = {"slo_attainment": 1.0, "cost_usd": 2.4354 * 1.008, "ttft_p99_s": 0.2}
    runs = [("0", rnd), ("1", rr), ("2", c)]
    assert winner(runs) == winner(runs[::-1]) == "2"


def test_summary_says_which_pools_rest_on_the_roofline_and_what_each_cost_figure_is():
    """A pool whose GPU has no kernel measurements gets a note (it was only in summary.json);
    the cost line names the provisioned and the busy per-1k figures."""
    from wrpsim.runview import run_summary

    s = {"requests_total": 10, "requests_completed": 10, "cost_usd": 4.0,
         "provisioned_cost_per_1k_requests_usd": 0.4, "cost_per_1k_requests_usd": 0.1,
         "calibration": {"a": "vllm-0.24: uncalibrated: roofline (efficiencies of …)",
                         "b": "vllm-0.24: kernels: vllm 0.24.0 (NVIDIA H100 80GB HBM3)"}}
    cfg = {"pool": {"pools": {"a": {"gpu": "mi300x-192gb", "model": "m"},
                              "b": {"gpu": "h100-80gb", "model": "m"}}}}
    text = run_summary(s, cfg, "out")
    assert ("  note       uncalibrated: roofline for pool(s) a (mi300x-192gb): no kernel "
            "measurements for that GPU (summary.json: calibration)") in text
    assert "per 1k requests $0.400 provisioned, $0.100 of busy GPU time" in text
    s["calibration"] = {"b": s["calibration"]["b"]}
    assert "uncalibrated" not in run_summary(s, cfg, "out")
    # a GPU measured but for some operators (the RTX 4090: MoE and collectives) is not said
    # to have no measurements; the note names what it is
    s["calibration"] = {"b": "vllm-0.24: kernels: vllm 0.19.0 (NVIDIA GeForce RTX 4090; …); "
                             "MoE, all-reduce, NCCL: uncalibrated: roofline (efficiencies …)"}
    text = run_summary(s, cfg, "out")
    assert "no kernel measurements for that GPU" not in text
    assert ("  note       some operators of pool(s) b (h100-80gb) have no kernel measurements "
            "on that GPU and are timed by roofline (summary.json: calibration)") in text


def test_the_run_summary_names_failures_and_semantic_cache_hits():
    from wrpsim.runview import run_summary

    s = {"instance_failures": 2, "availability": 0.9, "requests_interrupted": 7,
         "requests_retried": 5, "slo_attainment_interrupted": 0.4, "cache_lookups": 180,
         "cache_hit_ratio": 0.272, "cache_false_hit_ratio": 0.143, "cache_saved_cost_usd": 0.24}
    lines = run_summary(s, {}, "out").splitlines()
    assert ("  failures   2 instance failures, availability 90.0 %; 7 requests interrupted "
            "(5 retried), 40.0 % of them within the SLO") in lines
    assert ("  cache      27.2 % of 180 lookups answered by the semantic cache (14.3 % of hits "
            "false); $0.24 of GPU time saved") in lines
    plain = run_summary({}, {}, "out")
    assert "failures" not in plain and "semantic cache" not in plain


def test_the_fleet_line_names_precision_kv_dtype_role_and_engine_when_not_the_defaults():
    from wrpsim.runview import fleet_text

    pools = {"pools": {"h100": {"gpu": "h100-80gb", "model": "m", "tp": 4, "count": 2,
                                "precision": "fp8", "kv_dtype": "fp8"},
                       "p": {"gpu": "h200-141gb", "model": "m", "tp": 2, "count": 1,
                             "role": "prefill", "precision": "bf16", "kv_dtype": "auto"}}}
    assert fleet_text(pools) == ("h100: 2 x 4 h100-80gb (m, fp8, KV fp8); "
                                 "p: 1 x 2 h200-141gb (m, prefill)")
    dp = {"pools": {"d": {"gpu": "h200-141gb", "model": "m", "tp": 8, "count": 1,
                          "attn_dp": 8, "ep": 8}}}
    assert fleet_text(dp) == "d: 1 x 8 h200-141gb (m, attn_dp 8, ep 8)"
    eng = {"pools": {"r": {"gpu": "rtxpro6000-96gb", "model": "m", "tp": 2, "count": 1,
                           "engine": "vllm-0.19"},
                     "s": {"gpu": "h100-80gb", "model": "m", "engine": "vllm-0.24"}}}
    assert fleet_text(eng) == "r: 1 x 2 rtxpro6000-96gb (m, vllm-0.19); s: 1 x 1 h100-80gb (m)"


def test_the_requests_line_names_those_beyond_the_horizon():
    from wrpsim.runview import run_summary

    s = {"requests_total": 191, "requests_completed": 175, "requests_dropped": 0,
         "requests_in_flight": 16, "requests_beyond_horizon": 19175}
    assert ("  requests   191 total, 175 completed, 0 dropped, 16 unfinished; 19,175 more "
            "not sent before sim.horizon_s (not simulated)") in run_summary(s, {}, "out")
    assert "horizon" not in run_summary({**s, "requests_beyond_horizon": 0}, {}, "out")


def test_a_pool_that_received_no_request_is_named_with_its_model_and_why(monkeypatch, capsys,
                                                                          tmp_path):
    """mixed-a100-h100 without workload.model_mix: the llama3.1-8b pool gets nothing yet is
    paid for; the run says so after its summary (and a sweep after the run's line)."""
    from wrpsim.verdict import idle_pool_warnings

    code, _, err = run_app(monkeypatch, capsys, tmp_path, "workload.max_requests=200",
                           "pool=mixed-a100-h100")
    assert code == 0, err
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["idle_pools"] == {"a100-8b": {"model": "llama3.1-8b", "requests_for_model": 0,
                                           "dropped_for_model": 0}}
    warned = [ln for ln in err.splitlines() if ln.startswith("wrpsim: warning: pool ")]
    assert warned == ["wrpsim: warning: pool a100-8b (llama3.1-8b) received no request: no "
                      "request went to llama3.1-8b: the workload asks for none "
                      "(workload.model_mix sets each model's share), or a router that picks "
                      "the model chose others for all of them; its GPUs are still in the cost "
                      "and energy"]
    # the model asked for, but routed elsewhere
    line = idle_pool_warnings({"idle_pools": {"b": {"model": "m", "requests_for_model": 7}}})
    assert line == ["pool b (m) received no request: the router sent all 7 requests for m "
                    "it routed to other pools; its GPUs are still in the cost and energy"]
    line = idle_pool_warnings({"drop_reasons": {"context": 7}, "idle_pools": {
        "b": {"model": "m", "requests_for_model": 7, "dropped_for_model": 7}}})
    assert line == ["pool b (m) received no request: all 7 requests for m were dropped "
                    "(drop_reasons: context 7; `context`: longer than the context length: the "
                    "model's, or the pool's max_context); its GPUs are still in the cost and "
                    "energy"]
    # only the reasons that occurred are explained (`context` was said for any)
    line = idle_pool_warnings({"drop_reasons": {"exceeds_kv_capacity": 7}, "idle_pools": {
        "b": {"model": "m", "requests_for_model": 7, "dropped_for_model": 7}}})
    assert line == ["pool b (m) received no request: all 7 requests for m were dropped "
                    "(drop_reasons: exceeds_kv_capacity 7; `exceeds_kv_capacity`: larger than "
                    "an instance's KV cache); its GPUs are still in the cost and energy"]
    line = idle_pool_warnings({"requests_beyond_horizon": 200, "idle_pools": {
        "b": {"model": "m", "requests_for_model": 0, "dropped_for_model": 0}}})
    assert line == ["pool b (m) received no request: no request for m reached it before "
                    "sim.horizon_s (200 requests not sent before it, not simulated); its GPUs are "
                    "still in the cost and energy"]
    line = idle_pool_warnings({"idle_pools": {
        "b": {"model": "m", "requests_for_model": 7, "dropped_for_model": 2}}})
    assert "the router sent all 5 requests for m it routed to other pools (2 more were " \
           "dropped)" in line[0]
    code, _, err = run_app(monkeypatch, capsys, tmp_path, "workload.max_requests=200",
                           "pool=mixed-a100-h100",
                           "workload.model_mix={llama3.1-8b: 0.7, llama3.1-70b: 0.3}")
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["idle_pools"] == {}
    assert "received no request" not in err


def test_a_router_bound_run_blames_the_router_not_the_fleet():
    """A router replica taking 0.3 s per decision (router.service.signal=llm) 94 % busy: the
    mean routing time is nearly the mean TTFT; a bigger fleet would not help, more router
    replicas would. The summary shows the routing time when it is a fair share of TTFT."""
    from wrpsim.runview import run_summary

    s = {"requests_total": 1000, "requests_completed": 1000, "slo_attainment": 0.101,
         "ttft_p99_s": 97.3, "tpot_p99_s": 0.0218, "queue_wait_mean_s": 41.08,
         "mean_utilization": 0.58, "slo_ttft_s": 2.0, "route_mean_s": 41.04,
         "route_p99_s": 97.2, "ttft_mean_s": 41.16, "router_utilization": 0.944,
         "router_replicas": 1, "router_service_s": 0.3}
    line = verdict(s)
    assert "cannot carry" not in line
    assert ("most of TTFT is the router's queue (mean routing time 41 s of mean TTFT 41.2 s; "
            "the router is 94.4 % busy with 1 replica at 300 ms per decision): more router "
            "replicas (router.replicas=2)") in line
    # a decision latency, not a queue
    late = verdict({**s, "router_utilization": 0.0})
    assert "most of TTFT is routing" in late and "decision latency" in late
    # routing a small share of TTFT: the fleet's verdict as before, and no route line
    assert "cannot carry the trace" in verdict({**s, "route_mean_s": 0.5})
    text = run_summary(s, {}, "out")
    assert "  route      mean 41 s  p99 97.2 s of TTFT in the router" in text
    assert "route " not in run_summary({**s, "route_mean_s": 0.0}, {}, "out")


def closing_table(err: str) -> list[str]:
    lines = err.splitlines()
    return lines[next(i for i, ln in enumerate(lines) if ln.startswith("wrpsim: sweep ")):]


@pytest.mark.parametrize("subdir", [None, "${hydra.job.override_dirname}"])
def test_the_closing_table_shows_this_sweeps_jobs_only_in_job_order(monkeypatch, capsys,
                                                                    tmp_path, subdir):
    """A rerun into a directory an earlier, larger sweep used tabulated (and picked its winner
    from) the earlier sweep's folders too; it shows its own jobs, in job order, and says how
    many other run folders the directory holds."""
    more = (f"hydra.sweep.subdir={subdir}",) if subdir else ()
    code, _, err = run_app(monkeypatch, capsys, tmp_path, "-m", *SMALL, *more,
                           "router=round-robin,least-outstanding,random")
    assert code == 0, err
    monkeypatch.setenv("WRPSIM_RERUN", "1")
    code, _, err = run_app(monkeypatch, capsys, tmp_path, "-m", *SMALL, *more,
                           "router=random,round-robin")
    assert code == 0, err
    table = closing_table(err)
    assert table[0].startswith(f"wrpsim: sweep {tmp_path / 'sweep'}: 2 runs ")
    header = next(i for i, ln in enumerate(table) if ln.lstrip().startswith("run "))
    rows = table[header + 1:header + 3]
    assert [r.split()[-1] for r in rows] == ["router=random", "router=round-robin"]
    # aligned, also under folder names longer than the column (override_dirname)
    assert {r.index(" router=") + 1 for r in rows} == {table[header].index("overrides")}
    assert table[-1] == (f"  {tmp_path / 'sweep'} also holds 1 run folder from earlier sweeps, "
                         f"not shown here; python -m wrpsim.report reads it too")


def test_a_transfer_bound_run_blames_the_links_not_the_gpus():
    """1 Gb/s NICs between prefill and decode: the exposed KV transfer is most of TTFT; a
    bigger fleet of the same GPUs would not help, faster NICs would. The summary shows the
    KV line whenever KV moved between instances."""
    from wrpsim.runview import run_summary

    s = {"requests_total": 1000, "requests_completed": 1000, "slo_attainment": 0.243,
         "ttft_p99_s": 27.3, "tpot_p99_s": 0.0191, "queue_wait_mean_s": 0.02,
         "mean_utilization": 0.3, "slo_ttft_s": 2.0, "ttft_mean_s": 12.6,
         "kv_transfer_bytes": 88.5e9, "kv_transfer_mean_s": 12.5, "kv_transfer_p99_s": 27.2}
    line = verdict(s)
    assert "without queueing" not in line and "cannot carry" not in line
    assert ("the KV transfers from prefill to decode instances are the bottleneck (mean exposed "
            "transfer 12.5 s against mean TTFT 12.6 s): faster NICs (network.nic_gbps)") in line
    fabric = verdict({**s, "network_kind": "fluid"})
    assert "less oversubscribed links, or spraying" in fabric
    assert "KV transfers" not in (verdict({**s, "kv_transfer_mean_s": 0.001}) or "")
    # most of the exposed transfer waited for decode KV blocks: the decode side is the limit
    full = verdict({**s, "kv_wait_mean_s": 12.4})
    assert ("the decode instances' KV cache is the bottleneck: arrived prompts wait for blocks "
            "there (mean 12.4 s of the mean exposed KV transfer 12.5 s") in full
    assert "more or larger decode instances would help, faster links would not" in full
    text = run_summary(s, {"network": {"kind": "nic"}}, "out")
    assert ("  KV         88.5 GB sent prefill -> decode; exposed transfer mean 12.5 s, p99 "
            "27.2 s (network=nic)") in text
    assert "  KV " not in run_summary({**s, "kv_transfer_bytes": 0.0}, {}, "out")


def test_nothing_completed_because_of_the_horizon_says_so():
    from wrpsim.verdict import verdict

    s = {"requests_total": 1, "requests_completed": 0, "requests_in_flight": 1,
         "drop_reasons": {}, "requests_beyond_horizon": 199}
    assert verdict(s) == ("no request of 1 completed: the fleet served nothing; sim.horizon_s "
                          "ended the run before any could finish (see requests.parquet's "
                          "status and drop_reason)")
    s = {**s, "requests_in_flight": 0, "drop_reasons": {"context": 1}}
    assert "most dropped for context" in verdict(s)


def test_header_counts_the_overrides_that_changed_the_pool_files_fleet():
    """The header names the pool file; where command-line overrides changed its pools (a
    model of llama2-70b's file swapped for another), it says how many, so the file's name does
    not pass for the fleet that ran (the fleet line below says what did)."""
    from wrpsim.runview import run_summary

    s = {"requests_total": 1, "requests_completed": 1, "pool": "h100-llama70b", "seed": 0,
         "workload": "w", "router": "round_robin"}
    cfg = {"pool": {"pools": {"h100": {"gpu": "h100-80gb", "model": "qwen3-14b", "count": 1}}}}
    head = run_summary(s, cfg, "out").splitlines()[0]
    assert head == "wrpsim: w -> round_robin -> h100-llama70b (seed 0)"
    head = run_summary(s, cfg, "out", ["pool.pools.h100.model=qwen3-14b", "seed=3",
                                       "+pool.pools.h100.max_context=4096"]).splitlines()[0]
    assert head == "wrpsim: w -> round_robin -> h100-llama70b + 2 pool overrides (seed 0)"
    assert "+ 1 pool override (" in run_summary(s, cfg, "out", ["~pool.pools.h100.latency"])
    assert "override" not in run_summary(s, cfg, "out", ["pool=hetero-llama70b"])
