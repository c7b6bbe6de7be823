"""Multi-round routing after Router-R1: per round, pick a model or stop, under a budget.

Router-R1 (Zhang et al., 2025) routes one question through several rounds: after each answer a
router decides whether to call another model (which one) or to stop and answer. `RoundRouter`
plays that loop on the fleet; every round is a real call (the multi-call machinery of
`wrpsim.router.multicall`: its own row in `requests.parquet`, `parent_id` the previous round,
its own queueing, GPU time, energy and `cost_usd`).

**What the policy knows.** Before round 0, for each candidate model m (`models`, default every
served model) the predictor's q̂(m) (`predictor:`; `kind: learned` — fitted on a training split
from the category the router sees and the prompt length — for a router that never reads the
outcomes) and the price book's estimated cost ĉ(m) at the prompt length and the *predicted*
output length (`output_predictor:`), as `UtilityRouter` sees them; these q̂ are the estimates of
every round. After round r completes, the verifier (`verifier:`, `wrpsim.router.verifier`,
default `kind: confidence`) judges its answer as one to the task's own question (the category
the router saw for it, its prompt length): confidence c_r, accepted iff c_r ≥
`verifier.threshold`. The round's tokens are then known, so the next call's cost is exact on the
price book: prompt = round r's prompt + its output + `instruction_tokens`, output = the task's
answer length (every round answers the same question; the chain's rule).

**The loop.** Round 0 is the model of highest q̂(m) − λ·ĉ₁ₖ(m) (ĉ₁ₖ: USD per 1,000 such requests;
`lam` = λ; first listed on ties): the single-model choice of `UtilityRouter` with the same
predictors, made whatever the budget (every task is answered once). After round r it stops when

1. `max_rounds` rounds are done (stop `rounds`); or
2. every candidate has been asked (stop `models`), or none not yet asked fits the budget — Σ
   price-book cost of the rounds so far + the next call's ≤ `budget_usd` (null: no cost cap)
   (stop `budget`); or
3. the verifier accepts an answer (stop `accepted`); or
4. no affordable candidate m has an expected gain worth its price: gain(m) = q̂(m) − c_best (c_best
   the best confidence so far), net(m) = gain(m) − λ·ĉ₁ₖ(m) ≤ `min_gain` (stop `no_gain`);

else it calls the affordable candidate of highest net(m). A model already asked is not asked
again: its replayed answer would be the same (one outcome per (prompt, model), as at
temperature 0). The verifier is not consulted where nothing is left to decide (one answer and a
stop by 1 or 2). **The answer** is the best-judged one (highest confidence, the later on ties;
the only one when a single round ran): its quality is that model's replayed outcome (an
expected accuracy judged by an oracle-rates verifier: its posterior given the verdict,
`Verifier.posterior_of`), it finishes
when the last round finishes; a lost round fails the task (as a chain). Its cost never exceeds
max(`budget_usd`, round 0's cost) on the price book (`token_cost_per_1k_requests_usd`'s axis).

`stops` counts the stops by reason, `rounds` the tasks by rounds run; `summary_figures` puts them
and the verifier's measured error rates into `summary.json`. All draws come from the router's
stream (the predictors' at round 0, the verifier's per judgement).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from wrpsim.errors import ConfigError
from wrpsim.router.config import number, plain, served
from wrpsim.router.lengths import OutputPredictor
from wrpsim.router.multicall import NAN, _MultiCall, outcome
from wrpsim.router.predict import QualityPredictor
from wrpsim.router.verifier import Verifier

STOPS = ("accepted", "budget", "models", "no_gain", "rounds")


@dataclass(eq=False)
class _State:
    """One task's rounds: the router's estimates, what it spent and what it judged."""

    category: object  # the category the router saw
    q: dict  # model -> q̂ (pre-call estimates)
    asked: list = field(default_factory=list)  # models asked, in round order
    spent: float = 0.0  # Σ price-book cost of the completed rounds (USD)
    best: tuple | None = None  # (confidence, round, model) of the best-judged answer


class RoundRouter(_MultiCall):
    """Router-R1-style rounds: pick a model or stop, under a budget (see the module docstring)."""

    name = "router_r1"

    def __init__(self, models=None, max_rounds: int = 3, budget_usd: float | None = None,
                 lam: float = 0.0, min_gain: float = 0.0, instruction_tokens: int = 0,
                 predictor=None, output_predictor=None, verifier=None, **common):
        super().__init__(**common)
        self.models = plain(models)
        self.max_rounds = int(number("max_rounds", max_rounds, 1.0))
        if max_rounds != self.max_rounds:
            raise ConfigError(f"router.max_rounds must be an integer >= 1, got {max_rounds!r}")
        self.budget = None if budget_usd is None else number("budget_usd", budget_usd, 0.0)
        self.lam = number("lam", lam, 0.0)
        self.min_gain = number("min_gain", min_gain, 0.0)
        self.instruction_tokens = int(number("instruction_tokens", instruction_tokens, 0.0))
        self.predictor = QualityPredictor(predictor)
        self.lengths = OutputPredictor(output_predictor)
        self.verifier = Verifier(verifier, plain(predictor), default_kind="confidence")

    def bind(self, fleet, rng):
        """Resolve the candidate models; fresh counts."""
        super().bind(fleet, rng)
        self.verifier.check(fleet)
        self._models = served("models", self.models, fleet)
        self._state: dict[int, _State] = {}  # root id -> its rounds
        self.stops = dict.fromkeys(STOPS, 0)
        self.rounds: dict[int, int] = {}  # rounds run -> tasks

    def select(self, request, view, category, complexity):
        """A new request is round 0 of a new task; a registered round goes to its model."""
        if request.id in self._calls:
            return super().select(request, view, category, complexity)
        out = self.lengths.predict(request, category, self.rng)
        p, q, best, best_u = request.prompt_tokens, {}, None, None
        for m in self._models:
            q[m] = self.predictor.predict(request, m, category, self.rng)
            u = q[m] - self.lam * 1000.0 * self.book.cost(m, p, out)
            if best_u is None or u > best_u:
                best, best_u = m, u
        task = self._open_task(request)
        self._state[request.id] = _State(category, q, [best])
        self._register(task, request, 0, best, "round")
        return best, None, "round", 0.0

    def _finish(self, task, st: _State, reason: str, finish: float) -> None:
        self._state.pop(task.root.id, None)
        self.stops[reason] += 1
        n = len(st.asked)
        self.rounds[n] = self.rounds.get(n, 0) + 1
        model = st.asked[-1] if st.best is None else st.best[2]
        told = self._forget_verdicts(task, st).get(model)
        self._resolve(task, outcome(task.root, model) if told is None else told, finish,
                      "answered")

    def _forget_verdicts(self, task, st: _State) -> dict:
        """{model: its answer's posterior or None} of the task's judged rounds, dropped from
        the verifier (a resolved task needs them no more)."""
        return {m: self.verifier.forget(task.root, m) for m in st.asked}

    def completed(self, task, index, model, request, record):
        """Round `index` answered: judge it where a decision remains; stop or call the next."""
        st = self._state[task.root.id]
        st.spent += self.book.cost(model, request.prompt_tokens, request.output_tokens)
        finish = record["finish_s"]
        prompt = request.prompt_tokens + request.output_tokens + self.instruction_tokens
        out = request.output_tokens  # every round answers at the task's length
        room = math.inf if self.budget is None else self.budget - st.spent
        left = [m for m in self._models if m not in st.asked]
        cands = [(m, c) for m in left
                 if (c := self.book.cost(m, prompt, out)) <= room * (1 + 1e-12)]
        last = index + 1 >= self.max_rounds
        over = "rounds" if last else ("models" if not left else "budget")
        if (last or not cands) and index == 0:  # one answer, nothing to decide
            self._finish(task, st, over, finish)
            return
        # judged as an answer to the task's question: its category seen, its own prompt
        accepted, conf = self.verifier.judge(task.root, model, st.category, self.rng)
        if conf != conf:  # oracle-rates: no confidence, the verdict only
            conf = 1.0 if accepted else 0.0
        if st.best is None or conf >= st.best[0]:
            st.best = (conf, index, model)
        if last or not cands or accepted:
            self._finish(task, st, over if last or not cands else "accepted", finish)
            return
        pick, pick_net = None, None
        for m, c in cands:
            net = st.q[m] - st.best[0] - self.lam * 1000.0 * c
            if pick_net is None or net > pick_net:
                pick, pick_net = m, net
        if pick_net <= self.min_gain:
            self._finish(task, st, "no_gain", finish)
            return
        st.asked.append(pick)
        nxt = self.fleet.follow_up(request, model=pick, prompt_tokens=prompt, output_tokens=out)
        self._register(task, nxt, index + 1, pick, "round")
        self.fleet.submit(nxt, self.verifier.latency_s)

    def lost(self, task, index, model, request, record):
        """A lost round fails the task."""
        st = self._state.pop(task.root.id, None)
        if st is not None:
            self._forget_verdicts(task, st)
        self._resolve(task, None, NAN, "failed")

    def summary_figures(self) -> dict:
        """Stops by reason, tasks by rounds run and the verifier's measured figures."""
        n = sum(self.rounds.values())
        return {**self.verifier.figures(), "rounds_stops": dict(self.stops),
                "rounds_per_task": {str(k): v for k, v in sorted(self.rounds.items())},
                "rounds_mean": (sum(k * v for k, v in self.rounds.items()) / n) if n else None}
