"""Guarded routing: a guard model screens every request before the inner policy routes it.

`GuardedRouter` sends each new request first to `guard_model` (default: the cheapest served
model; e.g. Llama-Guard-3-8B, which has Llama-3.1-8B's shape — `pools/guarded-*.yaml`) as a
real call: prompt = the request's prompt + `guard_instruction_tokens`, output =
`guard_output_tokens` (a verdict). That call is the request's own row. When it completes, the
guard's verdict on the category it reads (its own `classifier:` errors apply, drawn when the
guard call is routed) decides:

- category in `block` → **blocked**: no main call; the answer is the guard's refusal, finished
  when the guard call finishes, with quality `refusal_quality` (default 0: the user's question
  went unanswered; set 1 where refusing is the right answer, e.g. unsafe prompts);
- category in `divert`, or (when `domains` is given) not in `domains` — out of domain, an
  unknown category included → **diverted**: the main call goes to `divert_model` (default: the
  cheapest served model: a refusal / fallback model) with `divert_output_tokens` (default: the
  request's); quality = its replayed outcome, else `refusal_quality`;
- otherwise → **passed**: the main call is handed to the `inner` router, which places it (and
  may make follow-ups of its own: cascades, ensembles) exactly as it would a new request.

The main call is a follow-up of the guard call (`parent_id` = the request), arriving when the
guard call finishes, with the request's own prompt, output length and model; so the guard's
queueing and latency count in the answer's end-to-end time, measured from the original arrival
(`e2e_final_*`), and its GPU time and cost in the run's. `inner` is a router config (a mapping
with `_target_`), the name of a catalog entry (`routellm-threshold`), or null (least
outstanding instance of the request's model).

`verdicts` counts pass / block / divert / out_of_domain; `answers` (quality, finish, calls,
cost, status `blocked` / `diverted` / `failed`, merged with the inner router's own `answers`)
lets the metrics score blocked and diverted requests by the rules above. A request whose guard
call is lost is unanswered (status `failed`). In `routing.parquet` the guard call's decision
is `guard:<verdict>`, a diverted call's `divert`, a passed call's the inner router's (or
`pass` when the inner router keeps no side table).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping

from wrpsim.errors import ConfigError
from wrpsim.router.base import Router
from wrpsim.router.config import number, plain, routers_dirs, served
from wrpsim.router.multicall import Answer, _cost, outcome
from wrpsim.router.requestview import ground_truth
from wrpsim.router.selection import ModelRouter

NAN = math.nan
VERDICTS = ("pass", "block", "divert", "out_of_domain")


def build_inner(spec, field: str = "inner") -> Router:
    """A router from a config mapping (`_target_`), a catalog name, a Router, or None."""
    if isinstance(spec, Router):
        return spec
    spec = plain(spec)
    if spec is None:
        from wrpsim.router.policies import LeastOutstanding

        return LeastOutstanding()
    if isinstance(spec, str):
        folders = routers_dirs()  # the user's routers/ first (its YAML replaces a shipped one)
        path = next((f / f"{spec}.yaml" for f in folders if (f / f"{spec}.yaml").is_file()),
                    folders[-1] / f"{spec}.yaml")
        if not path.is_file():
            names = sorted({p.stem for f in folders for p in f.glob("*.yaml")})
            raise ConfigError(f"router.{field}: unknown router {spec!r}; valid choices: "
                              f"{', '.join(names)}")
        from omegaconf import OmegaConf

        spec = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    if not isinstance(spec, Mapping) or "_target_" not in spec:
        raise ConfigError(f"router.{field} must be a router config with a _target_, a catalog "
                          f"name or null, got {spec!r}")
    from wrpsim.router.build import build_router

    try:
        return build_router(dict(spec))
    except ConfigError as e:
        raise ConfigError(f"router.{field}: {e}") from None


def _categories(field: str, value) -> set[str]:
    value = plain(value)
    if value is None:
        return set()
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"router.{field} must be a list of categories, got {value!r}")
    return {str(c) for c in value}


class GuardedRouter(ModelRouter):
    """A guard call first; block, divert or hand on to the inner router (module docstring)."""

    name = "guarded"

    def __init__(self, inner=None, guard_model: str | None = None, guard_output_tokens: int = 8,
                 guard_instruction_tokens: int = 0, block=None, divert=None, domains=None,
                 divert_model: str | None = None, divert_output_tokens: int | None = None,
                 refusal_quality: float = 0.0, **common):
        super().__init__(**common)
        self.inner = build_inner(inner)
        self.guard_model, self.divert_model = guard_model, divert_model
        self.guard_out = int(number("guard_output_tokens", guard_output_tokens, 1.0))
        self.guard_instr = int(number("guard_instruction_tokens", guard_instruction_tokens, 0.0))
        self.block = _categories("block", block)
        self.divert = _categories("divert", divert)
        both = sorted(self.block & self.divert)
        if both:
            raise ConfigError(f"router.block and router.divert both list {both}")
        self.domains = None if plain(domains) is None else _categories("domains", domains)
        self.divert_out = (None if divert_output_tokens is None else
                           int(number("divert_output_tokens", divert_output_tokens, 1.0)))
        self.refusal = number("refusal_quality", refusal_quality, 0.0, 1.0)

    def named_categories(self) -> dict:
        """`block`, `divert` and `domains` (`Router.named_categories`)."""
        out = {"block": self.block, "divert": self.divert}
        if self.domains is not None:
            out["domains"] = self.domains
        return out

    def bind(self, fleet, rng):
        """Resolve the guard and divert models; bind the inner router on its own stream."""
        super().bind(fleet, rng)
        cheapest = self.book.by_cost(fleet.models)[0]
        for field, m in (("guard_model", self.guard_model), ("divert_model", self.divert_model)):
            if m is not None:
                served(field, [m], fleet)
        self._guard_m = self.guard_model or cheapest
        self._divert_m = self.divert_model or cheapest
        try:
            self.inner.bind(fleet, rng.spawn(1)[0])
        except ConfigError as e:
            raise ConfigError(f"router.inner: {e}") from None
        self._log_pass = not (isinstance(self.inner, ModelRouter) and self.inner.record)
        if isinstance(self.inner, ModelRouter):
            self.inner.decisions = self.decisions  # one side table for both
        self._forward_done = type(self.inner).on_complete is not Router.on_complete
        self._forward_lost = type(self.inner).on_dropped is not Router.on_dropped
        self._guard: dict[int, tuple] = {}  # guard call id -> (verdict, model, prompt, output)
        self._main: dict[int, tuple] = {}  # main call id -> (verdict, root id, cost so far)
        self._answers: dict[int, Answer] = {}
        self.verdicts: Counter = Counter()

    @property
    def answers(self) -> dict:
        """The inner router's answers (if any) and the guard's own (blocked, diverted)."""
        inner = getattr(self.inner, "answers", None)
        return {**(inner or {}), **self._answers}

    @property
    def judged_quality(self) -> dict | None:
        """The inner router's verdict-told answer qualities (a cascade's), if it keeps any."""
        return getattr(self.inner, "judged_quality", None)

    def summary_figures(self) -> dict:
        """The inner router's own figures (a cascade's verifier rates and counts)."""
        return self.inner.summary_figures()

    def verdict(self, category) -> str:
        """pass, block, divert or out_of_domain for the category the guard reads."""
        if category in self.block:
            return "block"
        if category in self.divert:
            return "divert"
        if self.domains is not None and category not in self.domains:
            return "out_of_domain"
        return "pass"

    def route(self, request, view):
        """Guard calls and diverted calls here; passed calls and their follow-ups inner."""
        main = self._main.get(request.id)
        if (main is None and request.parent_id is None) or (main is not None
                                                            and main[0] != "pass"):
            return super().route(request, view)
        if main is not None and request.model is None:
            request.model = view.model_of(request)  # the row names the model that answered
        placement = self.inner.route(request, view)
        if placement is not None and self._log_pass and self.record:
            self.decisions.append((request.id, request.parent_id, self.name, "pass",
                                   view.model_of(request), placement.instance.pool, NAN,
                                   request.category, request.prompt_tokens,
                                   placement.delay_s))
        return placement

    def select(self, request, view, category, complexity):
        """The guard model for a new request (its verdict drawn now), else the divert model."""
        if request.id in self._main:
            return self._divert_m, None, "divert", NAN
        g = self._guard.get(request.id)
        if g is None:  # a new request: it becomes the guard call
            v = self.verdict(category)
            self.verdicts[v] += 1
            self._guard[request.id] = g = (v, request.model, request.prompt_tokens,
                                           ground_truth(request).output_tokens)
            request.prompt_tokens += self.guard_instr
            request.output_tokens = self.guard_out
        return self._guard_m, None, "guard:" + g[0], NAN

    def on_complete(self, request, record):
        """Guard done: block, or submit the main call; main done: record a diverted answer."""
        g = self._guard.pop(request.id, None)
        if g is not None:
            v, model, prompt, out = g
            cost = _cost(record)
            if v == "block":
                q = self.refusal if request.outcomes else None
                self._answers[request.id] = Answer(q, record["finish_s"], 1, cost, "blocked")
                return
            if v == "pass":
                main = self.fleet.follow_up(request, model=model, prompt_tokens=prompt,
                                            output_tokens=out)
            else:
                main = self.fleet.follow_up(request, model=self._divert_m, prompt_tokens=prompt,
                                            output_tokens=self.divert_out or out)
            self._main[main.id] = (v, request.id, cost)
            self.fleet.submit(main)
            return
        m = self._main.pop(request.id, None)
        if m is None or m[0] == "pass":
            if self._forward_done:
                self.inner.on_complete(request, record)
            return
        y = outcome(request, self._divert_m)
        q = y if y is not None else (self.refusal if request.outcomes else None)
        self._answers[m[1]] = Answer(q, record["finish_s"], 2, m[2] + _cost(record), "diverted")

    def on_dropped(self, request, record):
        """A lost guard or main call leaves the request unanswered."""
        g = self._guard.pop(request.id, None)
        if g is not None:
            q = 0.0 if request.outcomes else None
            self._answers[request.id] = Answer(q, NAN, 1, _cost(record), "failed")
            return
        m = self._main.pop(request.id, None)
        if m is not None:
            q = 0.0 if request.outcomes else None
            self._answers[m[1]] = Answer(q, NAN, 2, m[2] + _cost(record), "failed")
            if m[0] != "pass":
                return
        if self._forward_lost:
            self.inner.on_dropped(request, record)
