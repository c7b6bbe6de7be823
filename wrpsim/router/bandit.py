"""Online model selection with multi-armed bandits (ε-greedy, UCB1, Thompson sampling).

The arms are the router's `models`. When a request completes, its arm earns a reward in [0, 1]
that mixes answer quality, cost and energy per token in the manner of GreenServ:

    r = w_q · y + w_c · (1 − ĉ / ĉ_max) + w_e · (1 − ê / ê_max)

with y the answer's correctness (the request's replayed `outcomes`; a Bernoulli draw at the
predictor's prior accuracy where unknown) and weights `reward: {quality, cost, energy}`
normalised to sum to 1. ĉ and ê are the request's cost and energy per token:

- `reward_from: measured` (default): what the simulation measured for this request — its
  `cost_usd` and `energy_j` (the GPU time, energy and price attributed to it, iteration by
  iteration, `wrpsim.metrics.records`) over its prompt + output tokens; ĉ_max and ê_max are the
  largest per-arm running means of those measurements (this one included), so the dearest
  arm's answers earn 0 on that term on average (an answer dearer than its arm's mean earns less,
  the reward is clipped to [0, 1]) and a batch that made an answer cheap is rewarded;
- `reward_from: book`: the price book's estimate for this request's tokens on the arm
  (`wrpsim.router.pricing`), normalised by the dearest arm's estimate — static figures that do
  not see load, batching or the GPU the arm runs on.

Feedback arrives when a request completes, so decisions taken meanwhile use the estimates of
the moment.

Policies (`policy:`): `epsilon_greedy` (a random arm with probability ε·decay^n, else the best
mean; `epsilon`, `decay`), `ucb1` (every arm once, then the best mean + sqrt(2 ln n / n_a)),
`thompson` (Beta(1 + successes, 1 + failures) per arm, with the reward turned into a
Bernoulli success by one draw — Agrawal & Goyal's trick for rewards in [0, 1]). With
`per_category: true` each category the classifier sees keeps its own statistics (a contextual
bandit on one discrete feature). All draws come from the router's stream.
"""

from __future__ import annotations

import math

from wrpsim.errors import ConfigError, boolean, check_keys, unknown_choice
from wrpsim.router.config import number, plain, served
from wrpsim.router.predict import QualityPredictor
from wrpsim.router.selection import ModelRouter

POLICIES = ("epsilon_greedy", "thompson", "ucb1")
REWARD_KEYS = ("quality", "cost", "energy")
REWARD_FROM = ("measured", "book")


class _Arms:
    """Per-arm counts, reward sums and Bernoulli successes of one context."""

    __slots__ = ("n", "s", "wins")

    def __init__(self, k: int):
        self.n = [0] * k
        self.s = [0.0] * k
        self.wins = [0] * k


class BanditRouter(ModelRouter):
    """Choose the model by a bandit over rewards mixing quality, cost and energy."""

    chooses_models = True

    name = "bandit"

    def __init__(self, policy: str = "ucb1", models=None, epsilon: float = 0.1,
                 decay: float = 1.0, reward=None, per_category: bool = False,
                 predictor=None, reward_from: str = "measured", **common):
        super().__init__(**common)
        if policy not in POLICIES:
            raise unknown_choice("router.policy", policy, POLICIES)
        self.policy = policy
        self.name = f"bandit_{policy}"
        self.models = models
        self.epsilon = number("epsilon", epsilon, 0.0, 1.0)
        self.decay = number("decay", decay, 0.0, 1.0)
        w = plain(reward) or {"quality": 1.0}
        check_keys(w, REWARD_KEYS, "router.reward")
        ws = [number(f"reward.{k}", w.get(k, 0.0), 0.0) for k in REWARD_KEYS]
        if sum(ws) <= 0:
            raise ConfigError("router.reward: the weights must not all be 0")
        self.w_q, self.w_c, self.w_e = (x / sum(ws) for x in ws)
        self.per_category = boolean("router.per_category", per_category)
        self.predictor = QualityPredictor(predictor)
        if reward_from not in REWARD_FROM:
            raise unknown_choice("router.reward_from", reward_from, REWARD_FROM)
        self.reward_from = reward_from

    def bind(self, fleet, rng):
        """Fresh statistics for every arm."""
        super().bind(fleet, rng)
        self._arms = served("models", self.models, fleet)
        self._index = {m: i for i, m in enumerate(self._arms)}
        self._prices = [self.book.models[m] for m in self._arms]
        self._ctx: dict[object, _Arms] = {}
        self._seen: dict[int, object] = {}
        self.pulls = [0] * len(self._arms)
        k = len(self._arms)
        #: per arm: [answers measured, Σ cost per token, Σ energy per token] (reward_from measured)
        self._measured = [[0, 0.0, 0.0] for _ in range(k)]

    def _stats(self, key) -> _Arms:
        st = self._ctx.get(key)
        if st is None:
            st = self._ctx[key] = _Arms(len(self._arms))
        return st

    def _choose(self, st: _Arms) -> int:
        k, n = len(st.n), sum(st.n)
        means = [st.s[i] / st.n[i] if st.n[i] else 0.0 for i in range(k)]
        if self.policy == "epsilon_greedy":
            if self.rng.random() < self.epsilon * self.decay ** n:
                return int(self.rng.integers(k))
            return max(range(k), key=lambda i: (st.n[i] > 0 or n == 0, means[i], -i))
        if self.policy == "ucb1":
            for i in range(k):
                if st.n[i] == 0:
                    return i
            return max(range(k), key=lambda i: means[i] + math.sqrt(2 * math.log(n) / st.n[i]))
        draws = [self.rng.beta(1 + st.wins[i], 1 + st.n[i] - st.wins[i]) for i in range(k)]
        return max(range(k), key=lambda i: draws[i])

    def select(self, request, view, category, complexity):
        """The arm the policy picks in the request's context."""
        key = category if self.per_category else None
        i = self._choose(self._stats(key))
        self._seen[request.id] = key
        self.pulls[i] += 1
        return self._arms[i], None, self._arms[i], float(i)

    def reward(self, request, model: str, record: dict | None = None) -> float:
        """The reward of `model`'s answer to `request`, from its result row `record` when the
        reward is measured (see the module docstring)."""
        y = request.outcomes.get(model) if request.outcomes else None
        if y is None:
            y = self.predictor.prior(model, request.category)
        y = 1.0 if self.rng.random() < y else 0.0
        r = self.w_q * y
        if not (self.w_c or self.w_e):
            return r
        i = self._index[model]
        if self.reward_from == "measured" and record is not None:
            tokens = max(1, request.prompt_tokens + request.output_tokens)
            c = _finite(record.get("cost_usd")) / tokens
            e = _finite(record.get("energy_j")) / tokens
            m = self._measured[i]
            m[0] += 1
            m[1] += c
            m[2] += e
            seen = [a for a in self._measured if a[0]]
            c_max = max(a[1] / a[0] for a in seen)
            e_max = max(a[2] / a[0] for a in seen)
            if self.w_c and c_max > 0:
                r += self.w_c * (1.0 - c / c_max)
            if self.w_e and e_max > 0:
                r += self.w_e * (1.0 - e / e_max)
            return min(1.0, max(0.0, r))
        p, o = request.prompt_tokens, request.output_tokens
        if self.w_c:
            costs = [tp.cost(p, o) for tp in self._prices]
            r += self.w_c * (1.0 - costs[i] / max(costs))
        if self.w_e:
            js = [tp.energy(p, o) for tp in self._prices]
            r += self.w_e * (1.0 - js[i] / max(js))
        return r

    def on_complete(self, request, record):
        """Credit the arm that answered."""
        key = self._seen.pop(request.id, None)
        i = self._index.get(request.model)
        if i is None:
            return
        st = self._stats(key)
        r = self.reward(request, request.model, record)
        st.n[i] += 1
        st.s[i] += r
        st.wins[i] += 1 if self.rng.random() < r else 0


def _finite(x) -> float:
    """`x` as a float, 0 when missing or NaN."""
    return float(x) if x is not None and x == x else 0.0
