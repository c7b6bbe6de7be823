"""Closed-loop benchmark clients (`kind: closed_loop`), as `vllm bench serve --max-concurrency`,
ML.ENERGY and NVIDIA AIConfigurator measure a serving engine.

Source spec (the `source:` block of a workload YAML)::

    kind: closed_loop
    concurrency: 8             # clients (integer >= 1)
    num_requests: 200          # requests sent over all clients (integer >= 1)
    prompt_tokens: 1024        # an integer, or a distribution {dist: lognormal, mean: ..., ...}
    output_tokens: 128         # the same forms (`lengths.token_counts`)
    think_s: 0.0               # optional (>= 0, default 0): pause before a client's next request
    repeats: 1                 # optional (integer >= 1 dividing num_requests): the request list
                               # is num_requests / repeats requests sent repeats times

Semantics: each of the `concurrency` clients sends its first request at t = 0 and its next one
`think_s` after its previous one has ended — answered or dropped — until `num_requests` have
been sent in all; the requests go in list order to whichever client is free first, as the
benchmarks send them (`vllm bench serve --max-concurrency` and ML.ENERGY's client: every
request a task waiting on one semaphore of `concurrency` slots), so every client stays busy
until the list runs out. The frame is a trace of closed-loop sessions replayed by
`wrpsim.sessions.SessionDriver`: request i is dealt to client i mod c (session id
``client-<k>``), every row has `arrival_s` 0 (a client's first request is sent then; the
others' send times are decided by the simulation and recorded in `requests.parquet`) and the
rows after a client's first carry `think_s`. The frame carries `attrs["session_clients"] =
"shared"`, so the driver sends request c, c + 1, ... as clients come free, each as the client
that sent it (its `session_id` in `requests.parquet` and `tasks.parquet`; the dealing only
decides the first c), and `attrs["session_on_drop"] = "continue"`, so a dropped request does
not end its client (an agent session, by contrast, is aborted by an unanswered round). Each
client is one task (`kind: session`) of `tasks.parquet`.

Lengths are drawn in request order: prompts from the stream `workload.lengths`, outputs from
`workload.lengths.output`; the same seed gives the same frame.

`repeats` R > 1 sends a list of U = num_requests / R requests R times over, in order, as
ML.ENERGY's client does with `num_request_repeats`: request i repeats the prompt of request
i mod U — the same tokens, so it carries that request's prefix-block `hash_ids` (fresh ids per
listed prompt, `DEFAULT_BLOCK_TOKENS` tokens a block) and an engine's prefix cache can share
and skip it — while its output length is its own draw (a sampled answer differs from one send
to the next). U prompt lengths are drawn, then n outputs; with R = 1 the frame is the one
without `repeats` (no ids).

The arrival-time transforms mean nothing here (every `arrival_s` is 0), and per-session prefix
ids would chain unrelated requests of a client: `check_transforms` rejects `start_s`, `end_s`,
`rate_scale` other than 1 and `prefix_ids: session` (and `synthetic` with `repeats`, whose ids
it would replace).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from wrpsim.errors import ConfigError, check_keys, number, warn
from wrpsim.rng import stream
from wrpsim.sessions import CLIENTS_ATTR, CONTINUE, ON_DROP_ATTR, SHARED
from wrpsim.workload.lengths import MAX_TOKENS, token_counts
from wrpsim.workload.prefix import DEFAULT_BLOCK_TOKENS, IdMinter, n_blocks, set_block_tokens
from wrpsim.workload.synthetic import MAX_REQUESTS
from wrpsim.workload.validate import canonical_frame

SOURCE_KEYS = ("kind", "concurrency", "num_requests", "prompt_tokens", "output_tokens",
               "think_s", "repeats")


def count(source: Mapping, key: str, field: str, hi: int = MAX_REQUESTS) -> int:
    """`source[key]` as an integer in [1, hi]; ConfigError naming `field.key` otherwise."""
    v = source.get(key)
    ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    if not (ok and float(v).is_integer() and 1 <= v <= hi):
        raise ConfigError(f"{field}.{key} must be an integer >= 1 and <= {hi}, got {v!r}")
    return int(v)


def lengths(source: Mapping, seed: int, n: int, field: str,
            prompts: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(prompt, output) token counts of `n` requests from `source`'s `prompt_tokens` and
    `output_tokens` length specs (streams `workload.lengths`, `workload.lengths.output`);
    `prompts` (default `n`) prompt lengths are drawn."""
    for key in ("prompt_tokens", "output_tokens"):
        if source.get(key) is None:
            raise ConfigError(f"{field}.{key} is required: an integer in [1, {MAX_TOKENS}] "
                              "(2^53 - 1) or a distribution like {dist: lognormal, mean: 512, "
                              "sigma: 1.0}")
    return (token_counts(source["prompt_tokens"], stream(seed, "workload.lengths"),
                         n if prompts is None else prompts, f"{field}.prompt_tokens"),
            token_counts(source["output_tokens"], stream(seed, "workload.lengths.output"), n,
                         f"{field}.output_tokens"))


def generate_closed_loop(source: Mapping, seed: int, field: str = "source") -> pd.DataFrame:
    """The canonical frame of a `kind: closed_loop` spec (see the module docstring).

    Raises `ConfigError` naming the field for unknown keys and missing or out-of-range values.
    """
    check_keys(source, SOURCE_KEYS, field)
    c = count(source, "concurrency", field)
    n = count(source, "num_requests", field)
    if n < c:  # a burst of n is a closed loop of n clients: the rest never send
        warn(f"{field}.num_requests ({n:,}) is below {field}.concurrency ({c:,}): only {n:,} "
             f"clients ever send, one request each (a burst of {n:,})")
    think = number(f"{field}.think_s", source.get("think_s", 0.0), 0, finite=True, or_null=True)
    think = 0.0 if think is None else think
    reps = 1 if source.get("repeats") is None else count(source, "repeats", field)
    if n % reps:
        raise ConfigError(f"{field}.repeats ({reps:,}) must divide {field}.num_requests "
                          f"({n:,}): the list of num_requests / repeats requests is sent "
                          "repeats times")
    unique = n // reps
    prompt, output = lengths(source, seed, n, field, unique)
    optional = deal(n, c, think)
    if reps > 1:  # request i repeats listed prompt i mod U: its tokens, so its ids
        minter = IdMinter()
        ids = [minter.fresh(n_blocks(p, DEFAULT_BLOCK_TOKENS)) for p in prompt.tolist()]
        prompt = np.tile(prompt, reps)
        optional["hash_ids"] = ids * reps
    df = canonical_frame(np.zeros(n), prompt, output, optional)
    if reps > 1:
        set_block_tokens(df, DEFAULT_BLOCK_TOKENS)
    df.attrs[ON_DROP_ATTR] = CONTINUE
    df.attrs[CLIENTS_ATTR] = SHARED
    return df


def deal(n: int, clients: int, think_s: float) -> dict:
    """The `session_id` and `think_s` columns of `n` closed-loop requests dealt round-robin
    to `clients` clients (module docstring): request i to client i mod c, every request after
    a client's first pausing `think_s`."""
    i = np.arange(n)
    return {"session_id": [f"client-{k}" for k in (i % clients).tolist()],
            "think_s": np.where(i < clients, np.nan, think_s)}


def check_transforms(cfg: Mapping, field: str = "workload") -> None:
    """Reject the transform keys of workload `cfg` that a closed-loop source cannot honour."""
    for key in ("start_s", "end_s"):
        if cfg.get(key) is not None:
            raise ConfigError(f"{field}.{key}: a closed_loop source has no arrival schedule to "
                              "window (every client starts at 0); use null and set "
                              "source.num_requests or sim.horizon_s")
    scale = cfg.get("rate_scale")
    if scale is not None and scale != 1:
        raise ConfigError(f"{field}.rate_scale: a closed_loop source sends as fast as it is "
                          f"answered, so only 1 or null is valid, got {scale!r}; change "
                          "source.concurrency or source.think_s instead")
    reps = (cfg.get("source") or {}).get("repeats")
    if cfg.get("prefix_ids") == "synthetic" and reps not in (None, 1):
        raise ConfigError(f"{field}.prefix_ids: synthetic would replace the ids that "
                          f"source.repeats gives the repeated prompts; use null with repeats "
                          f"({reps!r})")
    if cfg.get("prefix_ids") == "session":
        raise ConfigError(f"{field}.prefix_ids: session would chain a client's unrelated "
                          "requests into one growing context; valid choices for a closed_loop "
                          "source: null, synthetic")
