"""A request as a router sees it: everything but the ground truth.

A router decides before the answer exists, so it cannot know how long the answer will be or
whether a given model would get it right. `RequestView` wraps the engine's `Request` and
forwards every field (reads and writes: routers set `model`, compress `prompt_tokens`) except
the ground-truth ones in `HIDDEN`, whose reads raise `AttributeError`:

- `output_tokens`: the true answer length (a router predicts it: `wrpsim.router.lengths`);
- `outcomes`: the replayed per-model correctness (a router predicts it:
  `wrpsim.router.predict`).

Upper-bound studies read both through the oracle kinds of those predictors
(`output_predictor.kind: oracle`, `predictor.kind: oracle`: RouterBench's oracle router), which
run only under the labelled oracle view (`router.view.kind: oracle`); `summary.json` then names
what was read (`router_oracle`).

`ground_truth(request)` returns the wrapped `Request`. It is for the simulator's *models* of the
router's learned components, which need the truth to draw their configured error (the length
and quality predictors, the classifier), and for the mechanics of follow-up calls (the answer
length and quality a call's result will have). Policy code does not call it; a test
(`tests/test_router_view.py`) lists the modules that may.

After a request ends, `Router.on_complete` / `on_dropped` receive the engine's request and its
result row: what was observed is no longer hidden.
"""

from __future__ import annotations

HIDDEN = ("output_tokens", "outcomes")

#: router modules allowed to read the ground truth (predictor models, follow-up mechanics)
TRUTH_READERS = ("lengths", "predict", "multicall", "guard")


class HiddenField(AttributeError):
    """A router read a ground-truth field of the request (`HIDDEN`)."""


class RequestView:
    """The routed request without its ground-truth fields (see the module docstring)."""

    __slots__ = ("_req",)

    def __init__(self, req):
        object.__setattr__(self, "_req", req)

    @property
    def model(self):
        """The request's model (None: the fleet's default). Forwarded here, not by `__getattr__`,
        which runs only after a failed lookup (raising and clearing an `AttributeError`): the
        view reads it for every routing decision."""
        return self._req.model

    def __getattr__(self, name: str):
        if name in HIDDEN:
            raise HiddenField(
                f"a router cannot read request.{name}: it is ground truth the router does not "
                f"know when it decides (predict it: router.output_predictor / router.predictor)")
        return getattr(object.__getattribute__(self, "_req"), name)

    def __setattr__(self, name: str, value) -> None:
        setattr(object.__getattribute__(self, "_req"), name, value)

    def __repr__(self) -> str:
        r = object.__getattribute__(self, "_req")
        return f"RequestView(id={r.id}, prompt_tokens={r.prompt_tokens}, model={r.model!r})"


def ground_truth(request):
    """The engine's `Request` behind `request` (itself when it is not a view)."""
    if type(request) is RequestView:
        return object.__getattribute__(request, "_req")
    return request
