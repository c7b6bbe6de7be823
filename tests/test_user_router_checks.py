"""A user's router (a class outside the wrpsim package) held to the Router contract: each breach
— a wrong instance, a wrong return type, an exception of its own, a write to the view, a stale
load field read with reads_load = False, a bad delay — is one ConfigError line naming the
router, never a traceback from inside wrpsim, never silently accepted (`wrpsim.router.checked`).
The routers are those of a reviewer's example catalog."""

from __future__ import annotations

import math
import re

import pytest
from conftest import constant_cfg, make_trace

from wrpsim.errors import ConfigError
from wrpsim.router import ModelRouter, Placement, Router
from wrpsim.sim import Simulation

HERE = re.escape(__name__)


class WrongModel(Router):
    def route(self, request, view):
        m = view.model_of(request)
        return Placement(next(i for i in view.instances if i.model != m))


class ReturnsInt(Router):
    def route(self, request, view):
        return 99


class ReturnsInstance(Router):
    def route(self, request, view):
        return view.candidates(request)[0]


class PlacementInt(Router):
    def route(self, request, view):
        return Placement(99)


class Raises(Router):
    def route(self, request, view):
        raise ValueError("boom in my router")


class BadAttr(Router):
    def route(self, request, view):
        return Placement(min(view.candidates(request), key=lambda i: i.queue_length))


class MutatesInstance(Router):
    def route(self, request, view):
        c = view.candidates(request)
        c[0].down = True
        return Placement(c[0])


class PopsCandidates(Router):
    def route(self, request, view):
        c = view.candidates(request)
        c.pop()
        return Placement(c[0])


class Delayed(Router):
    def __init__(self, delay: float = 0.1):
        self.delay = delay

    def route(self, request, view):
        return Placement(view.candidates(request)[0], delay_s=self.delay)


class LyingNoLoad(Router):
    reads_load = False

    def route(self, request, view):
        c = view.candidates(request)
        return Placement(min(c, key=lambda i: (i.kv_used_frac, i.num_running)))


class HonestNoLoad(Router):
    reads_load = False

    def route(self, request, view):
        c = view.candidates(request)
        return Placement(c[request.id % len(c)])


class MinOutstanding(Router):
    """Fails on an empty candidate list as many simple policies do (min of nothing)."""

    def route(self, request, view):
        return Placement(min(view.candidates(request), key=lambda i: i.outstanding))


class FailsWhileUp(Router):
    """Raises a ValueError of its own although candidates are left."""

    def route(self, request, view):
        if view.now > 1.0:
            raise ValueError("my own bug")
        return Placement(view.candidates(request)[0])


class ChoosesNothing(Router):
    """Implements neither `choose` nor `route`: the error is raised inside wrpsim's `Router`."""


class UnservedTarget(ModelRouter):
    def select(self, request, view, category, complexity):
        return ("gpt4-class", None, "forced", 0.0)


def _two_models(router: str, **kw) -> dict:
    cfg = constant_cfg(count=2)
    small = cfg["pool"]["pools"]["p"]
    big = {**small, "model": "llama3.1-70b", "tp": 4}
    cfg["pool"]["pools"] = {"small": small, "big": big}
    cfg["router"] = {"_target_": f"{__name__}.{router}", **kw}
    return cfg


TRACE = make_trace([0.0, 0.1, 0.2, 0.3], [10] * 4, [3] * 4,
                   model=["llama3.1-8b", "llama3.1-70b", "llama3.1-8b", "llama3.1-70b"])


def _error(router: str, **kw) -> str:
    with pytest.raises(ConfigError) as e:
        Simulation(_two_models(router, **kw), TRACE).run()
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_a_placement_on_another_models_instance_is_an_error():
    assert re.fullmatch(rf"router {HERE}\.WrongModel placed a llama3\.1-8b request on big/0 "
                        r"\(llama3\.1-70b\); a router returns an instance among "
                        r"view\.candidates\(request\)", _error("WrongModel"))


@pytest.mark.parametrize(("router", "says"), [
    ("ReturnsInt", "returned int; expected a Placement (or None to drop)"),
    ("ReturnsInstance", "returned an InstanceView (small/0); expected a Placement (or None to "
                        "drop): return Placement(instance)"),
    ("PlacementInt", "returned a Placement whose instance is int (99); expected an instance "
                     "among view.candidates(request)"),
])
def test_a_wrong_return_type_names_the_router_and_what_is_expected(router, says):
    assert _error(router) == f"router {__name__}.{router} {says}"


def test_an_exception_in_the_router_is_one_line_with_its_own_file_and_line():
    msg = _error("Raises")
    assert re.fullmatch(rf"router {HERE}\.Raises raised ValueError: boom in my router "
                        rf"\(.*test_user_router_checks\.py:\d+\)", msg)
    line = int(msg.rsplit(":", 1)[1].rstrip(")"))
    assert "boom in my router" in open(__file__).read().splitlines()[line - 1]


def test_an_error_raised_inside_wrpsims_code_is_not_placed_there(tmp_path, monkeypatch):
    """No frame of the router's own module, none outside wrpsim: no location, also from another
    working directory (compiled, wrpsim's frames carry relative names like
    `wrpsim/router/base.py`, which no longer resolve inside the package from there)."""
    monkeypatch.chdir(tmp_path)
    msg = _error("ChoosesNothing")
    assert msg.endswith("implements neither choose nor route"), msg


def test_an_unknown_view_field_lists_the_valid_ones():
    msg = _error("BadAttr")
    assert re.match(rf"router {HERE}\.BadAttr read InstanceView\.queue_length \(.*\.py:\d+\), "
                    r"which the view does not have; an InstanceView has: name, pool, ", msg)
    assert "outstanding, num_waiting" in msg and "prefix_match(request)" in msg


def test_the_view_is_read_only_to_a_users_router():
    assert "InstanceView.down is read-only" in _error("MutatesInstance")
    assert re.search(r"called pop on view\.candidates\(request\).*read-only \(a tuple\)",
                     _error("PopsCandidates"))


@pytest.mark.parametrize("delay", [-5.0, math.nan, math.inf])
def test_a_negative_or_nan_delay_is_an_error(delay):
    assert re.fullmatch(rf"router {HERE}\.Delayed returned a Placement with delay_s=\S+; "
                        r"Placement\.delay_s is the decision latency in seconds: a finite "
                        r"number >= 0", _error("Delayed", delay=delay))


def test_a_valid_delay_is_kept():
    req = Simulation(_two_models("Delayed", delay=0.25), TRACE).run()[0].to_pandas()
    assert (req.status == "completed").all() and req.route_s.tolist() == [0.25] * 4


def test_reads_load_false_makes_the_load_fields_unavailable():
    msg = _error("LyingNoLoad")
    assert re.fullmatch(rf"router {HERE}\.LyingNoLoad: InstanceView\.kv_used_frac is "
                        r"unavailable to a router with reads_load = False .*set reads_load = "
                        r"True in the router's class body \(.*\.py:\d+\)", msg)
    req = Simulation(_two_models("HonestNoLoad"), TRACE).run()[0].to_pandas()
    assert (req.status == "completed").all()


def test_a_model_router_selecting_an_unserved_model_is_one_line():
    msg = _error("UnservedTarget")
    assert "gpt4-class" in msg and "llama3.1-70b, llama3.1-8b" in msg, msg
    assert msg.startswith(f"router {__name__}.UnservedTarget")


def _outage(router: str) -> tuple:
    cfg = constant_cfg(count=1, step_s=0.1)
    cfg["router"] = {"_target_": f"{__name__}.{router}"}
    cfg["failures"] = {"policy": "drop",
                       "events": [{"pool": "p", "instance": 0, "at_s": 0.5, "down_s": 2.0}]}
    return cfg, make_trace([0.0, 1.0, 3.0], [10] * 3, [2] * 3)


def test_no_candidate_left_goes_to_the_failure_policy():
    """wrpsim's own no-candidate condition (every instance down): the failure policy."""
    rows = Simulation(*_outage("MinOutstanding")).run()[0].to_pylist()
    assert [r["drop_reason"] for r in rows] == [None, "no_healthy_instance", None]


def test_a_routers_own_error_while_an_instance_is_down_is_not_no_candidate():
    cfg, trace = _outage("FailsWhileUp")
    cfg["pool"]["pools"]["p"]["count"] = 2  # one instance stays up
    with pytest.raises(ConfigError, match=r"FailsWhileUp raised ValueError: my own bug"):
        Simulation(cfg, trace).run()


class Typed(Router):
    def __init__(self, d: int = 2, name: str | None = None, on: bool = False):
        self.d = d

    def route(self, request, view):
        return Placement(view.candidates(request)[: self.d][-1])


@pytest.mark.parametrize(("router", "key", "value", "says"), [
    ("Typed", "d", "two", "router.d must be an integer, got 'two'"),
    ("Typed", "d", 2.5, "router.d must be an integer, got 2.5"),
    ("Typed", "name", 3, "router.name must be a string, got 3"),
    ("Typed", "on", "yes", "router.on must be true or false, got 'yes'"),
    ("Delayed", "delay", "fast", "router.delay must be a number, got 'fast'"),
])
def test_settings_are_checked_against_the_constructors_annotations(router, key, value, says):
    with pytest.raises(ConfigError) as e:
        Simulation(_two_models(router, **{key: value}), TRACE)
    assert str(e.value) == says


def test_well_typed_settings_pass():
    Simulation(_two_models("Typed", d=1, name=None, on=True), TRACE).run()


@pytest.mark.parametrize(("source", "says"), [
    ("import not_installed_pkg_4711\n",
     r"ModuleNotFoundError: No module named 'not_installed_pkg_4711'"),
    ("def f(:\n", r"SyntaxError: invalid syntax \(.*{mod}\.py, line 1\)"),
    ("from wrpsim.router import Router\nclass Y(Router):\n    pass\n",
     r"AttributeError: module '{mod}' has no attribute 'X'; its routers: Y"),
])
def test_a_module_that_fails_to_import_says_why(tmp_path, monkeypatch, caplog, source, says):
    from wrpsim.router.build import build_router

    mod = f"usermod_{abs(hash(source)) % 10**8}"
    (tmp_path / f"{mod}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError) as e:
        build_router({"_target_": f"{mod}.X"})
    assert re.fullmatch(rf"router: cannot load '{mod}\.X': " + says.format(mod=mod),
                        str(e.value)), str(e.value)
    assert not [r for r in caplog.records if r.name == "hydra.utils"]  # the one line only
