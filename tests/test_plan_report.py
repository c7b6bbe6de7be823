"""The plan's report: report.html in a real headless Chromium (every plot drawn, no JavaScript
error, no network fetch, hostile names inert) and report.md's sections. Chromium is driven with
the stdlib DevTools client of tests/test_report_dashboard.py; skips without `chromium`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_plan_config import compose_plan
from tests.test_report_dashboard import (
    browser,  # noqa: F401  (the fixture)
    check_layout,
)
from wrpsim.plan import run_plan
from wrpsim.plan.page import PLOTS

HOSTILE = "</script><img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    """A small plan whose every candidate carries a hostile name (so the recommended one does,
    whichever wins)."""
    out = tmp_path_factory.mktemp("plan")
    cfg = compose_plan("workload.max_requests=500")  # a plan in 0.7 s (1,500: 3 s)
    cands = cfg["plan"]["candidates"]
    cfg["plan"]["candidates"] = {k + HOSTILE: v for k, v in cands.items()}
    record = run_plan(cfg, out)
    return out, record


def test_report_files_are_self_contained_and_escape_names(planned):
    out, record = planned
    assert record["slo_met"]
    text = (out / "report.html").read_text(encoding="utf-8")
    assert "<img src=x" not in text and "</script><img" not in text
    assert text.count("<script") == text.count("</script>") == 3
    assert "https://" not in text.split("<script>", 2)[2].split("</script>")[0]  # our script
    for name in PLOTS:
        assert f'id="plot-{name}"' in text
    md = (out / "report.md").read_text(encoding="utf-8")
    for section in ("## Recommended fleet", "## Cost and energy", "## SLO margins",
                    "## Robustness", "## Sensitivity to load", "## Per-pool utilisation",
                    "## Pareto front", "## Search"):
        assert section in md, section
    assert f"Re-checked with a fresh seed (1: {record['recheck']['trace']}) before being " \
        "reported: met" in md
    assert "0.8 ×" in md and "1.2 ×" in md
    for section in ("## Single-type alternatives", "| pool with one instance fewer |",
                    "| token-budget use |", "| mean requests in system, per instance |",
                    "Busy fraction: share of the time"):
        assert section in md, section
    assert '<a href="report.md">report.md</a>' in text  # the page links its Markdown twin
    assert "Dotted orange: the plan&#x27;s p99 TTFT target (2 s)." in text
    for metric in ("mean_token_budget_use", "mean_kv_use"):
        assert 0.0 < record["metrics"][metric] <= 1.0, metric


def test_the_plan_prices_a_thousand_requests_as_a_runs_summary_does(planned):
    """A planner asks what a thousand requests cost; plan.json gave cost per hour and per
    million tokens only (new-user walkthrough, 2026-12-07). The fleet's hours over the trace
    per thousand of its 500 requests, as summary.json's provisioned figure counts it."""
    out, record = planned
    want = record["cost_per_hour_usd"] * record["metrics"]["duration_s"] / 3600 / 500 * 1000
    assert record["provisioned_cost_per_1k_requests_usd"] == pytest.approx(want, rel=1e-12)
    md = (out / "report.md").read_text(encoding="utf-8")
    assert (f"| cost per 1,000 requests, the fleet over the trace (USD) | "
            f"{want:.4g} |") in md
    assert "USD per 1,000 requests (the fleet over the trace)" in (
        out / "report.html").read_text(encoding="utf-8")


def test_report_renders_every_plot_without_errors(planned, browser):  # noqa: F811
    out, record = planned
    dev = browser
    dev.call("Page.navigate", url=(Path(out) / "report.html").as_uri())
    dev.wait(f"document.body && document.body.dataset.plots === '{len(PLOTS)}'")
    for name in PLOTS:
        assert dev.js(f"!!document.querySelector('#plot-{name}.js-plotly-plot .main-svg')"), name
        assert dev.js(f"document.getElementById('plot-{name}').data.length") >= 1, name
    n_cands = dev.js("document.getElementById('plot-search').data[0].x.length")
    assert n_cands == record["search"]["search_evaluations"]
    assert dev.js("document.getElementById('plot-cdf-ttft').data.map(t => t.name)") == [
        "full trace", f"recheck (seed {record['recheck']['seed']})", "attainment threshold",
        "p99 target"]
    assert dev.js("document.getElementById('plot-sensitivity').data[0].x") == [0.8, 1.0, 1.2]
    assert dev.js("document.querySelectorAll('img').length") == 0
    assert HOSTILE in dev.js("document.querySelector('.verdict').textContent")  # text, inert
    rows = ("(id) => [...document.querySelectorAll('#why-' + id + ' tbody tr')]"
            ".map(tr => [...tr.cells].map(c => c.textContent))")
    single = dev.js(f"({rows})('single')")
    assert [r[0] for r in single] == [c["candidate"] for c in record["search"]["single_type"]]
    assert sum(r[-1] == "recommended" for r in single) <= 1
    fewer = dev.js(f"({rows})('fewer')")
    assert [r[0] for r in fewer] == [o["pool"] for o in record["one_fewer"]]
    assert all(r[-1] for r in fewer)  # says why not (or that it would do)
    assert [r[0] for r in dev.js(f"({rows})('load')")] == ["0.8 ×", "1 ×", "1.2 ×"]
    util = dev.js("document.getElementById('plot-util').data.map(t => t.name)")
    assert util[:3] == ["busy fraction", "token-budget use", "KV use"]
    assert "not headroom" in dev.js("document.querySelector('#plot-util + .pnote').textContent")
    assert dev.js("document.querySelector('a[href=\"report.md\"]').textContent") == "report.md"
    assert dev.js("document.getElementById('plot-cdf-ttft').layout.shapes[0].x0") == (
        record["slo_thresholds"]["ttft_s"])
    assert dev.js("document.getElementById('plot-cdf-ttft').layout.shapes[1].x0") == (
        record["slo_targets"]["ttft_p99_s"])
    check_layout(dev)
    dev.js("new Promise(r => setTimeout(r, 300))")
    assert dev.errors() == []


def test_the_fleet_table_names_each_pools_precision():
    """An FP8 plan's report read like a BF16 one (review): the fleet table has a precision
    column, with the KV dtype when it is not the model's own."""
    from wrpsim.plan.report import fleet_table

    row = {"pool": "h200", "gpu": "h200-141gb", "tp": 2, "role": "both", "count": 2, "gpus": 4,
           "cost_per_hour_usd": 24.0, "calibration": "", "precision": "fp8", "kv_dtype": "fp8"}
    head, rows = fleet_table({"fleet": [row, {**row, "precision": "bf16", "kv_dtype": "auto"}]})
    col = head.index("precision")
    assert [r[col] for r in rows] == ["fp8, KV fp8", "bf16"]


def test_the_star_is_called_the_best_fleet_by_the_plans_objective():
    """Under plan.objective=energy the reports said the star was "the cheapest fleet meeting
    every target" (a user walk-through: azure-code-2023 plan.objective=energy): it is the
    lowest-energy one, and with no fleet meeting the SLO it is the closest found."""
    from wrpsim.plan.page import _notes
    from wrpsim.plan.report import star_text

    assert star_text({"slo_met": True, "objective": "cost"}) == \
        "the cheapest fleet meeting every target"
    assert star_text({"slo_met": True, "objective": "energy"}) == \
        "the lowest-energy fleet meeting every target"
    assert star_text({"slo_met": True, "objective": "gpus"}) == \
        "the fewest-GPU fleet meeting every target"
    assert "cheapest" not in star_text({"slo_met": False, "objective": "cost"})
    r = {"slo_met": True, "objective": "energy", "slo_thresholds": {"ttft_s": 2, "tpot_s": 0.1},
         "slo_targets": {"ttft_p99_s": 2}}
    assert "Star: the recommendation, the lowest-energy fleet meeting every target." in \
        _notes(r)["pareto-ttft"]


def test_fleet_yaml_writes_each_pool_out_in_full_without_yaml_anchors():
    """A disaggregated plan's fleet.yaml wrote the decode pool's scheduler as `*id001`, an
    alias of the prefill pool's `&id001` block (both sides share one mapping): a planner
    editing the prefill side's batch settings changed the decode side's too (a user
    walk-through). Each pool is now written out in full."""
    from types import SimpleNamespace

    import yaml

    from wrpsim.plan.planner import fleet_yaml

    sched = {"policy": "sarathi", "token_budget": 2048}
    pools = {"h100-prefill": {"gpu": "h100-80gb", "scheduler": sched, "role": "prefill",
                              "count": 1},
             "h100-decode": {"gpu": "h100-80gb", "scheduler": sched, "role": "decode",
                             "count": 1}}
    ev = SimpleNamespace(fleet_pools=lambda counts: pools, label=lambda counts: "1 + 1")
    text = fleet_yaml(ev, (1, 1))
    assert "&id" not in text and "*id" not in text, text
    back = yaml.safe_load(text)["pools"]
    assert back["h100-decode"]["scheduler"] == sched
    assert back["h100-decode"]["scheduler"] is not back["h100-prefill"]["scheduler"]


def test_report_md_does_not_tell_a_round_robin_plan_to_replay_with_least_outstanding(
        tmp_path):
    """A plan made with router=round-robin said to replay its fleet "with the same `router=`
    (e.g. `router=least-outstanding`)" (a user walk-through): the example named the default,
    not the plan's router. It now says to give the plan's own router= option."""
    record = run_plan(compose_plan("workload.max_requests=300", "router=round-robin",
                                   "plan.load_sensitivity=0"), tmp_path)
    assert record["router"] == "round-robin"
    assert record["router_class"] == "wrpsim.router.RoundRobin"
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "e.g. `router=least-outstanding`" not in md
    assert "Routed by `router=round-robin`, the plan's router" in md
    assert "python -m wrpsim pool=plan router=round-robin` with every other run setting" in md


def test_report_names_the_router_option_typed_not_its_class_path(tmp_path):
    """report.md said "Routed by `wrpsim.router.LeastOutstanding`" (a walkthrough): a class
    path, where the user typed router=least-outstanding. The command line's option is named,
    even where several options share the class (bandit-*: Hydra's choice says which)."""
    from tests.test_plan_config import plan_cli

    p = plan_cli(tmp_path, "workload.max_requests=300", "plan.load_sensitivity=0",
                 "router=bandit-ucb1")
    assert p.returncode == 0, p.stderr
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "Routed by `router=bandit-ucb1`" in md and "wrpsim.router." not in md
    assert "python -m wrpsim pool=plan router=bandit-ucb1`" in md


def test_router_option_without_hydra_matches_the_catalog_and_falls_back_to_the_class():
    """Without Hydra's choice (a plan run from Python) the option is the one whose file the
    router keeps (the bandit, ensemble and rule routers share a class); a router no option
    matches keeps its class path, and a choice that names another class is not believed."""
    from wrpsim.plan.record import router_option

    for name in ("bandit-ucb1", "bandit-thompson", "ensemble-vote", "cascade-abort",
                 "semantic-multi-signal", "least-outstanding"):
        assert router_option(compose_plan(f"router={name}")["router"]) == name
    rcfg = compose_plan("router=bandit-ucb1")["router"]
    assert router_option(rcfg, "bandit-thompson") == "bandit-thompson"  # (the command line's)
    assert router_option({**rcfg, "_target_": "mine.Router"}, "bandit-ucb1") == "mine.Router"
    assert router_option({"_target_": "wrpsim.router.BanditRouter"}) == \
        "wrpsim.router.BanditRouter"  # (three options, none kept: no guess)
