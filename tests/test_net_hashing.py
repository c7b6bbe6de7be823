"""ECMP hashing: deterministic across processes, uniform, unpolarised; oracles 3 and 4."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from wrpsim.network.hashing import ecmp_index, flow_hash, mix64, switch_salts
from wrpsim.network.theory import expected_distinct_bins, expected_max_load, max_load_cdf


def test_mix64_is_a_64bit_bijection_sample():
    xs = [mix64(i) for i in range(10_000)]
    assert len(set(xs)) == len(xs)
    assert all(0 <= x < 2**64 for x in xs)


def test_hash_is_deterministic_across_processes():
    code = ("from wrpsim.network.hashing import ecmp_index, switch_salts;"
            "s = switch_salts(7, 4);"
            "print(s, [ecmp_index(s[i % 4], (i, i + 1, i * 3), 16) for i in range(50)])")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": str(h), "PATH": ""}).stdout
            for h in (0, 1, 2)}
    assert len(outs) == 1
    here = switch_salts(7, 4)
    assert str(here) in outs.pop()


def test_salts_depend_on_seed_and_can_be_disabled():
    assert switch_salts(1, 8) != switch_salts(2, 8)
    assert switch_salts(1, 8) == switch_salts(1, 8)
    assert switch_salts(1, 8, salted=False) == [0] * 8
    assert flow_hash(1, (1, 2)) != flow_hash(1, (2, 1))


@pytest.mark.parametrize("m", [2, 7, 16, 64])
def test_hash_is_uniform(m):
    """Chi-square test of next-hop counts for 20,000 consecutive tuples."""
    counts = np.bincount([ecmp_index(12345, (i, i // 16, 0), m) for i in range(20_000)],
                         minlength=m)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_no_polarisation_with_salts_and_polarisation_without():
    """Flows that took next hop 0 at one switch spread uniformly at the next switch when the
    switches' salts differ; with equal salts they all take next hop 0 again (polarisation)."""
    a, b = switch_salts(3, 2)
    tuples = [(i, 1000 + i, i % 7) for i in range(40_000)]
    first = [t for t in tuples if ecmp_index(a, t, 8) == 0]
    second = np.bincount([ecmp_index(b, t, 8) for t in first], minlength=8)
    assert stats.chisquare(second).pvalue > 1e-3
    same = np.bincount([ecmp_index(a, t, 8) for t in first], minlength=8)
    assert same[0] == len(first)


@pytest.mark.parametrize("n, m", [(16, 16), (8, 16), (32, 16), (4, 4)])
def test_expected_distinct_uplinks_oracle3(n, m):
    """Oracle 3: n flows hashed by one leaf use m(1 − (1 − 1/m)^n) distinct uplinks on average;
    P(two flows collide) = 1/m."""
    salts = switch_salts(11, 400)
    used = [len({ecmp_index(s, (f, 77, r), m) for f in range(n)}) for r, s in enumerate(salts)]
    expect = expected_distinct_bins(n, m)
    se = np.std(used) / np.sqrt(len(used))
    assert abs(np.mean(used) - expect) < 4 * se + 0.01
    pairs = np.mean([ecmp_index(s, (0, 1, 0), m) == ecmp_index(s, (2, 3, 0), m)
                     for s in switch_salts(5, 4000)])
    assert pairs == pytest.approx(1 / m, abs=4 * np.sqrt((1 / m) * (1 - 1 / m) / 4000))
    if n == m >= 16:
        assert expect / m == pytest.approx(1 - 1 / np.e, abs=0.02)


def test_max_load_formula_oracle4_exact_small_cases():
    """Oracle 4 against exhaustive enumeration: 3 balls in 2 bins, 4 balls in 3 bins."""
    import itertools
    from fractions import Fraction

    for n, m in [(3, 2), (4, 3), (5, 4)]:
        loads = [max(np.bincount(c, minlength=m)) for c in itertools.product(range(m), repeat=n)]
        for k in range(n + 1):
            exact = Fraction(sum(1 for x in loads if x <= k), m**n)
            assert max_load_cdf(n, m, k) == exact


def test_max_load_formula_oracle4_against_ecmp_hash():
    """Oracle 4: the distribution of the most loaded uplink when a leaf hashes 16 flows over 16
    spines matches (n!/m^n)[x^n](Σ x^j/j!)^m."""
    n = m = 16
    salts = switch_salts(2024, 6000)
    maxes = np.array([np.bincount([ecmp_index(s, (f, 500 + f, 0), m) for f in range(n)],
                                  minlength=m).max() for s in salts])
    for k in range(2, 7):
        p = float(max_load_cdf(n, m, k))
        assert np.mean(maxes <= k) == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / 6000) + 1e-3)
    assert np.mean(maxes) == pytest.approx(expected_max_load(n, m), abs=0.05)
