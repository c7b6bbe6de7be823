"""Session-carrying workloads: the RAGPulse and TraceLab agent-round loaders (checked against the
files read independently with the json / datetime modules), the `prefix_ids: session` mode, the
synthetic `kind: sessions` source, and loader errors naming file, line and field.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from wrpsim.errors import ConfigError, TraceError
from wrpsim.workload import (
    apply_prefix_ids,
    build_workload,
    canonical_frame,
    load_trace,
    load_workload,
    validate_trace,
)

WORKLOADS = Path(__file__).resolve().parents[1] / "workloads"
RAGPULSE = WORKLOADS / "traces" / "ragpulse_week.jsonl"
TRACELAB = WORKLOADS / "traces" / "tracelab_agent_sample.jsonl"
PARTS = ("sys_prompt", "passages_ids", "history", "web_search", "user_input")


@pytest.fixture(autouse=True, scope="module")
def _cache_env(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WRPSIM_CACHE", str(tmp_path_factory.mktemp("trace-cache")))
        yield


def records(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def common(a, b) -> int:
    k = 0
    while k < min(len(a), len(b)) and a[k] == b[k]:
        k += 1
    return k


def write(tmp_path: Path, lines: list) -> Path:
    p = tmp_path / "t.jsonl"
    p.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return p


# --- RAGPulse -----------------------------------------------------------------------------------


def test_ragpulse_rows_sums_order_and_sessions():
    recs = records(RAGPULSE)
    df = load_workload("ragpulse-week", 0, WORKLOADS)
    assert len(df) == len(recs) == 7106
    assert df.prompt_tokens.sum() == sum(r["input_length"] for r in recs) == 20917099
    assert df.output_tokens.sum() == sum(r["output_length"] for r in recs)
    order = sorted(range(len(recs)), key=lambda i: int(recs[i]["timestamp"]))  # stable
    t0 = min(int(r["timestamp"]) for r in recs)
    assert df.arrival_s.tolist() == [int(recs[i]["timestamp"]) - t0 for i in order]
    assert df.prompt_tokens.tolist() == [recs[i]["input_length"] for i in order]
    assert df.session_id.tolist() == [recs[i]["session_id"] for i in order]
    assert df.session_id.nunique() == 3990
    validate_trace(df)


def test_ragpulse_ids_follow_the_system_prompt_chunks():
    recs = records(RAGPULSE)
    order = sorted(range(len(recs)), key=lambda i: int(recs[i]["timestamp"]))
    df = load_workload("ragpulse-week", 0, WORKLOADS)
    assert df.attrs["hash_block_tokens"] == 512
    first, seen, lower = {}, set(), 0
    for ids, i in zip(df.hash_ids, order):
        r = recs[i]
        assert len(ids) == math.ceil(r["input_length"] / 512)
        sys = tuple(r["hash_ids"]["sys_prompt"][:2])  # two 512-token system prompt chunks
        if len(ids) >= 3:
            # same first two chunks <=> same first two blocks; different first chunk: no block
            assert first.setdefault(sys, tuple(ids[:2])) == tuple(ids[:2])
            lower += 2 * (sys in seen)
            seen.add(sys)
    heads = defaultdict(set)
    for sys, ids in first.items():
        heads[sys[0]].add(ids[0])
    assert all(len(v) == 1 for v in heads.values())
    assert len({v.pop() for v in heads.values()}) == len(heads)
    flat = [tuple(x for p in PARTS for x in recs[i]["hash_ids"][p]) for i in order]
    last = defaultdict(set)
    for chunks, ids in zip(flat, df.hash_ids):
        last[(len(ids), ids[-1])].add(chunks)  # a final block names the whole chunk list
    assert all(len(v) == 1 for v in last.values())
    hits = sum(h for h in _hits(df.hash_ids))
    assert lower <= hits
    assert hits / df.hash_ids.map(len).sum() == pytest.approx(0.2873, abs=1e-4)


def _hits(lists):
    seen = set()
    for ids in lists:
        h = 0
        while h < len(ids) and ids[h] in seen:
            h += 1
        yield h
        seen.update(ids)


@pytest.mark.parametrize(("line", "match"), [
    ("{bad json", r"t\.jsonl: line 2: invalid JSON"),
    ({"timestamp": "1x", "input_length": 5, "output_length": 1, "hash_ids": {}},
     r"line 2: field timestamp \(arrival_s\): not a number: '1x'"),
    ({"timestamp": "3", "input_length": 0, "output_length": 1, "hash_ids": {}},
     r"line 2: field input_length \(prompt_tokens\): token count must be >= 1, got 0"),
    ({"timestamp": "3", "input_length": 5, "output_length": 1.5, "hash_ids": {}},
     r"line 2: field output_length \(output_tokens\): not an integer: 1\.5"),
    ({"timestamp": "3", "input_length": 5, "output_length": 1,
      "hash_ids": {"history": [1, "a"]}},
     r"line 2: field hash_ids\.history: expected a list of integers"),
    ({"timestamp": "3", "input_length": 5, "output_length": 1, "hash_ids": {"docs": [1]}},
     r"line 2: field hash_ids\.docs: unknown prompt part; valid parts: sys_prompt"),
    ({"timestamp": "3", "input_length": 5, "output_length": 1, "hash_ids": [1, 2]},
     r"line 2: field hash_ids: expected an object of id lists per prompt part")])
def test_ragpulse_errors_name_file_line_and_field(tmp_path, line, match):
    ok = {"timestamp": "1", "input_length": 5, "output_length": 1,
          "hash_ids": {"sys_prompt": [1], "user_input": [2]}, "session_id": "s"}
    with pytest.raises(TraceError, match=match):
        load_trace(write(tmp_path, [ok, line]), kind="ragpulse", cache=False)


def test_ragpulse_options():
    with pytest.raises(ConfigError, match=r"source\.chunk_tokens\.docs: unknown value"):
        load_trace(RAGPULSE, kind="ragpulse", chunk_tokens={"docs": 3})
    with pytest.raises(ConfigError, match=r"source\.columns: unknown key 'columns'; valid keys: "
                       r"cache, chunk_tokens, hash_block_tokens"):
        load_trace(RAGPULSE, kind="ragpulse", columns={})
    with pytest.raises(ConfigError, match=r"workload\.source\.hash_block_tokens: unknown key"):
        build_workload({"source": {"kind": "ragpulse", "path": str(RAGPULSE),
                                   "hash_block_tokens": 64}}, 0)


# --- TraceLab agent rounds ---------------------------------------------------------------------


def _rounds():
    by_session = defaultdict(list)
    for r in records(TRACELAB):
        by_session[r["session_id"]].append(r)
    return {s: sorted(v, key=lambda r: r["round_index"]) for s, v in by_session.items()}


def _sent(r) -> float:
    ev = r["timing_events"]
    inputs = [e["timestamp"] for e in ev if e["event_type"] in ("user_message", "tool_result")]
    ts = max(inputs) if inputs else ev[0]["timestamp"]
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize("reuse", ["context", "observed"])
def test_agent_rounds_share_the_expected_blocks(reuse):
    rounds = _rounds()
    df = load_trace(TRACELAB, kind="agent_rounds", reuse=reuse)
    assert len(df) == 19 and df.session_id.nunique() == 2 == len(rounds)
    assert df.prompt_tokens.sum() == sum(r["input_tokens_total"] for v in rounds.values()
                                         for r in v)
    assert df.output_tokens.sum() == sum(r["output_tokens"] for v in rounds.values() for r in v)
    for s, mine in rounds.items():
        got = df[df.session_id == s]
        assert got.prompt_tokens.tolist() == [r["input_tokens_total"] for r in mine]
        t0 = _sent(mine[0])
        np.testing.assert_allclose(got.arrival_s, [_sent(r) - t0 for r in mine], atol=1e-6)
        ids = got.hash_ids.tolist()
        assert len(ids[0]) == math.ceil(mine[0]["input_tokens_total"] / 16)
        for prev, cur, a, b in zip(mine, mine[1:], ids, ids[1:]):
            visible = prev["output_tokens"] - (prev["reasoning_output_tokens"] or 0)
            grows = cur["input_tokens_total"] >= prev["input_tokens_total"] + visible
            shared = (prev["input_tokens_total"] if reuse == "context" and grows
                      else min(cur["prefix_tokens"], prev["input_tokens_total"]))
            assert common(a, b) == shared // 16
    other = df.groupby("session_id").hash_ids.apply(lambda h: set().union(*h))
    assert not set.intersection(*other.tolist())


def test_agent_round_claude_context_continues():
    df = load_workload("tracelab-agent", 0, WORKLOADS)
    claude = df[df.session_id.str.startswith("claude")].hash_ids.tolist()
    previous_inputs = [32272, 35740, 38592, 41131, 41589, 42876, 44901, 45279, 47508]
    assert [common(a, b) for a, b in itertools.pairwise(claude)] == [
        p // 16 for p in previous_inputs]


def test_agent_round_timing_options():
    spaced = load_trace(TRACELAB, kind="agent_rounds", think_time_s=5)
    assert sorted(spaced.arrival_s.tolist()) == sorted([5.0 * k for k in range(10)]
                                                       + [5.0 * k for k in range(9)])
    absolute = load_trace(TRACELAB, kind="agent_rounds", align_sessions=False)
    first = min(_sent(r) for v in _rounds().values() for r in v)
    want = sorted(_sent(r) - first for v in _rounds().values() for r in v)
    np.testing.assert_allclose(absolute.arrival_s, want, atol=1e-6)
    assert absolute.arrival_s.max() > 60 * 86400  # sessions recorded ~72 days apart


@pytest.mark.parametrize(("edit", "match"), [
    ({"session_id": None}, r"line 2: field session_id \(session_id\): missing value"),
    ({"round_index": 0}, r"line 2: field round_index: round 0 of session 'a' already appears "
                         r"on line 1"),
    ({"prefix_tokens": 99}, r"line 2: field prefix_tokens: 99 exceeds input_tokens_total 50"),
    ({"input_tokens_total": -1}, r"line 2: field input_tokens_total \(prompt_tokens\): "
                                 r"token count must be >= 1"),
    ({"timing_events": []}, r"line 2: field timing_events \(arrival_s\): expected a non-empty "
                            r"list of events to time the round \(or set think_time_s\)"),
    ({"timing_events": [{"event_type": "tool_result", "timestamp": "yesterday"}]},
     r"line 2: field timing_events\.timestamp \(arrival_s\): cannot parse timestamp")])
def test_agent_round_errors_name_file_line_and_field(tmp_path, edit, match):
    ok = {"session_id": "a", "round_index": 0, "input_tokens_total": 40, "prefix_tokens": 0,
          "output_tokens": 3, "timing_events": [{"event_type": "user_message",
                                                 "timestamp": "2026-01-01T00:00:00Z"}]}
    bad = {**ok, "round_index": 1, "input_tokens_total": 50, **edit}
    with pytest.raises(TraceError, match=r"t\.jsonl: " + match):
        load_trace(write(tmp_path, [ok, bad]), kind="agent_rounds", cache=False)
    with pytest.raises(ConfigError, match=r"source\.reuse: unknown value 'all'"):
        load_trace(TRACELAB, kind="agent_rounds", reuse="all")


# --- prefix_ids: session and kind: sessions ---------------------------------------------------


def test_session_mode_chains_turns():
    prompts = [100, 40, 180, 260, 90, 300]
    sessions = ["a", "b", "a", "a", "a", None]
    df = canonical_frame(np.arange(6.0), prompts, [20] * 6, {"session_id": sessions})
    out = apply_prefix_ids(df, "session", None, 16, seed=0).hash_ids.tolist()
    assert [len(h) for h in out] == [math.ceil(p / 16) for p in prompts]
    assert common(out[0], out[2]) == 100 // 16  # a2 extends a1
    assert common(out[2], out[3]) == 180 // 16  # a3 extends a2
    assert common(out[3], out[4]) == 0  # a4 is shorter than a3: a new chain
    ids = [set(h) for h in out]
    assert not ids[1] & (ids[0] | ids[2]) and not ids[5] & set().union(*ids[:5])


def test_session_mode_on_ragpulse_is_consistent():
    df = load_workload("ragpulse-week", 0, WORKLOADS, prefix_ids="session",
                       hash_block_tokens=64)
    assert df.attrs["hash_block_tokens"] == 64
    validate_trace(df)


def test_sessions_source_grows_contexts():
    cfg = {"source": {"kind": "sessions", "num_sessions": 300,
                      "arrivals": {"process": "poisson", "rate": 2.0},
                      "turns": {"dist": "geometric", "mean": 5}, "think_time_s": 10.0,
                      "system": {"tokens": 512, "prefixes": 3},
                      "first_prompt": {"dist": "uniform", "low": 10, "high": 400},
                      "new_tokens": {"dist": "constant", "value": 50},
                      "output": {"dist": "uniform", "low": 1, "high": 300},
                      "max_context": 4000},
           "hash_block_tokens": 32}
    df = build_workload(cfg, seed=3)
    pd.testing.assert_frame_equal(df, build_workload(cfg, seed=3))
    assert df.attrs["hash_block_tokens"] == 32 and df.prompt_tokens.max() <= 4000
    firsts = set()
    for _, g in df.groupby("session_id", sort=False):
        p, o, ids = g.prompt_tokens.tolist(), g.output_tokens.tolist(), g.hash_ids.tolist()
        assert 512 + 10 <= p[0] <= 512 + 400
        firsts.add(tuple(ids[0][:16]))
        for k in range(1, len(p)):
            assert p[k] == p[k - 1] + o[k - 1] + 50
            assert common(ids[k - 1], ids[k]) == p[k - 1] // 32
        assert np.all(np.diff(g.arrival_s.to_numpy()) >= 0)
    assert len(firsts) <= 3  # turn 1 starts with one of 3 system prompts (16 blocks)
    assert not build_workload(cfg, seed=4).equals(df)


def test_sessions_source_errors():
    base = {"kind": "sessions", "num_sessions": 5, "arrivals": {"process": "poisson", "rate": 1},
            "turns": {"dist": "constant", "value": 2}, "think_time_s": 1.0,
            "first_prompt": {"dist": "constant", "value": 10},
            "new_tokens": {"dist": "constant", "value": 10},
            "output": {"dist": "constant", "value": 10}}
    with pytest.raises(ConfigError, match=r"workload\.source\.turn: unknown key 'turn'; "
                       r".*did you mean 'turns'"):
        build_workload({"source": {**base, "turn": 1}}, 0)
    with pytest.raises(ConfigError, match=r"workload\.source\.new_tokens: expected a mapping"):
        build_workload({"source": {**base, "new_tokens": 5}}, 0)
    with pytest.raises(ConfigError, match=r"workload\.source\.turns\.mean must be a finite "
                       r"number >= 1 and <= 9007199254740991 \(2\^53 - 1\), got inf"):
        build_workload({"source": {**base, "turns": {"dist": "geometric", "mean": float("inf")}}},
                       0)
    with pytest.raises(ConfigError, match=r"workload\.source\.output\.value must be an integer"):
        build_workload({"source": {**base, "output": {"dist": "constant", "value": 12.5}}}, 0)
    with pytest.raises(ConfigError, match=r"workload\.source\.system\.prefixes must be an "
                       r"integer in \[1, 10,000,000\]"):
        build_workload({"source": {**base, "system": {"tokens": 64, "prefixes": 0}}}, 0)
    # a prompt whose prefix hash ids could not fit in memory is one line, not an hour of id
    # minting and an out-of-memory crash
    huge = {"dist": "constant", "value": 2**53 - 1}
    with pytest.raises(ConfigError, match=r"workload\.source: session s0 turn 1 has a prompt of "
                       r"9,007,199,254,740,991 tokens, .* at most 4,194,304 per prompt"):
        build_workload({"source": {**base, "first_prompt": huge}}, 0)


def test_sessions_run_by_clients_one_after_another():
    """`clients: N` (vLLM's multi-turn benchmark, `--num-clients`): session i goes to client
    i mod N, every client starts at 0 and runs its conversations one after another, so in
    the replay at most N turns are in flight; each conversation keeps its own growing prefix
    (hash ids), the rows name their client."""
    from tests.conftest import compose_cfg
    from wrpsim.sim import Simulation

    src = {"kind": "sessions", "num_sessions": 7, "clients": 3, "dependent": True,
           "think_time_s": 0.0, "turns": {"dist": "constant", "value": 3},
           "system": {"tokens": 64, "prefixes": 1},
           "first_prompt": {"dist": "constant", "value": 200},
           "new_tokens": {"dist": "constant", "value": 40},
           "output": {"dist": "constant", "value": 30}}
    df = build_workload({"source": src}, seed=1)
    assert sorted(df.session_id.unique()) == ["c0", "c1", "c2"]
    assert df.groupby("session_id").size().to_dict() == {"c0": 9, "c1": 6, "c2": 6}
    assert (df.arrival_s == 0.0).all()
    c0 = df[df.session_id == "c0"]
    # three conversations of 3 turns: each starts over at the system prompt + 200 tokens
    assert c0.prompt_tokens.tolist() == [264, 334, 404] * 3
    assert c0.think_s.isna().tolist() == [True] + [False] * 8
    assert common(c0.hash_ids.iloc[2], c0.hash_ids.iloc[3]) == 64 // 16  # only the system
    cfg = compose_cfg("pool.pools.h100.count=1")
    req, _, _ = Simulation(cfg, df).run()
    rows = req.to_pylist()
    assert len(rows) == 21 and all(r["status"] == "completed" for r in rows)
    events = sorted([(r["arrival_s"], 1) for r in rows] + [(r["finish_s"], -1) for r in rows],
                    key=lambda e: (e[0], e[1]))
    live = peak = 0
    for _, d in events:
        live += d
        peak = max(peak, live)
    assert peak == 3


def test_a_clients_later_conversations_follow_its_earlier_ones_with_think_time():
    """With think time between turns, a client's open-loop clock runs on through its
    conversations, so its rows stay in conversation order (the replay chains them in trace
    order: interleaved, the conversations' turns would alternate)."""
    src = {"kind": "sessions", "num_sessions": 4, "clients": 2, "dependent": True,
           "think_time_s": 5.0, "turns": {"dist": "constant", "value": 3},
           "first_prompt": {"dist": "constant", "value": 200},
           "new_tokens": {"dist": "constant", "value": 35},
           "output": {"dist": "constant", "value": 35}}
    df = build_workload({"source": src}, seed=0)
    for _, g in df.groupby("session_id", sort=False):
        assert g.prompt_tokens.tolist() == [200, 270, 340] * 2
        assert np.all(np.diff(g.arrival_s.to_numpy()) >= 0)


@pytest.mark.parametrize("edit, message", [
    ({"dependent": False}, r"^workload\.source\.clients needs dependent: true"),
    ({"duration_s": 10.0}, r"^workload\.source\.clients runs num_sessions one after another"),
    ({"clients": 2.5}, r"^workload\.source\.clients must be an integer, got 2\.5$"),
    ({"clients": 0}, r"^workload\.source\.clients must be >= 1, got 0$"),
    ({"clients": 5}, r"^workload\.source\.clients \(5\) must be at most num_sessions \(4\)"),
    ({"arrivals": {"process": "poison", "rate": 1}}, r"^workload\.source\.arrivals\.process"),
])
def test_sessions_clients_errors(edit, message):
    src = {"kind": "sessions", "num_sessions": 4, "clients": 2, "dependent": True,
           "turns": {"dist": "constant", "value": 2}, "think_time_s": 0.0,
           "first_prompt": {"dist": "constant", "value": 10},
           "new_tokens": {"dist": "constant", "value": 10},
           "output": {"dist": "constant", "value": 10}}
    with pytest.raises(ConfigError, match=message):
        build_workload({"source": {**src, **edit}}, 0)
