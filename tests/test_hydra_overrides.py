"""`wrpsim.hydra_overrides`: the plain overrides it parses itself come out as Hydra's ANTLR
parser makes them; everything else is left to that parser."""

import math

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hypothesis import given, settings
from hypothesis import strategies as st

from wrpsim.hydra_overrides import simple_overrides, simple_value

FIELDS = ("type", "key_or_group", "value_type", "_value", "package", "input_line")


def _antlr(s: str):
    return OverridesParser.create().parse_overrides([s])[0]


def _fast(s: str):
    with simple_overrides():
        return OverridesParser.create().parse_overrides([s])[0]


def _same(a, b) -> bool:
    for f in FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        if type(x) is not type(y):
            return False
        if isinstance(x, float) and math.isnan(x) and math.isnan(y):
            continue
        if x != y:
            return False
    return a.config_loader is b.config_loader


@pytest.mark.parametrize("s", [
    "hydra.mode=RUN", "hydra.mode=MULTIRUN", "hydra.run.dir=/tmp/wrpsim-peer-ab_3x/run",
    "workload.max_requests=10", "seed=0", "seed=-3", "router=least-outstanding",
    "pool=h100-llama70b", "workload.path=traces/azure_conv_2023.csv", "x=/", "x=a/b.c-d",
    "x=./rel/1.5e3/-inf/nan/true", "a-b.c_d.e=1", "_=_", "x=a-1", "x=inf-1", "x=nanx",
    "x=True_", "x=e5", "x=E", "x=-/x", "x=1_000/x", "x=0", "x=-0",
])
def test_simple_forms_equal_hydras_parse(s):
    assert simple_value(s) is not None
    assert _same(_fast(s), _antlr(s))


@pytest.mark.parametrize("s", [
    "x=true", "x=False", "x=NULL", "x=inf", "x=NaN", "x=1.5", "x=1e3", "x=007", "x=1_000",
    "x=+5", "x=", "x= a", "x=a b", "x='a'", "x=a,b", "x=[1]", "x={a:1}", "x=${y}",
    "x=choice(1,2)", "+x=1", "++x=1", "~x", "~x=1", "a/b=c", "a@b=c", "a.0=1", "x=a\\,b",
    "x=a:b", "$x=1", "x=a=b", "1x=2",
])
def test_other_forms_go_to_hydras_parser(s):
    assert simple_value(s) is None
    try:
        ref = _antlr(s)
    except Exception as e:  # the same error either way
        with pytest.raises(type(e), match=None):
            _fast(s)
        return
    assert _same(_fast(s), ref)


ALPHABET = "aZ_09-./ +~@$=:,'\"[]{}()\\etrunlfsiE1"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=ALPHABET, min_size=1, max_size=14))
def test_generated_overrides_parse_as_hydra_parses_them(s):
    try:
        ref = _antlr(s)
    except Exception as e:
        assert simple_value(s) is None  # (a string Hydra rejects is never taken)
        with pytest.raises(type(e)):
            _fast(s)
        return
    assert _same(_fast(s), ref), (s, simple_value(s))


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,4}(\.[A-Za-z_][a-z0-9_-]{0,3}){0,2}="
                     r"(-?[0-9]{1,4}|[A-Za-z_][A-Za-z0-9_-]{0,6}|[A-Za-z0-9_./-]{0,6}/"
                     r"[A-Za-z0-9_./-]{0,6})", fullmatch=True))
def test_generated_plain_overrides_parse_as_hydra_parses_them(s):
    assert _same(_fast(s), _antlr(s)), (s, simple_value(s))


def test_the_parser_is_restored_after_the_block():
    before = OverridesParser.__dict__["parse_rule"]
    with simple_overrides():
        assert OverridesParser.__dict__["parse_rule"] is not before
    assert OverridesParser.__dict__["parse_rule"] is before
