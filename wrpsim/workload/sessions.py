"""Synthetic multi-turn sessions (`kind: sessions`): growing contexts with prefix hash ids.

Source spec (the `source:` block of a workload YAML)::

    kind: sessions
    num_sessions: 1000         # and/or duration_s (session starts < duration_s)
    duration_s: null
    arrivals: {process: poisson, rate: 0.5}         # session starts, as for kind: synthetic
    turns: {dist: geometric, mean: 4, max: 32}      # turns per session (fitted distribution)
    think_time_s: 30.0         # mean of the exponential gap between a session's turns (s)
    dependent: false           # true: closed loop, the gap runs from the previous answer
    system: {tokens: 1024, prefixes: 4, zipf_s: 1.0}   # shared system prompts (null = none)
    first_prompt: {dist: lognormal, mean: 512, sigma: 1.0, max: 8192}   # user tokens, turn 1
    new_tokens: {dist: lognormal, mean: 128, sigma: 1.0, max: 4096}     # user tokens, turn t > 1
    output: {dist: geometric, mean: 256, max: 2048}
    max_context: 32768         # a turn whose prompt would exceed this ends the session
    clients: null              # N: sessions run by N clients, one after another (below)

Turn 1's prompt is the session's system prompt (system.tokens, drawn from system.prefixes
prompts with Zipf popularity (k+1)^-zipf_s) plus `first_prompt` tokens; turn t's prompt is turn
t-1's prompt + its output + `new_tokens`. Arrivals are open loop by default: turn t arrives an
exponential think time after turn t-1 *arrived* (choose think_time_s above the expected response
time). With `dependent: true` the same draws become the canonical `think_s` column of turns
t > 1, so the simulation sends turn t that long after turn t-1 has been *answered* (closed loop,
`wrpsim.sessions`); `arrival_s` keeps the open-loop schedule (session starts, row order).
Each session is one `session_id` ("s<n>", n in start order). Hash ids (block size B = the
workload's `hash_block_tokens`, default 16): turn 1 shares its system prompt's first
min(floor(tokens / B), floor((P - 1) / B)) blocks, turn t shares turn t-1's first
floor(P_{t-1} / B) blocks, every other block is fresh.

With `clients: N` (vLLM's multi-turn benchmark, `benchmark_serving_multi_turn.py
--num-clients N`) the sessions are conversations run by N clients: session i goes to client
i mod N in start order, every client starts its first one at time 0 and each next one when its
last turn is answered (`think_time_s` later, like a turn), so N conversations are in flight at
a time. It needs `num_sessions` and `dependent: true` and ignores `arrivals`; each row's
`session_id` then names its client ("c<k>"), which chains the client's turns in the replay
(`wrpsim.sessions`), while the hash ids still follow each conversation's own prefix. A turn
that ends unanswered (dropped, lost to a failure) ends the client's remaining turns, as an
aborted session does (`session_aborted`); vLLM's benchmark would drop that conversation only.
Also unlike it: vLLM's clients take the next conversation from one shared queue (the first
free client), and by default the run stops when the first client finds the queue empty
(`--no-early-stop` runs to the end), where here every session is run; the summary's session
counts (`sessions_total`, `session_completion_*`) count clients.

Streams: starts `workload.arrivals`, turn counts and think times `workload.sessions`, user
tokens `workload.lengths`, outputs `workload.lengths.output`, system prompts `workload.prefix`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from wrpsim.errors import ConfigError, boolean
from wrpsim.rng import stream
from wrpsim.workload.lengths import check_dist, draw_dist
from wrpsim.workload.prefix import DEFAULT_BLOCK_TOKENS, IdMinter, set_block_tokens
from wrpsim.workload.reuse import reuse_params, zipf_weights
from wrpsim.workload.synthetic import (
    MAX_REQUESTS,
    _check_keys,
    _number,
    arrival_times,
    count_or_duration,
)
from wrpsim.workload.validate import canonical_frame, sort_by_arrival

SOURCE_KEYS = ("kind", "num_sessions", "duration_s", "arrivals", "turns", "think_time_s",
               "dependent", "system", "first_prompt", "new_tokens", "output", "max_context",
               "clients")
SYSTEM_KEYS = ("tokens", "prefixes", "zipf_s")

#: prefix hash ids one prompt may have (2^22: 67 M tokens at 16 per block, beyond any model's
#: context); a longer prompt is an error, not hours of id minting and an out-of-memory crash
MAX_IDS_PER_PROMPT = 1 << 22


def _system(spec, field: str) -> dict | None:
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{field}: expected a mapping like {{tokens: 1024, prefixes: 4}}")
    _check_keys(spec, SYSTEM_KEYS, field)
    return reuse_params({k: spec[k] for k in SYSTEM_KEYS if k in spec}, field)


def _clients(source: Mapping, field: str, ns, dur, dependent: bool) -> int:
    """`clients` checked (0: not given): an integer >= 1, with `num_sessions` (not
    `duration_s`: the clients' own pace sets when sessions start) and `dependent: true`."""
    if source.get("clients") is None:
        return 0
    v = _number(source, "clients", field, 1, strict=False)
    if not v.is_integer():
        raise ConfigError(f"{field}.clients must be an integer, got {source['clients']!r}")
    if ns is None or dur is not None:
        raise ConfigError(f"{field}.clients runs num_sessions one after another; give "
                          f"num_sessions, not duration_s")
    if not dependent:
        raise ConfigError(f"{field}.clients needs dependent: true (a client sends its next "
                          f"turn when the last one is answered)")
    if v > ns:
        raise ConfigError(f"{field}.clients ({int(v)}) must be at most num_sessions ({ns}): "
                          f"a client without a conversation sends nothing")
    return int(v)


def generate_sessions(source: Mapping, seed: int, block: int | None = None,
                      field: str = "source") -> pd.DataFrame:
    """Generate the canonical frame of a `kind: sessions` spec (see the module docstring).

    Raises `ConfigError` naming the field for unknown keys, missing or out-of-range values.
    """
    _check_keys(source, SOURCE_KEYS, field)
    ns, dur = count_or_duration(source, "num_sessions", field)
    for key in ("turns", "first_prompt", "new_tokens", "output"):
        check_dist(source.get(key), f"{field}.{key}")
    think = _number(source, "think_time_s", field, 0.0, strict=False)
    dependent = boolean(f"{field}.dependent", source.get("dependent"), False)
    cap = None
    if source.get("max_context") is not None:  # (0 is a bad cap, not "no cap": null is that)
        cap = _number(source, "max_context", field, 1)
        if cap != int(cap):
            raise ConfigError(f"{field}.max_context must be an integer, got "
                              f"{source['max_context']!r}")
        cap = int(cap)
    system = _system(source.get("system"), f"{field}.system")
    b = block or DEFAULT_BLOCK_TOKENS
    clients = _clients(source, field, ns, dur, dependent)

    if clients:  # every client's first conversation at 0, the rest chained (module docstring)
        if source.get("arrivals") is not None:  # (checked, though the clients set the starts)
            arrival_times(source["arrivals"], stream(seed, "workload.arrivals"), 1, None,
                          f"{field}.arrivals")
        start = np.zeros(ns)
    else:
        start = arrival_times(source.get("arrivals"), stream(seed, "workload.arrivals"), ns,
                              dur, f"{field}.arrivals")
    n = len(start)
    rs, rl = stream(seed, "workload.sessions"), stream(seed, "workload.lengths")
    turns = draw_dist(source["turns"], rs, n, f"{field}.turns")
    if turns.sum(dtype=np.float64) > MAX_REQUESTS:  # (float: an int64 sum could wrap)
        raise ConfigError(f"{field}: {int(turns.sum(dtype=np.float64))} turns exceed "
                          f"{MAX_REQUESTS}")
    total = int(turns.sum())
    gaps = rs.exponential(think, size=total) if think > 0 else np.zeros(total)
    first = draw_dist(source["first_prompt"], rl, n, f"{field}.first_prompt")
    new = draw_dist(source["new_tokens"], rl, total, f"{field}.new_tokens")
    out = draw_dist(source["output"], stream(seed, "workload.lengths.output"), total,
                    f"{field}.output")
    sys_tokens, per = (int(system["tokens"]), int(system["tokens"]) // b) if system else (0, 0)
    pick = stream(seed, "workload.prefix").choice(
        int(system["prefixes"]), size=n, p=zipf_weights(int(system["prefixes"]),
                                                        system["zipf_s"])) if system else None
    minter = IdMinter(int(system["prefixes"]) * per if system else 0)
    rows: dict[str, list] = {"t": [], "p": [], "o": [], "s": [], "ids": [], "think": []}
    k = 0
    # with clients: each client's open-loop clock, so that its conversations follow each other
    # in arrival order too (the replay chains a client's rows in trace order)
    clock = np.zeros(clients) if clients else None
    for i in range(n):
        t, prev_p, prev_o, ids = float(start[i]), 0, 0, []
        if clients:
            t = float(clock[i % clients])
        for turn in range(int(turns[i])):
            j, k = k, k + 1
            if turn == 0:
                # (a client's later conversation follows its previous one's last answer)
                gap = float(gaps[j]) if clients and i >= clients else np.nan
                if gap == gap:  # (not NaN)
                    t += gap
                p = sys_tokens + int(first[i])
                m = min(per, (p - 1) // b)
                head = range(int(pick[i]) * per, int(pick[i]) * per + m) if system else []
                shared = m * b
            else:
                gap = float(gaps[j])
                t += gap
                p, head, shared = prev_p + prev_o + int(new[j]), ids, prev_p
            if cap is not None and p > cap:
                k += int(turns[i]) - turn - 1
                break
            if p // b > MAX_IDS_PER_PROMPT:  # its hash ids would not fit in memory
                who = (f"conversation {i} (client c{i % clients})" if clients
                       else f"session s{i}")
                raise ConfigError(
                    f"{field}: {who} turn {turn + 1} has a prompt of {p:,} tokens, "
                    f"{p // b:,} prefix hash ids of {b} tokens; at most {MAX_IDS_PER_PROMPT:,} "
                    f"per prompt ({MAX_IDS_PER_PROMPT * b:,} tokens; no model's context is "
                    f"that long: lower first_prompt / new_tokens / turns, or set max_context)")
            ids = minter.chain(head, shared, p, b)
            sid = f"c{i % clients}" if clients else f"s{i}"
            if clients:
                clock[i % clients] = t
            for key, v in zip(rows, (t, p, int(out[j]), sid, ids, gap)):
                rows[key].append(v)
            prev_p, prev_o = p, int(out[j])
    if not rows["t"]:
        raise ConfigError(f"{field}: no turn fits in max_context {cap}")
    optional = {"session_id": rows["s"], "hash_ids": rows["ids"]}
    if dependent:
        optional["think_s"] = rows["think"]
    df = canonical_frame(np.asarray(rows["t"]), rows["p"], rows["o"], optional)
    return set_block_tokens(sort_by_arrival(df), b)
