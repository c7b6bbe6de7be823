"""Checks on a user's router: its answers and its errors as one line naming it.

A router whose class is defined outside the `wrpsim` package (a user's catalog module,
`wrpsim.paths`) is held to the `Router` contract at run time: the dispatcher calls it through
`RouteChecker` (`wrpsim.dispatcher`), which

- turns an exception the router raises into one `ConfigError` line naming the router, the
  exception and the router's own file:line (for an attribute the view does not have, the valid
  fields; for a ground-truth field of the request, what to use instead);
- checks what `route` returns: None, or a `Placement` of an instance among
  `view.candidates(request)` (and a decode instance among `view.decode_candidates(request)`)
  with a finite `delay_s` >= 0; `route_decode`: None or an instance among the decode candidates;
- tells wrpsim's own "no candidate left" (every instance the request could use is down: the
  failure policy takes the request) from the router's own errors.

Before the run, `check_user_params` checks a user's router settings against the simple
annotations of its constructor (`int`, `float`, `bool`, `str`, optional ones).

The shipped routers are wrpsim's code, kept to the contract by its tests: they are called
directly, with nothing of this on the hot path (about 19,000 decisions in the default run).
"""

from __future__ import annotations

import math
import sys
import traceback
from pathlib import Path

from wrpsim.errors import ConfigError, WrpsimError, boolean, integer, number
from wrpsim.router.base import Placement
from wrpsim.router.requestview import HIDDEN, HiddenField, RequestView
from wrpsim.router.view import (
    INSTANCE_FIELDS,
    FleetView,
    FrozenCandidates,
    InstanceView,
    LoadNotRead,
)

_WRPSIM_DIR = str(Path(__file__).resolve().parents[1])
#: what a router may read of the `FleetView` (listed when it reads something else)
FLEET_FIELDS = ("candidates(request)", "decode_candidates(request)", "model_of(request)",
                "instances", "pools", "specs", "models", "default_model", "latency",
                "disaggregated", "max_tokens", "gpu_count", "now", "kind",
                "submit(request, delay_s=0.0)", "follow_up(parent, **changes)")
#: errors a shipped policy raises when it gets an empty candidate list (min, [0], % len)
NO_CANDIDATE = (ValueError, IndexError, ZeroDivisionError)


def is_user_router(router) -> bool:
    """True when the router's class is not defined in the `wrpsim` package."""
    return type(router).__module__.partition(".")[0] != "wrpsim"


def router_label(router) -> str:
    """`module.Class` of the router, as the user's `_target_` names it."""
    cls = type(router)
    return f"{cls.__module__}.{cls.__qualname__}"


def _where(router, exc: BaseException) -> str:
    """' (file:line)' of the innermost frame of `exc` in the router's own module (else the
    innermost outside wrpsim), or ''."""
    mod = sys.modules.get(type(router).__module__)
    own = getattr(mod, "__file__", None)
    own = str(Path(own).resolve()) if own else None
    frames = [(f, str(Path(f.filename).resolve()))
              for f in traceback.extract_tb(exc.__traceback__)]
    mine = [f for f, path in frames if path == own]
    # (a compiled module's frames name their file relative to the package's parent:
    # `wrpsim/router/base.py`, whatever the working directory)
    outside = [f for f, path in frames
               if not path.startswith(_WRPSIM_DIR) and not _compiled_frame(f.filename)]
    pick = (mine or outside or [None])[-1]
    return f" ({pick.filename}:{pick.lineno})" if pick else ""


def _compiled_frame(filename: str) -> bool:
    """True for the relative file name Cython gives the frames of wrpsim's compiled modules."""
    return filename.replace("\\", "/").startswith("wrpsim/")


def describe(router, exc: BaseException) -> str:
    """One line for an exception raised inside a user's router."""
    who, at = f"router {router_label(router)}", _where(router, exc)
    text = " ".join(str(exc).split())
    if isinstance(exc, (HiddenField, LoadNotRead)):
        return f"{who}: {text}{at}"
    if isinstance(exc, AttributeError) and exc.name is not None:
        obj = exc.obj
        if isinstance(obj, InstanceView):
            return (f"{who} read InstanceView.{exc.name}{at}, which the view does not have; an "
                    f"InstanceView has: {', '.join(INSTANCE_FIELDS)}")
        if isinstance(obj, FleetView):
            return (f"{who} read view.{exc.name}{at}, which the FleetView does not have; it "
                    f"has: {', '.join(FLEET_FIELDS)}")
        if type(obj).__name__ == "Request" and not isinstance(obj, RequestView):
            fields = [f for f in getattr(obj, "__dataclass_fields__", ()) if f not in HIDDEN]
            return (f"{who} read request.{exc.name}{at}, which a request does not have; a "
                    f"request has: {', '.join(fields)}")
        if isinstance(obj, FrozenCandidates):
            return (f"{who} called {exc.name} on view.candidates(request){at}, which is "
                    f"read-only (a tuple): copy it first, e.g. list(view.candidates(request))")
    return f"{who} raised {type(exc).__name__}: {text}{at}"


class RouteChecker:
    """Calls a user's router for the dispatcher and checks its answers (module docstring)."""

    def __init__(self, router, feed, fleet, failures):
        self.router, self.feed, self.fleet, self.failures = router, feed, fleet, failures
        self.who = f"router {router_label(router)}"

    def __call__(self, route, req):
        """What `Dispatcher._routed` returns: the checked answer, or False when no candidate
        is left because instances are down (the request went to the failure policy)."""
        decode = getattr(route, "__name__", "") == "route_decode"
        try:
            out = route(RequestView(req), self.feed.view)
        except WrpsimError:
            raise
        except Exception as e:
            if isinstance(e, NO_CANDIDATE) and self._none_left(req):
                self.failures.unavailable(req)
                return False
            raise ConfigError(describe(self.router, e)) from None
        if decode:
            if out is not None:
                self._member(out, req, self.feed.view._decode, "a decode instance",
                             "view.decode_candidates(request)", "route_decode returned")
            return out
        if out is None:
            return None
        if not isinstance(out, Placement):
            if isinstance(out, InstanceView):
                raise ConfigError(f"{self.who} returned an InstanceView ({out.name}); expected "
                                  f"a Placement (or None to drop): return Placement(instance)")
            raise ConfigError(f"{self.who} returned {type(out).__name__}; expected a Placement "
                              f"(or None to drop)")
        self._member(out.instance, req, self.feed.view._cands, "an instance",
                     "view.candidates(request)", "returned a Placement whose instance is")
        if out.decode_instance is not None:
            self._member(out.decode_instance, req, self.feed.view._decode,
                         "a decode instance", "view.decode_candidates(request)",
                         "returned a Placement whose decode_instance is")
        d = out.delay_s
        if (not isinstance(d, (int, float)) or isinstance(d, bool) or not math.isfinite(d)
                or d < 0):
            raise ConfigError(f"{self.who} returned a Placement with delay_s={d!r}; "
                              f"Placement.delay_s is the decision latency in seconds: a finite "
                              f"number >= 0")
        return out

    def _member(self, inst, req, lists: dict, what: str, where: str, returned: str) -> None:
        """`inst` must be a view instance among `lists[model of req]`; `returned`: how the
        message names the value ('route_decode returned', 'returned a Placement whose
        instance is', ...)."""
        model = self.fleet.model_of(req)
        if not isinstance(inst, InstanceView):
            raise ConfigError(f"{self.who} {returned} {type(inst).__name__} ({inst!r}); "
                              f"expected {what} among {where}")
        cands = lists.get(model)
        if cands is None:
            raise ConfigError(f"{self.who} set the request's model to {model!r}, which no pool "
                              f"serves; the fleet serves: {', '.join(self.fleet.models)}")
        if any(c is inst for c in cands):
            return
        if inst.model != model:
            raise ConfigError(f"{self.who} placed a {model} request on {inst.name} "
                              f"({inst.model}); a router returns {what} among {where}")
        if inst.down:
            raise ConfigError(f"{self.who} placed request {req.id} on {inst.name}, which is "
                              f"down; a router returns {what} among {where} (healthy ones)")
        raise ConfigError(f"{self.who} placed request {req.id} on {inst.name} (role "
                          f"{inst.role}), which is not among {where}; a router returns "
                          f"{what} among {where}")

    def _none_left(self, req) -> bool:
        """wrpsim's own no-candidate condition: instances are down and, for the request's
        model, a pool has none left up (the router may have been given an empty list)."""
        if self.failures is None or not self.fleet.down_count:
            return False
        model = self.fleet.model_of(req)
        pools = self.feed.view.pools
        return any(p and p[0].model == model and all(v.down for v in p) for p in pools.values())


def _simple_check(where: str, ann, value) -> None:
    """Check `value` against an `int`, `float`, `bool` or `str` annotation (or one of those or
    None); any other annotation is the router's own business."""
    import types
    import typing

    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        args = typing.get_args(ann)
        if type(None) in args and value is None:
            return
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            return
        ann = rest[0]
    if ann is bool:
        boolean(where, value)
    elif ann is int:
        integer(where, value)
    elif ann is float:
        number(where, value)
    elif ann is str and not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got {value!r}")


def check_user_params(rcfg: dict) -> None:
    """A user's router (a class outside wrpsim: the shipped ones validate their settings
    themselves): its settings against the simple annotations of its constructors (`int`,
    `float`, `bool`, `str`, optional ones), so that `router.d=two` for `d: int` is one line
    before the run, not a TypeError inside it."""
    import inspect
    import logging
    import typing

    from hydra.utils import get_class

    log = logging.getLogger("hydra.utils")  # get_class logs a failure before raising it
    quiet, log.disabled = log.disabled, True
    try:
        cls = get_class(rcfg["_target_"])
    except Exception:  # instantiate says what is wrong with the target, in one line
        return
    finally:
        log.disabled = quiet
    mro = getattr(cls, "__mro__", ())
    if all(k is object or k.__module__.partition(".")[0] == "wrpsim" for k in mro):
        return  # a shipped router: nothing below is checked (and `inspect.signature` of
        # `object.__init__` costs a few ms of the run's start-up)
    given = {k: v for k, v in rcfg.items() if k != "_target_"}
    for klass in mro:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = list(inspect.signature(init).parameters.values())[1:]
        if klass.__module__.partition(".")[0] != "wrpsim":
            try:
                hints = typing.get_type_hints(init)
            except Exception:  # an annotation that does not resolve: not checked
                hints = {}
            for p in params:
                if p.name in given and p.name in hints:
                    _simple_check(f"router.{p.name}", hints[p.name], given.pop(p.name))
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
