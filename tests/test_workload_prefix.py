"""Prefix-block hash ids: block size metadata (transforms, cache), re-blocking, prefix
consistency, the intrinsic hit ratio and the synthetic reuse model against its closed form.

Reference values are computed here independently of `wrpsim.workload.prefix` (own consistency
check, own hit counting, the reuse model's expectation written out by hand).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from wrpsim.errors import ConfigError, TraceError
from wrpsim.workload import (
    apply_prefix_ids,
    apply_transforms,
    build_workload,
    canonical_frame,
    intrinsic_hit_ratio,
    load_trace,
    load_workload,
    prefix_violation,
    reblock,
    validate_trace,
)
from wrpsim.workload.cache import cache_file
from wrpsim.workload.loaders import loader_params
from wrpsim.workload.prefix import check_block_tokens, intrinsic_hits

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ROOT / "workloads"
MOONCAKE = WORKLOADS / "traces" / "mooncake_conversation.jsonl"


@pytest.fixture(autouse=True, scope="module")
def _cache_env(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WRPSIM_CACHE", str(tmp_path_factory.mktemp("trace-cache")))
        yield


def consistent(lists) -> bool:
    """Own check: an id always sits at one position after one predecessor (one pass, O(ids))."""
    where: dict[int, tuple[int, int | None]] = {}
    for ids in lists:
        for k, x in enumerate(ids or []):
            key = (k, ids[k - 1] if k else None)
            if where.setdefault(x, key) != key:
                return False
    return True


def hits_by_hand(lists) -> list[int]:
    """Leading ids seen in earlier lists, counted with a plain set."""
    seen, out = set(), []
    for ids in lists:
        h = 0
        while ids is not None and h < len(ids) and ids[h] in seen:
            h += 1
        out.append(h)
        seen.update(ids or [])
    return out


def frame(prompts, ids, block=16):
    n = len(prompts)
    df = canonical_frame(np.arange(n, dtype=float), prompts, [5] * n, {"hash_ids": ids})
    df.attrs["hash_block_tokens"] = block
    return df


# --- block size ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, 8, 100, -16, 1.5, True, "512", None])
def test_block_tokens_must_be_a_multiple_of_16(bad):
    with pytest.raises(ConfigError, match=r"multiple of 16 \(the engine's KV block size"):
        check_block_tokens(bad)
    assert check_block_tokens(512) == 512 and check_block_tokens(16.0) == 16


def test_workload_key_is_validated_and_named():
    with pytest.raises(ConfigError, match=r"workload\.hash_block_tokens must be a positive "
                       r"integer multiple of 16"):
        load_workload("mooncake-conversation", 0, WORKLOADS, hash_block_tokens=500)
    with pytest.raises(ConfigError, match=r"cannot re-block .* 512-token blocks into 768"):
        load_workload("mooncake-conversation", 0, WORKLOADS, hash_block_tokens=768)


def test_native_block_sizes_of_the_shipped_traces():
    want = {"mooncake-conversation": 512, "mooncake-synthetic": 512, "ragpulse-week": 512,
            "tracelab-agent": 16, "chat-sessions": 16}
    for name, block in want.items():
        df = load_workload(name, 0, WORKLOADS)
        assert df.attrs["hash_block_tokens"] == block, name
        assert all(len(h) == -(-p // block) for h, p in zip(df.hash_ids, df.prompt_tokens))
    assert "hash_block_tokens" not in load_workload("azure-code-2023", 0, WORKLOADS).attrs


def test_attrs_survive_every_transform():
    base = load_workload("mooncake-conversation", 0, WORKLOADS)
    opts = {"start_s": 60, "end_s": 1800, "sample_fraction": 0.5, "max_requests": 3000,
            "rate_scale": 2.0, "max_prompt_tokens": 3000, "max_output_tokens": 100,
            "model_mix": {"a": 1, "b": 2}}
    for key, value in opts.items():
        out = apply_transforms(base, {key: value}, seed=1)
        assert out.attrs["hash_block_tokens"] == 512, key
        validate_trace(out)
    out = apply_transforms(base, opts, seed=1)
    assert out.attrs == {"hash_block_tokens": 512}
    assert max(map(len, out.hash_ids)) == 6  # ceil(3000 / 512)
    assert base.attrs == {"hash_block_tokens": 512} and base.prompt_tokens.max() > 3000


def test_attrs_survive_the_parquet_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WRPSIM_CACHE", str(tmp_path / "c"))
    fresh = load_trace(MOONCAKE, kind="mooncake", cache=False)
    miss, hit = load_trace(MOONCAKE, kind="mooncake"), load_trace(MOONCAKE, kind="mooncake")
    pd.testing.assert_frame_equal(fresh, hit)
    assert fresh.attrs == miss.attrs == hit.attrs == {"hash_block_tokens": 512}
    cfile = cache_file(MOONCAKE, {"kind": "mooncake", **loader_params("mooncake")})
    assert pq.read_schema(cfile).metadata[b"wrpsim.hash_block_tokens"] == b"512"
    for kind, name, block in (("ragpulse", "ragpulse_week.jsonl", 1024),
                              ("agent_rounds", "tracelab_agent_sample.jsonl", 32)):
        path = WORKLOADS / "traces" / name
        a = load_trace(path, kind=kind, hash_block_tokens=block)
        b = load_trace(path, kind=kind, hash_block_tokens=block)
        pd.testing.assert_frame_equal(a, b)
        assert a.attrs == b.attrs == {"hash_block_tokens": block}


def test_generic_hash_ids_need_their_block_size(tmp_path):
    p = tmp_path / "g.jsonl"
    p.write_text('{"t": 0, "i": 40, "o": 1, "h": [7, 8, 9]}\n')
    cols = {"arrival_s": "t", "prompt_tokens": "i", "output_tokens": "o", "hash_ids": "h"}
    with pytest.raises(ConfigError, match=r"source\.hash_block_tokens: give the block size"):
        load_trace(p, columns=cols)
    assert load_trace(p, columns=cols, hash_block_tokens=16).attrs == {"hash_block_tokens": 16}
    cfg = {"source": {"kind": "generic", "path": str(p), "columns": cols,
                      "hash_block_tokens": 32}}
    with pytest.raises(TraceError, match=r"g\.jsonl: line 1: field h \(hash_ids\): hash_ids has 3 "
                       r"ids but prompt_tokens 40 spans ceil\(40 / 32\) = 2 blocks"):
        build_workload(cfg, 0)


def test_validate_checks_the_block_attribute():
    df = frame([40], [[1, 2, 3]])
    validate_trace(df)
    df.attrs["hash_block_tokens"] = 24
    with pytest.raises(TraceError, match=r"attrs hash_block_tokens must be a positive integer "
                       r"multiple of 16"):
        validate_trace(df)


# --- re-blocking --------------------------------------------------------------------------------


def test_reblock_mooncake_keeps_prefix_semantics_and_hits():
    base = load_workload("mooncake-conversation", 0, WORKLOADS, max_requests=3000)
    h512 = np.array(hits_by_hand(base.hash_ids.tolist()))
    n512 = base.hash_ids.map(len).to_numpy()
    for block in (16, 1024, 2048):
        out = reblock(base, block)
        assert out.attrs["hash_block_tokens"] == block and consistent(out.hash_ids)
        assert all(len(h) == -(-p // block) for h, p in zip(out.hash_ids, out.prompt_tokens))
        got = np.array(hits_by_hand(out.hash_ids.tolist()))
        if block < 512:  # every sub-block of a hit block hits, no other
            want = np.minimum(h512 * (512 // block), out.hash_ids.map(len).to_numpy())
        else:  # a merged block hits iff its last old block does
            f = block // 512
            want = np.where(h512 == n512, -(-h512 // f), h512 // f)
        np.testing.assert_array_equal(got, want)
    fine, coarse = intrinsic_hit_ratio(reblock(base, 16))[1], intrinsic_hit_ratio(base)[1]
    assert coarse <= fine <= coarse + 0.01  # finer blocks only add the final partial block


# --- consistency and the intrinsic hit ratio ---------------------------------------------------


def test_prefix_violation_finds_both_kinds_of_fault():
    assert prefix_violation([[1, 2, 3], [1, 2, 4], [5], None, [1]]) is None
    assert "position 1" in prefix_violation([[1, 2], [2]])
    assert "after 9" in prefix_violation([[1, 2], [9, 2]])


def test_intrinsic_hit_ratio_by_hand():
    df = frame([40, 48, 40, 20, 16], [[1, 2, 3], [1, 2, 4], [1, 2, 3], None, [9]])
    # hits 0, 2, 3 (a full hit: tokens capped at P - 1 = 39, rounded down to whole blocks: 32),
    # 0 (no ids: ceil(20/16) = 2 blocks), 0
    blocks, tokens = intrinsic_hit_ratio(df)
    assert blocks == pytest.approx((0 + 2 + 3) / (3 + 3 + 3 + 2 + 1))
    assert tokens == pytest.approx((0 + 32 + 32) / (40 + 48 + 40 + 20 + 16))
    assert intrinsic_hits(frame([16, 32], [[5], [6, 5]])).tolist() == [0, 0]  # prefix, not set
    assert intrinsic_hit_ratio(canonical_frame([0.0], [5], [5])) == (0.0, 0.0)


@pytest.mark.parametrize("name", ["mooncake-conversation", "mooncake-synthetic", "ragpulse-week",
                                  "tracelab-agent", "chat-sessions"])
def test_shipped_ids_are_consistent_and_ratio_matches_own_count(name):
    df = load_workload(name, 0, WORKLOADS)
    assert consistent(df.hash_ids.tolist())
    block = df.attrs["hash_block_tokens"]
    h = np.array(hits_by_hand(df.hash_ids.tolist()))
    p = df.prompt_tokens.to_numpy()
    blocks, tokens = intrinsic_hit_ratio(df)
    assert blocks == pytest.approx(h.sum() / df.hash_ids.map(len).sum())
    assert tokens == pytest.approx((block * np.minimum(h, (p - 1) // block)).sum() / p.sum())


def test_mooncake_ratio_is_pinned():
    recs = [json.loads(x) for x in MOONCAKE.read_text().splitlines() if x.strip()]
    h = hits_by_hand([r["hash_ids"] for r in recs])  # the file is sorted by timestamp
    blocks, _ = intrinsic_hit_ratio(load_workload("mooncake-conversation", 0, WORKLOADS))
    assert blocks == pytest.approx(sum(h) / sum(len(r["hash_ids"]) for r in recs))
    assert blocks == pytest.approx(0.3664, abs=1e-4)


# --- synthetic reuse against its closed form --------------------------------------------------


def expected_ratio(prompt, block, f, n_tok, k, s, q, w):
    """E[sum hits] / sum blocks of the reuse model (every prompt >= n_tok + block + 1).

    Request i (i >= 1) continues one of the previous min(w, i) requests with probability q and
    then hits floor(min(P_j, P_i - 1) / B) blocks; else with probability f it carries system
    prompt k (prob p_k) and hits its m = n_tok / B blocks iff an earlier non-continuing request
    carried k: 1 - (1 - f p_k)(1 - (1 - q) f p_k)^(i - 1).
    """
    p = np.arange(1, k + 1, dtype=float) ** -s
    p /= p.sum()
    i = np.arange(1, len(prompt))
    back = [np.where(i - d >= 0, np.minimum(prompt[np.maximum(i - d, 0)], prompt[i] - 1) // block,
                     0) for d in range(1, w + 1)]
    cont = np.sum(back, axis=0) / np.minimum(w, i)
    seen = 1 - (1 - f * p) * (1 - (1 - q) * f * p) ** (i[:, None] - 1)
    total = q * cont.sum() + (1 - q) * f * (n_tok // block) * (seen @ p).sum()
    return total / (-(-prompt // block)).sum()


@pytest.mark.parametrize(("f", "k", "s", "q", "w"),
                         [(0.6, 20, 1.1, 0.25, 8), (0.3, 200, 0.8, 0.0, 1), (1.0, 3, 2.0, 0.5, 1)])
def test_synthetic_reuse_matches_closed_form(f, k, s, q, w):
    rng = np.random.default_rng(7)
    n, block, n_tok = 20000, 16, 1024
    prompt = rng.integers(n_tok + block + 1, 4 * n_tok, n)
    df = canonical_frame(np.arange(n) * 0.1, prompt, np.full(n, 10))
    params = {"share": f, "tokens": n_tok, "prefixes": k, "zipf_s": s, "continue_prob": q,
              "continue_window": w}
    out = apply_prefix_ids(df, "synthetic", params, block, seed=3)
    assert consistent(out.hash_ids.tolist()) and out.attrs["hash_block_tokens"] == block
    want = expected_ratio(prompt, block, f, n_tok, k, s, q, w)
    blocks, tokens = intrinsic_hit_ratio(out)
    assert blocks == pytest.approx(want, abs=0.012)
    assert tokens == pytest.approx(want * (-(-prompt // block)).sum() * block / prompt.sum(),
                                   abs=0.012)
    assert ("session_id" in out.columns) == (q > 0)


def test_synthetic_reuse_is_deterministic_and_seeded():
    a = load_workload("azure-code-2023", 4, WORKLOADS, prefix_ids="synthetic",
                      prefix_reuse={"continue_prob": 0.2})
    b = load_workload("azure-code-2023", 4, WORKLOADS, prefix_ids="synthetic",
                      prefix_reuse={"continue_prob": 0.2})
    c = load_workload("azure-code-2023", 5, WORKLOADS, prefix_ids="synthetic",
                      prefix_reuse={"continue_prob": 0.2})
    pd.testing.assert_frame_equal(a, b)
    assert a.hash_ids.tolist() != c.hash_ids.tolist()
    assert a.attrs == {"hash_block_tokens": 16} and consistent(a.hash_ids.tolist())
    validate_trace(a)


@pytest.mark.parametrize(("reuse", "match"), [
    ({"shar": 0.5}, r"prefix_reuse\.shar: unknown value .*valid choices: continue_prob"),
    ({"share": 1.5}, r"prefix_reuse\.share must be a number in \[0\.0, 1\.0\]"),
    ({"tokens": 10.5}, r"prefix_reuse\.tokens must be an integer in \[1, 10,000,000\]"),
    ("lots", r"prefix_reuse: expected a mapping")])
def test_reuse_parameter_errors(reuse, match):
    with pytest.raises(ConfigError, match=match):
        load_workload("azure-code-2023", 0, WORKLOADS, prefix_ids="synthetic", prefix_reuse=reuse)


def test_prefix_ids_mode_errors():
    with pytest.raises(ConfigError, match=r"prefix_ids: unknown value 'sesion'; valid choices: "
                       r"session, synthetic"):
        load_workload("azure-code-2023", 0, WORKLOADS, prefix_ids="sesion")
    with pytest.raises(ConfigError, match=r"prefix_ids: session needs a session_id column"):
        load_workload("azure-code-2023", 0, WORKLOADS, prefix_ids="session")
