# cython: nonecheck=True
# (compiled: an instance or sequence typed in the .pxd that is None raises instead of being read)
"""Per-request and per-instance result rows with explicit Arrow schemas.

Rows are buffered as tuples in the column order of their schema and converted to Arrow in
chunks of `CHUNK_ROWS` (columnar Arrow holds a row in a fraction of a tuple's memory, so a
million-request run stays small) and concatenated, sorted by request id, at the end.
Times are simulated seconds; latencies are NaN where undefined (e.g. TPOT of a one-token
answer or of an answer from the router's semantic cache, TTFT of a dropped request).
`finish_s` is when a request ended: its last token, or for a dropped one the moment it was
dropped (after its routing and front-end delays, when a closed-loop client learns of it); NaN
only for one in flight at the horizon.
"""

from __future__ import annotations

import math
from operator import itemgetter
from pathlib import Path

import pyarrow as pa

from wrpsim.arrowcols import table
from wrpsim.io import atomic_path
from wrpsim.parquetio import write_table

REQUEST_SCHEMA = pa.schema(
    [
        ("request_id", pa.int64()),  # first: `RequestLog.table` sorts rows by field 0
        ("parent_id", pa.int64()),  # the request a router's follow-up call derives from
        ("arrival_s", pa.float64()),
        ("model", pa.string()),
        ("pool", pa.string()),
        ("instance", pa.int32()),
        ("prompt_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        # arrival -> first admitted into a batch: routing, the API server's front end (HTTP,
        # tokenization) and the engine's queue
        ("queue_wait_s", pa.float64()),
        ("ttft_s", pa.float64()),
        ("tpot_s", pa.float64()),
        ("e2e_s", pa.float64()),
        ("first_token_s", pa.float64()),
        # when it ended: its last token (completed) or when it was dropped; NaN in flight
        ("finish_s", pa.float64()),
        ("preemptions", pa.int32()),
        ("prefix_blocks", pa.int32()),  # prefix-hash ids of the prompt (0 without ids)
        ("prefix_hit_blocks", pa.int32()),  # of those, found cached at first admission
        ("prefix_hit_tokens", pa.int64()),  # prompt tokens whose prefill the cache saved
        ("tt2t_s", pa.float64()),  # time to second token (NaN for one-token answers)
        ("prefill_pool", pa.string()),  # disaggregated: where the prompt was computed
        ("prefill_instance", pa.int32()),
        ("kv_transfer_bytes", pa.float64()),  # KV bytes sent prefill -> decode (0 colocated)
        ("kv_transfer_s", pa.float64()),  # exposed transfer: prompt done -> KV arrived
        # of which waiting for the decode instance to reserve the KV's blocks (back-pressure;
        # known once they are granted, so set while a transfer is still in flight at a horizon)
        ("kv_wait_s", pa.float64()),
        ("status", pa.string()),  # completed | dropped | in_flight
        ("drop_reason", pa.string()),
        # busy GPU time, IT energy and cost attributed to the request: every iteration's time
        # and energy split equally among the tokens it processed (prompt and decode), priced at
        # the instance's GPU-hour price; failed attempts included. Sums to the fleet's busy
        # time (instances.busy_s × tp), busy energy and busy cost.
        ("gpu_s", pa.float64()),
        ("energy_j", pa.float64()),
        ("cost_usd", pa.float64()),
        ("qoe", pa.float64()),  # streaming QoE (wrpsim.metrics.qoe); NaN unless completed
        # times the request was sent to an instance: 1 served at once, 1 + retries after a
        # failure, 0 never reached one (dropped for no_healthy_instance)
        ("attempts", pa.int32()),
        # routing: waiting for a router replica + its service time + the policy's decision
        # latency (wrpsim.router.service; part of ttft_s); NaN if never routed
        ("route_s", pa.float64()),
        # the trace's session of the request (a router's follow-up call keeps its parent's);
        # null without sessions: joins requests to tasks.parquet's session tasks
        ("session_id", pa.string()),
    ],
    metadata={"wrpsim.table": "requests", "wrpsim.version": "1",
              "wrpsim.units": "seconds of simulated time"},
)

INSTANCE_SCHEMA = pa.schema(
    [
        ("pool", pa.string()),
        ("instance", pa.int32()),
        ("gpu", pa.string()),
        ("model", pa.string()),
        ("tp", pa.int32()),
        ("busy_s", pa.float64()),
        ("utilization", pa.float64()),  # busy fraction: share of the run an iteration ran
        # mean tokens per iteration (prefill chunks + one per decoding sequence) over the
        # scheduler's token_budget: how full the batches were while busy
        ("token_budget_use", pa.float64()),
        ("iterations", pa.int64()),
        ("prefill_tokens", pa.int64()),
        ("decode_tokens", pa.int64()),
        # iterations with at least one decoding sequence: decode_tokens / decode_iterations is
        # the mean decode batch
        ("decode_iterations", pa.int64()),
        ("requests_completed", pa.int64()),
        ("requests_handed_off", pa.int64()),  # prompts sent on to a decode instance
        # KV bytes of every transfer this (prefill) instance handed off, retries after a
        # decode instance failed included (0 colocated)
        ("kv_sent_bytes", pa.float64()),
        ("preemptions", pa.int64()),
        ("kv_capacity_blocks", pa.int64()),
        ("kv_peak_blocks", pa.int64()),
        ("kv_mean_util", pa.float64()),
        ("prefix_cache_blocks", pa.int64()),  # HBM blocks held by prefix-cache entries at the end
        ("kv_dram_capacity_blocks", pa.int64()),  # host-DRAM tier (0: none)
        ("kv_dram_peak_blocks", pa.int64()),
        ("kv_load_blocks", pa.int64()),  # blocks loaded back into HBM from DRAM / remote tiers
        ("energy_j", pa.float64()),
        ("price_per_gpu_hour_usd", pa.float64()),
        ("mean_requests_in_system", pa.float64()),  # time average of waiting + running
        ("failures", pa.int32()),  # times the instance failed (wrpsim.failures)
        ("down_s", pa.float64()),  # seconds it was down (no power, no requests)
        ("engine", pa.string()),  # the engine calibration it runs (pool `engine`)
        ("calibration", pa.string()),  # what its iteration times rest on ("uncalibrated: ...")
    ],
    metadata={"wrpsim.table": "instances", "wrpsim.version": "1",
              "wrpsim.energy": "IT energy of the instance's GPUs, before PUE"},
)

NAN = math.nan


def _second_and_transfer(seq, now: float = math.inf) -> tuple:
    """tt2t_s, prefill pool, prefill index, KV bytes sent, exposed transfer seconds, seconds
    waited for the decode instance's reservation (a second token planned after `now`, the
    end of a run cut short, not counted)."""
    r = seq.req
    second = seq.second_token_s
    tt2t = NAN if second is None or second > now else second - r.arrival_s
    if seq.prefill_inst is None:
        return tt2t, None, None, 0.0, NAN, NAN
    pool, _, idx = seq.prefill_inst.rpartition("/")
    exposed = wait = NAN
    if seq.arrived_s is not None and seq.prefill_end_s is not None:
        exposed = seq.arrived_s - seq.prefill_end_s
    if seq.grant_s is not None and seq.prefill_end_s is not None:
        # from the prompt's end, or the later ask (a serialized pull's, after the orchestration)
        asked = seq.prefill_end_s if seq.ask_s is None else max(seq.ask_s, seq.prefill_end_s)
        wait = max(0.0, seq.grant_s - asked)
    return tt2t, pool, int(idx), float(seq.xfer_bytes), exposed, wait


CHUNK_ROWS = 65_536


def _rows_to_table(rows: list[tuple], schema: pa.Schema) -> pa.Table:
    cols = list(zip(*rows)) if rows else [[] for _ in schema]
    return table(cols, schema)


class _Rows(list):
    """A row buffer that moves full chunks into Arrow tables as it grows."""

    def __init__(self):
        super().__init__()
        self.chunks: list[pa.Table] = []

    def append(self, row: tuple) -> None:
        list.append(self, row)  # (not `super()`: once per request, and super() costs more)
        if len(self) >= CHUNK_ROWS:
            self.chunks.append(_rows_to_table(self, REQUEST_SCHEMA))
            self.clear()


class RequestLog:
    """Collects one row per request (the engine's `sink`)."""

    def __init__(self):
        self.rows = _Rows()
        #: request id -> [attempts, gpu_s, energy_j, cost_usd] of attempts lost to failures
        self.retried: dict[int, list] = {}
        #: requests dispatched and not yet recorded (id -> Request), so that a run cut short by
        #: its horizon records those between instances (decision delay, KV transfer, retry
        #: back-off) too
        self.open: dict[int, object] = {}
        #: callables(request, record dict) told of every completed request (routers that learn,
        #: multi-call aggregation, closed-loop sessions), in subscription order
        self.on_complete: list = []
        #: callables(request, record dict) told of every request that ends unanswered
        #: (status ``dropped``: rejected, too large, or lost to a failure)
        self.on_dropped: list = []
        #: request id -> seconds spent being routed (the dispatcher's; `route_s` column), until
        #: the request's row is recorded (then taken out: a long run keeps only the open ones)
        self.route_s: dict[int, float] = {}

    def finished(self, seq, inst, now: float) -> None:
        """Record a completed sequence."""
        r = seq.req
        rid = r.id
        self.open.pop(rid, None)
        ttft = seq.first_token_s - r.arrival_s
        tpot = (now - seq.first_token_s) / (r.output_tokens - 1) if r.output_tokens > 1 else NAN
        qoe = NAN if seq.qoe is None else seq.qoe.finish(now)
        route_s = self.route_s.pop(rid, NAN)
        prior = self.retried.get(rid)
        if prior is None and seq.prefill_inst is None and seq.second_token_s is not None:
            # the common row (first attempt, colocated, two tokens or more) in one tuple display:
            # `_second_and_transfer`, `_spent` and `_attempts` inlined, no unpacking
            wait_s = seq.admit_s - r.arrival_s
            row = (
                rid, r.parent_id, r.arrival_s, inst.model, inst.pool, inst.index,
                r.prompt_tokens, r.output_tokens, wait_s if wait_s > 0.0 else 0.0, ttft, tpot,
                now - r.arrival_s, seq.first_token_s, now, seq.preemptions,
                len(r.hash_ids or ()), seq.hit_blocks, seq.hit_tokens,
                seq.second_token_s - r.arrival_s, None, None, 0.0, NAN, NAN, "completed", None,
                seq.gpu_s, seq.energy_j, seq.cost_usd, qoe, 1, route_s, r.session_id,
            )
        else:
            if prior is None:
                spent, attempts = (seq.gpu_s, seq.energy_j, seq.cost_usd), 1
            else:
                spent = (seq.gpu_s + prior[1], seq.energy_j + prior[2], seq.cost_usd + prior[3])
                attempts = prior[0] + 1
            row = (
                rid, r.parent_id, r.arrival_s, inst.model, inst.pool, inst.index,
                r.prompt_tokens, r.output_tokens, max(0.0, seq.admit_s - r.arrival_s), ttft, tpot,
                now - r.arrival_s, seq.first_token_s, now, seq.preemptions,
                len(r.hash_ids or ()), seq.hit_blocks, seq.hit_tokens,
                *_second_and_transfer(seq), "completed", None, *spent, qoe, attempts, route_s,
                r.session_id,
            )
        self.rows.append(row)
        if self.on_complete:
            record = dict(zip(REQUEST_SCHEMA.names, row))
            for fn in self.on_complete:
                fn(r, record)

    def dropped(self, req, model: str, reason: str, now: float) -> None:
        """Record a request that was never served, dropped at `now` (its `finish_s`)."""
        self.open.pop(req.id, None)
        row = (
            req.id, req.parent_id, req.arrival_s, model, None, None, req.prompt_tokens,
            req.output_tokens,
            NAN, NAN, NAN, NAN, NAN, now, 0, len(req.hash_ids or ()), 0, 0, NAN, None, None, 0.0,
            NAN, NAN, "dropped", reason, *self._spent(None, req.id), NAN,
            self._attempts(req.id) - 1,  # attempts lost to failures before it was dropped
            self.route_s.pop(req.id, NAN), req.session_id,
        )
        self.rows.append(row)
        if self.on_dropped:
            record = dict(zip(REQUEST_SCHEMA.names, row))
            for fn in self.on_dropped:
                fn(req, record)

    def cached(self, req, model: str | None, now: float, qoe: float, skip=()) -> None:
        """Record a request answered by the router's semantic cache at `now`
        (`wrpsim.router.semcache`): the whole answer at once, no instance, no GPU time, TPOT
        NaN (no token was streamed by the fleet: TPOT figures describe the served rows); the
        `on_complete` subscribers in `skip` (the router's) are not told."""
        self.open.pop(req.id, None)
        e2e = now - req.arrival_s
        many = req.output_tokens > 1
        row = (
            req.id, req.parent_id, req.arrival_s, model, None, None, req.prompt_tokens,
            req.output_tokens, NAN, e2e, NAN, e2e, now, now, 0,
            len(req.hash_ids or ()), 0, 0, e2e if many else NAN, None, None, 0.0, NAN, NAN,
            "completed", None, 0.0, 0.0, 0.0, qoe, 0, self.route_s.pop(req.id, NAN),
            req.session_id,
        )
        self.rows.append(row)
        if self.on_complete:
            record = dict(zip(REQUEST_SCHEMA.names, row))
            for fn in self.on_complete:
                if fn not in skip:
                    fn(req, record)

    def in_flight(self, seq, inst, sent: bool = True) -> None:
        """Record a request still queued or running when the horizon ends the run (`inst`
        None: between instances — routed with a decision delay, in KV transfer, backing off);
        `sent` False for one not on its way to an instance (routing, backing off), whose
        `attempts` are the sends before (0 for a request never sent)."""
        r = seq.req
        self.open.pop(r.id, None)
        # (a token of the step in progress, planned to come after the horizon, has not come)
        now = math.inf if inst is None else inst.env.now
        first = seq.first_token_s
        if first is not None and first > now:
            first = None
        pool, index = (None, None) if inst is None else (inst.pool, inst.index)
        self.rows.append((
            r.id, r.parent_id, r.arrival_s, r.model if inst is None else inst.model, pool, index,
            r.prompt_tokens,
            r.output_tokens, NAN if seq.admit_s is None else max(0.0, seq.admit_s - r.arrival_s),
            NAN if first is None else first - r.arrival_s, NAN, NAN,
            NAN if first is None else first, NAN, seq.preemptions, len(r.hash_ids or ()),
            seq.hit_blocks, seq.hit_tokens, *_second_and_transfer(seq, now), "in_flight", None,
            *self._spent(seq, r.id), NAN, self._attempts(r.id) - (0 if sent else 1),
            self.route_s.pop(r.id, NAN), r.session_id,
        ))

    def _spent(self, seq, rid: int) -> tuple:
        """(gpu_s, energy_j, cost_usd) of `seq` (None: nothing) plus earlier failed attempts."""
        g, e, c = (0.0, 0.0, 0.0) if seq is None else (seq.gpu_s, seq.energy_j, seq.cost_usd)
        prior = self.retried.get(rid)
        if prior is not None:
            g, e, c = g + prior[1], e + prior[2], c + prior[3]
        return g, e, c

    def _attempts(self, rid: int) -> int:
        prior = self.retried.get(rid)
        return 1 if prior is None else prior[0] + 1

    def table(self) -> pa.Table:
        """All rows sorted by request id, as an Arrow table of `REQUEST_SCHEMA`. Rows not yet
        moved into Arrow chunks (a run of fewer than `CHUNK_ROWS` requests) are sorted as
        tuples (a stable sort, as Arrow's), so such a run never imports `pyarrow.compute`."""
        if not self.rows.chunks:
            return _rows_to_table(sorted(self.rows, key=itemgetter(0)), REQUEST_SCHEMA)
        return _sorted_table([*self.rows.chunks, _rows_to_table(self.rows, REQUEST_SCHEMA)])

    def take_table(self) -> pa.Table:
        """`table()`, the log's rows moving into it: each column of the rows is released as
        its sorted copy is made, so the rows are held about once, not two or three times
        (a million requests' are ~270 MB); the log holds no rows afterwards."""
        if not self.rows.chunks:
            out = self.table()
        else:
            chunks = [*self.rows.chunks, _rows_to_table(self.rows, REQUEST_SCHEMA)]
            self.rows.chunks.clear()
            out = _sorted_table(chunks)
            # the freed chunks' memory goes back to the OS now, not to the Arrow pool's cache,
            # which the numpy and Python objects of the summaries that follow cannot use
            pa.default_memory_pool().release_unused()
        self.rows.clear()
        return out


def _sorted_table(chunks: list[pa.Table]) -> pa.Table:
    """The rows of the `REQUEST_SCHEMA` tables `chunks` as one table sorted by request id (a
    stable sort), each column one contiguous array. Takes the tables out of `chunks` and
    builds the result a column at a time, so a column of the rows is freed once sorted when
    nothing else holds the tables."""
    import pyarrow.compute as pc

    columns = [[a for t in chunks for a in t.column(i).chunks] for i in range(len(REQUEST_SCHEMA))]
    chunks.clear()
    order = pc.sort_indices(pa.concat_arrays(columns[0]))
    out = []
    for i in range(len(columns)):
        parts, columns[i] = columns[i], None
        out.append(pa.concat_arrays(parts).take(order))
        del parts
    return pa.Table.from_arrays(out, schema=REQUEST_SCHEMA)


def instance_table(rows: list[tuple]) -> pa.Table:
    """Arrow table of `INSTANCE_SCHEMA` from tuples in its column order."""
    return _rows_to_table(rows, INSTANCE_SCHEMA)


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write `table` to `path` atomically, with deterministic bytes for identical tables (those
    of `pyarrow.parquet.write_table(table, path, compression="zstd")`: `wrpsim.parquetio`)."""
    with atomic_path(path) as tmp:
        write_table(table, tmp, compression="zstd")
