"""The router's semantic cache (wrpsim.router.semcache): hits skip the fleet, a configured hit
curve removes its share of the fleet's requests, eviction and expiry, false hits cost quality,
bad settings give one line."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import compose_cfg, constant_cfg, make_trace, run_app
from tests.test_bad_inputs import SMALL, one_error_line
from wrpsim.sim import Simulation, run
from wrpsim.workload.loaders import load_trace
from wrpsim.workload.validate import validate_trace

MODEL = "llama3.1-8b"
ROOT = Path(__file__).resolve().parents[1]


def _cfg(count: int = 8, **cache) -> dict:
    cfg = constant_cfg(step_s=0.01, count=count)
    cfg["router"]["cache"] = {"enabled": True, "ttl_s": None, "false_hit": 0.0, **cache}
    return cfg


def _poisson(n: int, rate: float = 50.0, seed: int = 3) -> np.ndarray:
    return np.cumsum(np.random.default_rng(seed).exponential(1.0 / rate, n))


def _clusters(names, gap_s: float = 1.0, **extra):
    """One request per cluster name, `gap_s` apart (each answered long before the next)."""
    n = len(names)
    return make_trace(np.arange(n) * gap_s, [16] * n, [2] * n, semantic_cluster=list(names),
                      **extra)


def test_a_30_percent_hit_curve_takes_30_percent_of_requests_off_the_fleet(tmp_path):
    """2,000 requests; every request after the first answer is a hit with probability 0.3, so
    hits ~ Binomial(n_looked_up, 0.3): sd = sqrt(2000 x 0.3 x 0.7) = 20.5 requests (1.0 %).
    The fleet serves 1 - 0.3 of what it serves without the cache, within 4 sd; hits + served
    = total; the summary's ratios agree with the rows."""
    n = 2000
    trace = make_trace(_poisson(n), [64] * n, [2] * n)
    off = run(constant_cfg(step_s=0.01, count=8), tmp_path / "off", trace)
    on = run(_cfg(hit_rate=0.3, capacity=n), tmp_path / "on", trace)
    assert "cache_hits" not in off
    assert set(pq.read_schema(tmp_path / "off" / "requests.parquet").names).isdisjoint(
        {"cache_hit", "cache_false_hit"})
    rows = pq.read_table(tmp_path / "on" / "requests.parquet").to_pandas()
    fleet_off = off["requests_completed"]
    fleet_on = int(rows["pool"].notna().sum())
    hits = int(rows["cache_hit"].sum())
    assert fleet_off == n and on["requests_completed"] == n
    assert hits + fleet_on == n == on["cache_lookups"]
    assert on["cache_hits"] == hits and on["cache_hit_ratio"] == pytest.approx(hits / n)
    fewer = 1 - fleet_on / fleet_off
    assert abs(fewer - 0.3) < 4 * math.sqrt(n * 0.3 * 0.7) / n, fewer
    assert on["cache_false_hits"] == 0 and on["cache_false_hit_ratio"] == 0.0
    assert on["cache_saved_gpu_s"] > 0 and on["cache_quality_lost"] is None
    # a hit answers after the 10 ms lookup; a miss pays it before its 10 ms first step
    assert on["ttft_mean_s"] == pytest.approx((hits * 0.010 + fleet_on * 0.020) / n)
    # TPOT is the fleet's streaming (10 ms steps): a hit, answered at once, has none
    assert rows.loc[rows.cache_hit, "tpot_s"].isna().all()
    assert on["tpot_mean_s"] == pytest.approx(0.010) == off["tpot_mean_s"]
    assert on["tpot_p50_s"] == pytest.approx(0.010)


def test_hits_use_no_gpu_and_return_after_the_lookup():
    """Hit rows: no instance, no GPU time, energy or cost, no attempt; TTFT = E2E = route_s =
    the router's service (20 ms) + the lookup (7 ms). Misses pay the lookup too. The
    instances completed exactly the misses."""
    n = 400
    cfg = _cfg(hit_rate=0.5, lookup_s=0.007, capacity=n)
    cfg["router"]["service"] = {"signal": "gpu_classifier"}
    sim = Simulation(cfg, make_trace(_poisson(n, rate=20.0), [64] * n, [3] * n))
    req, inst, _ = sim.run()
    t = req.to_pandas()
    h, m = t[t.cache_hit], t[~t.cache_hit]
    assert len(h) > 100
    assert (h[["gpu_s", "energy_j", "cost_usd"]] == 0).all().all()
    assert h["pool"].isna().all() and (h["attempts"] == 0).all() and (h["model"] == MODEL).all()
    np.testing.assert_allclose(h["ttft_s"], h["e2e_s"])
    np.testing.assert_allclose(h["route_s"], h["ttft_s"])
    assert (h["route_s"] >= 0.027 - 1e-12).all() and (m["route_s"] >= 0.027 - 1e-12).all()
    assert (m["gpu_s"] > 0).all()
    assert int(np.sum(inst.column("requests_completed").to_numpy())) == len(m)


def test_same_seed_same_bytes_other_seed_other_hits(tmp_path):
    n = 300
    trace = make_trace(_poisson(n), [32] * n, [2] * n)
    for d, seed in (("a", 0), ("b", 0), ("c", 1)):
        cfg = _cfg(hit_rate=0.3, false_hit=0.2)
        cfg["seed"] = seed
        run(cfg, tmp_path / d, trace)
    a, b, c = ((tmp_path / d / "requests.parquet").read_bytes() for d in "abc")
    assert a == b and a != c


@pytest.mark.parametrize(("eviction", "hits", "evictions"), [("lru", 2, 2), ("fifo", 1, 3)])
def test_eviction_of_a_two_entry_cache(eviction, hits, evictions):
    """Clusters A B A C A B, capacity 2. LRU: A hit (A freshest), C evicts B, A hit, B evicts
    C: 2 hits, 2 evictions. FIFO: A hit (A stays oldest), C evicts A, A misses and evicts B,
    B misses and evicts C: 1 hit, 3 evictions."""
    sim = Simulation(_cfg(hit_model="trace", capacity=2, eviction=eviction),
                     _clusters("ABACAB"))
    req, _, _ = sim.run()
    got = req.column("cache_hit").to_pylist()
    want = {"lru": [0, 0, 1, 0, 1, 0], "fifo": [0, 0, 1, 0, 0, 0]}[eviction]
    assert got == [bool(x) for x in want]
    assert sum(got) == hits and sim.cache.evictions == evictions


@pytest.mark.parametrize("capacity", [3, 4])
def test_a_loop_over_one_more_cluster_than_fits_never_hits(capacity):
    """Closed form: cycling k clusters through an LRU cache of capacity c hits every request
    after the first round when k <= c (n - k hits) and never when k = c + 1 (each request's
    cluster is the one evicted just before)."""
    k, rounds = 4, 5
    sim = Simulation(_cfg(hit_model="trace", capacity=capacity, eviction="lru"),
                     _clusters([f"c{i % k}" for i in range(k * rounds)]))
    hits = sum(sim.run()[0].column("cache_hit").to_pylist())
    assert hits == (k * rounds - k if k <= capacity else 0)


def test_threshold_per_category_and_expiry():
    """trace model: a near-duplicate hits when its similarity reaches its category's threshold
    (code 0.9, others 0.8) and its entry has not expired (ttl 5 s; requests 1 s apart)."""
    names = ["a", "a", "a", "b", "b", "c", "c", "d", "x", "x", "x", "x", "x", "x", "d"]
    sim_ = [1.0, 0.85, 0.7, 1.0, 0.85, 1.0, math.nan, 1.0] + [0.5] * 6 + [1.0]
    cat = ["prose"] * 3 + ["code"] * 2 + ["prose"] * 10
    cfg = _cfg(hit_model="trace", threshold={"default": 0.8, "code": 0.9}, ttl_s=5.0)
    sim = Simulation(cfg, _clusters(names, semantic_similarity=sim_, category=cat))
    got = sim.run()[0].column("cache_hit").to_pylist()
    assert got == [False, True, False, False, False, False, True, False] + [False] * 6 + [False]
    # by d's second lookup (14 s) the last answers of a (stored at 2 s), b (4 s), c (5 s) and
    # d (7 s) have expired; x's were each replaced by the next x
    assert sim.cache.expired == 4


def test_a_ttl_draws_hits_from_live_entries_only(tmp_path):
    """curve model, ttl 1 s, a request every 50 ms answered in 20 ms: every lookup after the
    first finds ~14 live entries, so hits ~ Binomial(n - 1, 0.3) (sd 1.4 %), however many
    entries expired before. Entries are counted live at the run's end: the misses stored in
    its last second; every stored answer is live, expired or evicted."""
    n, ttl = 1000, 1.0
    trace = make_trace(np.arange(n) * 0.05, [16] * n, [2] * n)
    s = run(_cfg(hit_rate=0.3, ttl_s=ttl), tmp_path, trace)
    rows = pq.read_table(tmp_path / "requests.parquet").to_pandas()
    misses = rows[~rows.cache_hit]
    assert abs(s["cache_hits"] / (n - 1) - 0.3) < 4 * math.sqrt(0.3 * 0.7 / (n - 1))
    assert s["cache_entries"] == int((misses.finish_s >= s["duration_s"] - ttl).sum()) > 5
    assert s["cache_entries"] + s["cache_expired"] + s["cache_evictions"] == len(misses)
    assert s["cache_evictions"] == 0


def test_nothing_hits_once_everything_expired():
    """Requests 2 s apart, ttl 1 s: each entry has expired by the next lookup, so even at
    hit_rate 1 nothing hits; at the end one entry (the last answer) is live and the n - 1
    before it expired, whether or not a lookup drew them."""
    n = 20
    for rate in (1.0, 0.5):
        sim = Simulation(_cfg(hit_rate=rate, ttl_s=1.0),
                         make_trace(np.arange(n) * 2.0, [16] * n, [2] * n))
        req, _, end = sim.run()
        assert not any(req.column("cache_hit").to_pylist())
        s = sim.cache.summary(req, None, end)
        assert (s["cache_hits"], s["cache_entries"], s["cache_expired"]) == (0, 1, n - 1)


def test_a_null_threshold_keeps_a_category_out():
    names = ["a", "a", "b", "b"]
    cfg = _cfg(hit_model="trace", threshold={"default": 0.8, "rag": None})
    sim = Simulation(cfg, _clusters(names, category=["rag", "rag", "prose", "prose"]))
    assert sim.run()[0].column("cache_hit").to_pylist() == [False, False, False, True]
    assert len(sim.cache.looked_up) == 2


def test_false_hits_score_zero_and_report_the_quality_lost(tmp_path):
    """Every prompt is answered right by the model (outcome 1): with false_hit 1 every hit
    scores 0, so quality = share of misses and cache_quality_lost = share of hits; with 0
    quality stays 1."""
    n = 300
    trace = make_trace(_poisson(n), [32] * n, [2] * n, outcomes=[{MODEL: 1.0}] * n)
    bad = run(_cfg(hit_rate=0.3, false_hit=1.0), tmp_path / "bad", trace)
    good = run(_cfg(hit_rate=0.3, false_hit=0.0), tmp_path / "good", trace)
    share = bad["cache_hits"] / n
    assert 0.2 < share < 0.4 and bad["cache_false_hit_ratio"] == 1.0
    assert bad["quality"] == pytest.approx(1 - share)
    assert bad["cache_quality_lost"] == pytest.approx(share)
    assert bad["answer_status"] == {"cache_false_hit": bad["cache_hits"]}
    assert good["quality"] == 1.0 and good["cache_quality_lost"] == 0.0
    rows = pq.read_table(tmp_path / "bad" / "requests.parquet").to_pandas()
    assert (rows["cache_false_hit"] == rows["cache_hit"]).all()


def test_the_shipped_experiment_runs(tmp_path):
    """+experiment=semantic-cache: rag is not looked up, hits come, quality drops by exactly
    the quality lost to false hits."""
    s = run(compose_cfg("+experiment=semantic-cache"), tmp_path)
    off = run(compose_cfg("+experiment=semantic-cache", "router.cache.enabled=false"),
              tmp_path / "off")
    assert s["cache_lookups"] == 180 and 0.15 < s["cache_hit_ratio"] < 0.4
    assert s["quality"] == pytest.approx(off["quality"] - s["cache_quality_lost"])


def _documented_trace_command() -> list[str]:
    """The overrides of docs/routers.md's command for the `trace` hit model (continuation lines
    joined)."""
    text = (ROOT / "docs" / "routers.md").read_text().replace("\\\n", " ")
    line = next(x for x in text.splitlines()
                if x.startswith("python -m wrpsim ") and "hit_model=trace" in x)
    return line.split("#")[0].split()[3:]


def test_the_documented_trace_command_runs(tmp_path, monkeypatch):
    """docs/routers.md's `trace` example, run from the repository root (where its path points):
    every request is looked up, 21 of the example's 45 repeats hit (a repeat misses below the
    0.8 threshold or before its cluster's first answer is stored)."""
    args = _documented_trace_command()
    assert "workload.source.path=docs/examples/semantic_cache_trace.jsonl" in args
    monkeypatch.chdir(ROOT)
    s = run(compose_cfg(*args), tmp_path)
    assert s["cache_hit_model"] == "trace" and s["cache_lookups"] == s["requests_total"] == 80
    assert s["cache_hits"] == 21 and s["cache_entries"] == 35


def test_loaders_keep_the_semantic_columns(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("t,p,o,cl,sim\n0,10,2,q1,0.9\n1,10,2,,\n2,10,2,q1,1\n")
    df = load_trace(p, columns={"arrival_s": "t", "prompt_tokens": "p", "output_tokens": "o",
                                "semantic_cluster": "cl", "semantic_similarity": "sim"})
    validate_trace(df)
    assert df.semantic_cluster.tolist()[0::2] == ["q1", "q1"]
    assert df.semantic_similarity.tolist()[0::2] == [0.9, 1.0]


BAD = [
    (["router.cache.hit_model=zipf"],
     r"router\.cache\.hit_model: unknown value 'zipf'; valid choices: curve, trace$"),
    (["router.cache.eviction=lfu"],
     r"router\.cache\.eviction: unknown value 'lfu'; valid choices: fifo, lru"),
    (["router.cache.capacity=0"], r"router\.cache\.capacity must be an integer >= 1"),
    (["router.cache.hit_rate=1.5"], r"router\.cache\.hit_rate must be a number >= 0 and "
                                    r"<= 1, got 1\.5"),
    (["router.cache.threshold={default:0.8,code:2}"],
     r"router\.cache\.threshold\.code must be a number >= 0 and <= 1 or null, got 2"),
    (["router.cache.lookup_s=-1"], r"router\.cache\.lookup_s must be a finite number >= 0"),
    (["router.cache.ttl_s=0"], r"router\.cache\.ttl_s must be a number > 0 or null"),
    (["router.cache.enabled=maybe"], r"router\.cache\.enabled must be true or false"),
    (["+router.cache.size=3"], r"router\.cache: unknown key\(s\) \['size'\]; valid keys: "
                               r"enabled, hit_model, .*lookup_s"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_cache_settings_give_one_line(monkeypatch, capsys, tmp_path, args, message):
    code, _, err = run_app(monkeypatch, capsys, tmp_path, SMALL, "router.cache.enabled=true",
                           *args)
    assert code == 2
    assert re.search(message, one_error_line(err)), err
