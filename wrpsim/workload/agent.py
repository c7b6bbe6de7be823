"""Agent-round loader (`kind: agent_rounds`): coding-agent sessions, one request per LLM round.

Format (uw-syfi/TraceLab `round_trace.jsonl`), one JSON object per round; the fields used::

    {"session_id": "claude:92ee...", "round_index": 1, "input_tokens_total": 35740,
     "prefix_tokens": 29380, "newly_append_tokens": 6360, "output_tokens": 1016,
     "reasoning_output_tokens": null,
     "timing_events": [{"event_type": "tool_result", "timestamp": "2026-06-01T05:40:31.696Z"},
                       {"event_type": "reasoning", "timestamp": "..."}, ...]}

Each round is a request of session `session_id`: `prompt_tokens = input_tokens_total` (the
round's full context), `output_tokens = output_tokens`. Reading the fields:
`prefix_tokens + newly_append_tokens = input_tokens_total`, where `prefix_tokens` is what the
provider's prompt cache served. For Claude rounds it is the previous round's input minus 2
tokens, so the previous output sits in the appended tokens; for OpenAI rounds it is a
128-token-granular cache hit that can miss (e.g. 3,456 of a 10,152-token context that continues
the previous round). `reasoning_output_tokens` (part of `output_tokens`) are not sent back.

Shared context with the previous round r - 1 of the session (`reuse:`):

- `context` (default): round r continues round r - 1 when
  `input_r >= input_{r-1} + output_{r-1} - reasoning_{r-1}` (the previous context plus its
  visible output fits in the new one); it then shares `input_{r-1}` tokens. Otherwise the context
  was rewritten (e.g. reasoning items dropped) and it shares `min(prefix_tokens_r, input_{r-1})`,
  the part the provider's cache proved equal.
- `observed`: it always shares `min(prefix_tokens_r, input_{r-1})`.

Round r's ids: the first floor(shared / B) ids of round r - 1, then fresh ids from one counter
(deterministic: rounds are taken in file order of sessions, then round_index). A session's
first round starts cold (its `prefix_tokens`, cached by the provider before the trace, are not
shared with anything here).

Arrivals (`think_time_s: null`): a round is sent when its last input event (`user_message` or
`tool_result`) has happened, so its time is that event's timestamp (the first event's if there
is none); times include the recorded model and tool latency. `align_sessions: true` (default)
starts every session at 0, as the sample's two sessions were recorded months apart; `false`
keeps absolute times (arrival_s from the earliest round). With `think_time_s: x` the timing
events are ignored and rounds of a session arrive x seconds apart (first at 0).

Dependent rounds (`dependent: true`, the default): every round but a session's first gets the
canonical `think_s` column, so the simulation replays the session closed-loop (`wrpsim.sessions`):
round r is sent `think_s` seconds after round r - 1 has been answered *in the simulation*, and
its `arrival_s` above only keeps the recorded schedule (order; the first round's send time).
`think_s` is the agent's own time between rounds — tool execution, the user, the client:

    think_s_r = max(0, sent_r - end_{r-1})

where sent_r is round r's send time above (its last input event) and end_{r-1} the end of round
r - 1's recorded model output: the latest of its other events (`reasoning`, `text`,
`tool_call`, and Codex's `usage_report`, which closes a response), or sent_{r-1} when it has
none. The recorded model latency (sent_{r-1} .. end_{r-1}) is thus left out: the simulated fleet
supplies its own. Clipping at 0 covers a tool result stamped before the last output event. In
the shipped sample the pauses are 0.002-21.5 s (tool calls, web searches, the user's next
message; 92.5 s in all for the Claude session, 31.1 s for the Codex one). With
`think_time_s: x`, think_s = x. `dependent: false` keeps open-loop replay (no `think_s`
column): every round arrives at its recorded time whatever the fleet's latency.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wrpsim.errors import ConfigError, boolean, unknown_choice
from wrpsim.workload.prefix import (
    DEFAULT_BLOCK_TOKENS,
    IdMinter,
    check_block_tokens,
    set_block_tokens,
)
from wrpsim.workload.readers import read_records
from wrpsim.workload.records import fail, integer, text
from wrpsim.workload.validate import canonical_frame, sort_by_arrival

REUSE = ("context", "observed")
OPTIONS = ("align_sessions", "cache", "dependent", "hash_block_tokens", "reuse", "think_time_s")
INPUT_EVENTS = ("user_message", "tool_result")


def agent_params(hash_block_tokens: int | None = None, reuse: str | None = None,
                 think_time_s: float | None = None, align_sessions: bool | None = None,
                 dependent: bool | None = None) -> dict[str, Any]:
    """Resolved loader parameters (defaults: 16-token blocks, context reuse, trace timing,
    dependent rounds)."""
    reuse = reuse or "context"
    if reuse not in REUSE:
        raise unknown_choice("source.reuse", reuse, REUSE)
    if think_time_s is not None and (isinstance(think_time_s, bool) or not isinstance(
            think_time_s, (int, float)) or not np.isfinite(think_time_s) or think_time_s < 0):
        raise ConfigError(f"source.think_time_s must be a number >= 0 or null, got "
                          f"{think_time_s!r}")
    b = DEFAULT_BLOCK_TOKENS if hash_block_tokens is None else check_block_tokens(
        hash_block_tokens, "hash_block_tokens")
    return {"hash_block_tokens": b, "reuse": reuse,
            "think_time_s": None if think_time_s is None else float(think_time_s),
            "align_sessions": boolean("source.align_sessions", align_sessions, True),
            "dependent": boolean("source.dependent", dependent, True)}


def _timing(path: Path, line: int, rec: dict) -> tuple[float, float | None]:
    """Seconds since the epoch of the round's send (its last input event, else its first event)
    and of the end of its recorded model output (its last other event; None if it has none)."""
    events = rec.get("timing_events")
    if not isinstance(events, list) or not events:
        raise fail(path, line, "timing_events", f"expected a non-empty list of events to time "
                   f"the round (or set think_time_s), got {events!r}", "arrival_s")
    stamps = []
    for e in events:
        ts = e.get("timestamp") if isinstance(e, dict) else None
        t = pd.to_datetime(ts, utc=True, format="ISO8601", errors="coerce") if isinstance(
            ts, str) else pd.NaT
        if pd.isna(t):
            raise fail(path, line, "timing_events.timestamp",
                       f"cannot parse timestamp {ts!r} (ISO 8601)", "arrival_s")
        stamps.append((e.get("event_type") in INPUT_EVENTS, t.value / 1e9))
    inputs = [s for is_input, s in stamps if is_input]
    outputs = [s for is_input, s in stamps if not is_input]
    return (max(inputs) if inputs else stamps[0][1]), (max(outputs) if outputs else None)


def _shared(cur: dict, prev: dict | None, reuse: str) -> int:
    """Tokens of round `cur`'s prompt equal to the previous round's (module docstring)."""
    if prev is None:
        return 0
    observed = min(cur["prefix"], prev["input"])
    visible = prev["output"] - min(prev["reasoning"], prev["output"])
    if reuse == "context" and cur["input"] >= prev["input"] + visible:
        return prev["input"]
    return observed


def load_agent_rounds(path: str | Path, params: Mapping[str, Any]) -> pd.DataFrame:
    """Load an agent-round trace into the canonical frame (see the module docstring).

    `params` comes from `agent_params`. The result has `session_id` and `hash_ids` columns (and
    `think_s` with `dependent: true`) and `attrs["hash_block_tokens"]`. Raises `TraceError`
    naming the file, line and field for a missing session or round index, a repeated round,
    token counts out of range (`prefix_tokens` must lie in [0, input_tokens_total]) or
    unparsable timing.
    """
    path = Path(path)
    rounds: list[dict] = []
    seen: dict[tuple[str, int], int] = {}
    for line, rec in read_records(path):
        r = {"line": line,
             "session": text(path, line, rec, "session_id", "session_id", required=True),
             "index": integer(path, line, rec, "round_index", low=0),
             "input": integer(path, line, rec, "input_tokens_total", "prompt_tokens"),
             "prefix": integer(path, line, rec, "prefix_tokens", low=0, required=False) or 0,
             "output": integer(path, line, rec, "output_tokens", "output_tokens"),
             "reasoning": integer(path, line, rec, "reasoning_output_tokens", low=0,
                                  required=False) or 0}
        if r["prefix"] > r["input"]:
            raise fail(path, line, "prefix_tokens", f"{r['prefix']} exceeds input_tokens_total "
                       f"{r['input']}")
        key = (r["session"], r["index"])
        if key in seen:
            raise fail(path, line, "round_index", f"round {r['index']} of session "
                       f"{r['session']!r} already appears on line {seen[key]}")
        seen[key] = line
        r["t"], r["end"] = ((None, None) if params["think_time_s"] is not None
                            else _timing(path, line, rec))
        rounds.append(r)
    sessions = list(dict.fromkeys(r["session"] for r in rounds))
    minter = IdMinter()
    b = params["hash_block_tokens"]
    rows: list[dict] = []
    for s in sessions:
        prev = None
        mine = sorted((r for r in rounds if r["session"] == s), key=lambda r: r["index"])
        for k, r in enumerate(mine):
            head = prev["ids"] if prev is not None else []
            r["ids"] = minter.chain(head, _shared(r, prev, params["reuse"]), r["input"], b)
            if params["think_time_s"] is not None:
                r["t"] = k * params["think_time_s"]
                r["think"] = params["think_time_s"] if k else np.nan
            else:
                if params["align_sessions"]:
                    r["t0"] = mine[0]["t"]
                r["think"] = np.nan if prev is None else max(
                    0.0, r["t"] - (prev["t"] if prev["end"] is None else prev["end"]))
            rows.append(r)
            prev = r
    t = np.array([r["t"] - r.get("t0", 0.0) for r in rows])
    optional = {"session_id": [r["session"] for r in rows], "hash_ids": [r["ids"] for r in rows]}
    if params["dependent"]:
        optional["think_s"] = [r["think"] for r in rows]
    df = canonical_frame(t - t.min(), [r["input"] for r in rows], [r["output"] for r in rows],
                         optional)
    return set_block_tokens(sort_by_arrival(df), b)
