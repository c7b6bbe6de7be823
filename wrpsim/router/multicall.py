"""Multi-call routing: fan-out ensembles (vote, judge, fusion) and multi-round chains.

A *task* is one request of the workload (or, under a wrapping router such as `GuardedRouter`,
the call that router hands on). A multi-call router answers it with several calls, each a real
request on the fleet — its own row in `requests.parquet` (`parent_id` set on all but the first),
its own queueing, latency, GPU time, energy and `cost_usd` — and combines their replayed
outcomes (`Request.outcomes`) into the *answer*'s quality by a stated rule.

`EnsembleRouter` (fan-out). The task's own request is call 0; calls 1..k-1 are follow-ups made
at the same instant, all on `models` (or `k` copies of `model`; default: k copies of the
cheapest served model), each placed on the least outstanding instance of its model, each with
the task's prompt and output length. When all k have ended, `aggregate` combines them:

- `vote`: majority of the calls' outcomes. With outcomes y_i (1/0 replayed, or expected
  accuracies read as independent calls' probabilities) the answer's quality is the exact
  probability that a strict majority is correct, plus, for an even number of calls, the
  probability of a tie whose *first* call (in `models` order) is correct — ties are broken by
  the first call. For 1/0 outcomes this is the majority itself. No extra call.
- `judge` (best-of-k): a judge call on `aggregator_model` (default: the dearest served model)
  with prompt = task prompt + the k answers' output tokens + `instruction_tokens`, output =
  `aggregator_output_tokens` (default 16: an index and a short reason) picks one candidate.
  Quality: 1 where every candidate is right, 0 where none is, and `judge_accuracy` where they
  disagree (the judge picks a right one with that probability). For independent fractional
  outcomes: P(all) + judge_accuracy · (1 − P(all) − P(none)).
- `fusion`: an aggregator call (prompt as for the judge; output = the task's output length, or
  `aggregator_output_tokens`) writes a new answer reconciling its own with the candidates'
  majority: where the aggregator's own outcome (`outcomes[aggregator_model]`) and the vote
  agree, that; where they disagree, right with probability `fusion_accuracy`:
  P(both) + fusion_accuracy · P(exactly one), with P(vote) as above and the aggregator
  independent of it. `fusion_accuracy` 1 is "the aggregator keeps whichever is right"
  (optimistic), 0 "only when both are right", 0.5 a coin toss.

The answer finishes when its last call (the aggregation call included) finishes.

`ChainRouter` (multi-round, a fixed chain; `wrpsim.router.rounds.RoundRouter` chooses each
round's model or stops, after Router-R1). Round 0 is the task's request on `models[0]`;
when round r completes, round r+1 is a follow-up of it (its `parent_id`) on `models[r+1]` with
prompt = round r's prompt + round r's output + `instruction_tokens` and the task's output
length. The answer is the last round's: quality = outcomes[last model], finish = its finish.
Default models: the cheapest then the dearest served model.

Lost calls (dropped: rejected, too large for the KV cache, lost to a failure) resolve through
`on_dropped`, never hang and never count twice: an ensemble aggregates the candidates that
completed (a single survivor is the answer, with no aggregation call; status `partial`); with
none, or when the aggregation call or any chain round is lost, the answer fails (status
`failed`: unanswered, quality 0 in the metrics). An answer resolved by a lost call finishes at
the time of the loss.

Replayed outcomes are one correctness per (prompt, model): repeated calls of one model agree,
as at temperature 0, so an ensemble gains only where different models disagree (or where the
outcomes are expected accuracies, which the rules read as independent calls — optimistic for
real samples, which are correlated).

`answers` maps each task's first call id to an `Answer` (quality, finish_s, calls, cost_usd —
Σ `cost_usd` of its calls' rows —, status: answered | partial | failed | pending, the last for
tasks still open when the run stops); `wrpsim.metrics.quality.quality_summary(answers=...)`
scores those tasks by it. `decisions` (the routing side table) labels each call `call` (score =
call index), `judge` / `fusion`, or `round` (score = round).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

from wrpsim.errors import ConfigError, unknown_choice
from wrpsim.router.config import number, plain, served
from wrpsim.router.requestview import ground_truth
from wrpsim.router.selection import ModelRouter

NAN = math.nan
AGG = -1  # call index of an ensemble's aggregation call
AGGREGATES = ("fusion", "judge", "vote")


class Answer(NamedTuple):
    """What the user of a multi-call task gets."""

    quality: float | None  # correctness in [0, 1]; None where an outcome is unknown
    finish_s: float  # when the answer is complete (NaN: never answered)
    calls: int  # calls issued for it (aggregation call included)
    cost_usd: float  # Σ cost_usd of those calls' rows
    status: str  # answered | partial | failed | pending (| blocked | diverted: GuardedRouter)


def outcome(request, model: str) -> float | None:
    """`request`'s replayed correctness on `model` (None where unknown)."""
    o = ground_truth(request).outcomes
    y = o.get(model) if o else None
    return None if y is None else float(y)


def _pmf(ps) -> list[float]:
    """Distribution of the number of right answers among independent calls (Poisson binomial)."""
    pmf = [1.0]
    for p in ps:
        nxt = [0.0] * (len(pmf) + 1)
        for j, v in enumerate(pmf):
            nxt[j] += v * (1.0 - p)
            nxt[j + 1] += v * p
        pmf = nxt
    return pmf


def majority(ps) -> float:
    """P(a strict majority of the calls is right) + P(a tie whose first call is right)."""
    n = len(ps)
    if n == 0:
        raise ValueError("majority of no calls")
    q = sum(_pmf(ps)[n // 2 + 1:])
    if n % 2 == 0:
        q += ps[0] * _pmf(ps[1:])[n // 2 - 1]
    return min(1.0, q)


def judge_quality(ps, accuracy: float) -> float:
    """P(the judge picks a right candidate): all right 1, none 0, mixed `accuracy`."""
    p_all = math.prod(ps)
    p_none = math.prod(1.0 - p for p in ps)
    return p_all + accuracy * max(0.0, 1.0 - p_all - p_none)


def fusion_quality(ps, p_agg: float, accuracy: float) -> float:
    """P(the fused answer is right): the aggregator and the vote agree, or it reconciles."""
    m = majority(ps)
    both, neither = p_agg * m, (1.0 - p_agg) * (1.0 - m)
    return both + accuracy * max(0.0, 1.0 - both - neither)


def _cost(record: dict) -> float:
    c = record.get("cost_usd")
    return 0.0 if c is None or c != c else float(c)


def _now(view) -> float:
    return float(view.now)


@dataclass(eq=False)
class _Task:
    root: object  # the task's first call (its own request)
    calls: int = 0
    pending: int = 0
    cost: float = 0.0
    lost: int = 0
    results: dict = field(default_factory=dict)  # call index -> (outcome, finish_s, output)
    ys: list | None = None  # candidates' outcomes, once aggregated


class _MultiCall(ModelRouter):
    """Call registry and answer bookkeeping shared by ensembles and chains."""

    chooses_models = True

    def bind(self, fleet, rng):
        """Attach the run; empty registries."""
        super().bind(fleet, rng)
        self._calls: dict[int, tuple] = {}  # call id -> (task, index, model, label)
        self._open: dict[int, _Task] = {}
        self._answers: dict[int, Answer] = {}

    @property
    def answers(self) -> dict[int, Answer]:
        """Resolved answers, plus the tasks still open (status `pending`, unanswered)."""
        out = dict(self._answers)
        for rid, t in self._open.items():
            out[rid] = Answer(None, NAN, t.calls, t.cost, "pending")
        return out

    def _open_task(self, request) -> _Task:
        """Open the task whose first call is `request`; the task keeps the engine's request
        (the follow-up mechanics' answer length, the answer's replayed quality)."""
        task = _Task(ground_truth(request))
        self._open[request.id] = task
        return task

    def _register(self, task: _Task, req, index: int, model: str, label: str) -> None:
        self._calls[req.id] = (task, index, model, label)
        task.calls += 1
        task.pending += 1

    def _resolve(self, task: _Task, quality, finish: float, status: str) -> None:
        self._open.pop(task.root.id, None)
        if status == "failed":
            quality, finish = (0.0 if task.root.outcomes else None), NAN
        self._answers[task.root.id] = Answer(quality, finish, task.calls, task.cost, status)

    def start(self, request) -> tuple[str, str]:
        """Register a new task whose first call is `request`; (its model, label)."""
        raise NotImplementedError

    def select(self, request, view, category, complexity):
        """A new request starts a task; a registered call goes to the model it was made for."""
        info = self._calls.get(request.id)
        if info is None:
            model, label = self.start(request)
            return model, None, label, 0.0
        _, index, model, label = info
        return model, None, label, (NAN if index == AGG else float(index))

    def _ended(self, request, record):
        """(task, call index, model) of a call of a task that just ended, with its cost booked;
        None for a request that is not one of this router's calls."""
        info = self._calls.pop(request.id, None)
        if info is None:
            return None
        task, index, model, _ = info
        task.pending -= 1
        task.cost += _cost(record)
        return task, index, model

    def on_complete(self, request, record):
        """One call of a task completed."""
        if (call := self._ended(request, record)) is not None:
            self.completed(*call, request, record)

    def on_dropped(self, request, record):
        """One call of a task was lost."""
        if (call := self._ended(request, record)) is not None:
            call[0].lost += 1
            self.lost(*call, request, record)

    def completed(self, task, index, model, request, record) -> None:
        raise NotImplementedError

    def lost(self, task, index, model, request, record) -> None:
        raise NotImplementedError


class EnsembleRouter(_MultiCall):
    """k parallel calls, then vote, judge or fusion (see the module docstring)."""

    name = "ensemble"

    def __init__(self, models=None, model: str | None = None, k: int = 3,
                 aggregate: str = "vote", aggregator_model: str | None = None,
                 instruction_tokens: int = 0, aggregator_output_tokens: int | None = None,
                 judge_accuracy: float = 0.8, fusion_accuracy: float = 0.8, **common):
        super().__init__(**common)
        self.models = plain(models)
        self.model = model
        self.k = int(number("k", k, 1.0))
        if k != self.k:
            raise ConfigError(f"router.k must be an integer >= 1, got {k!r}")
        if aggregate not in AGGREGATES:
            raise unknown_choice("router.aggregate", aggregate, AGGREGATES)
        self.aggregate = aggregate
        self.aggregator_model = aggregator_model
        self.instruction_tokens = int(number("instruction_tokens", instruction_tokens, 0.0))
        self.agg_out = (None if aggregator_output_tokens is None else
                        int(number("aggregator_output_tokens", aggregator_output_tokens, 1.0)))
        self.judge_accuracy = number("judge_accuracy", judge_accuracy, 0.0, 1.0)
        self.fusion_accuracy = number("fusion_accuracy", fusion_accuracy, 0.0, 1.0)
        self.name = f"ensemble_{aggregate}"

    def bind(self, fleet, rng):
        """Resolve the candidates' and the aggregator's models against the fleet."""
        super().bind(fleet, rng)
        if self.models is not None:
            if self.model is not None:
                raise ConfigError("router: give models (a list) or model and k, not both")
            self._models = served("models", self.models, fleet)
        else:
            m = self.model if self.model is not None else self.book.by_cost(fleet.models)[0]
            served("model", [m], fleet)
            self._models = [m] * self.k
        if self.aggregate != "vote" and len(self._models) < 2:
            raise ConfigError(f"router: aggregate {self.aggregate} needs at least two calls "
                              f"(k or models), got {len(self._models)}")
        if self.aggregator_model is not None:
            served("aggregator_model", [self.aggregator_model], fleet)
        self._agg = self.aggregator_model or self.book.by_cost(fleet.models)[-1]

    def start(self, request):
        """Call 0 is the request itself; calls 1..k-1 are follow-ups submitted now."""
        task = self._open_task(request)
        self._register(task, request, 0, self._models[0], "call")
        extra = []
        for i, m in enumerate(self._models[1:], 1):
            f = self.fleet.follow_up(request, model=m)
            self._register(task, f, i, m, "call")
            extra.append(f)
        for f in extra:  # all registered first: a call may be dropped while it is submitted
            self.fleet.submit(f)
        return self._models[0], "call"

    def completed(self, task, index, model, request, record):
        if index == AGG:
            ys = task.ys
            if self.aggregate == "judge":
                q = None if None in ys else judge_quality(ys, self.judge_accuracy)
            else:
                y = outcome(request, model)
                q = (None if None in ys or y is None else
                     fusion_quality(ys, y, self.fusion_accuracy))
            self._resolve(task, q, record["finish_s"], "answered" if not task.lost else "partial")
            return
        task.results[index] = (outcome(request, model), record["finish_s"],
                               request.output_tokens)
        if task.pending == 0:
            self._combine(task)

    def lost(self, task, index, model, request, record):
        if index == AGG:
            self._resolve(task, None, NAN, "failed")
            return
        task.results[index] = None
        if task.pending == 0:
            self._combine(task)

    def _combine(self, task: _Task) -> None:
        done = [task.results[i] for i in sorted(task.results) if task.results[i] is not None]
        if not done:
            self._resolve(task, None, NAN, "failed")
            return
        ys = [y for y, _, _ in done]
        status = "partial" if task.lost else "answered"
        if self.aggregate == "vote" or len(done) == 1:
            finish = max(f for _, f, _ in done)
            if task.lost:
                finish = max(finish, _now(self.fleet))
            self._resolve(task, None if None in ys else majority(ys), finish, status)
            return
        task.ys = ys
        root = task.root
        prompt = root.prompt_tokens + sum(o for _, _, o in done) + self.instruction_tokens
        if self.agg_out is not None:
            out = self.agg_out
        else:
            out = 16 if self.aggregate == "judge" else root.output_tokens
        agg = self.fleet.follow_up(root, model=self._agg, prompt_tokens=prompt,
                                   output_tokens=out)
        self._register(task, agg, AGG, self._agg, self.aggregate)
        self.fleet.submit(agg)


class ChainRouter(_MultiCall):
    """Multi-round calls, each prompted with the previous prompt and answer."""

    name = "chain"

    def __init__(self, models=None, instruction_tokens: int = 0, **common):
        super().__init__(**common)
        self.models = plain(models)
        self.instruction_tokens = int(number("instruction_tokens", instruction_tokens, 0.0))

    def bind(self, fleet, rng):
        """Resolve the rounds' models (default: cheapest, then dearest)."""
        super().bind(fleet, rng)
        if self.models is not None:
            self._models = served("models", self.models, fleet)
        else:
            order = self.book.by_cost(fleet.models)
            self._models = [order[0], order[-1]]

    def start(self, request):
        """Round 0 is the request itself."""
        task = self._open_task(request)
        self._register(task, request, 0, self._models[0], "round")
        return self._models[0], "round"

    def completed(self, task, index, model, request, record):
        if index + 1 >= len(self._models):
            self._resolve(task, outcome(request, model), record["finish_s"], "answered")
            return
        nxt_model = self._models[index + 1]
        nxt = self.fleet.follow_up(
            request, model=nxt_model,
            prompt_tokens=request.prompt_tokens + request.output_tokens + self.instruction_tokens,
            output_tokens=task.root.output_tokens)
        self._register(task, nxt, index + 1, nxt_model, "round")
        self.fleet.submit(nxt)

    def lost(self, task, index, model, request, record):
        self._resolve(task, None, NAN, "failed")
