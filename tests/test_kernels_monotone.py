"""`wrpsim.pool.kernels.monotone`: monotone fits of measured kernel times."""

from __future__ import annotations

import numpy as np
import pytest

from wrpsim.pool.kernels.monotone import isotonic, monotone_curve, monotone_grid


def test_isotonic_is_a_least_absolute_deviations_monotone_fit():
    """Closed forms: a monotone sequence is its own fit; a violating pair takes its lower
    value; one outlier among ordered neighbours takes their value, moving nothing else."""
    assert isotonic(np.array([1.0, 2.0, 3.0])).tolist() == [1.0, 2.0, 3.0]
    assert isotonic(np.array([3.0, 1.0, 5.0])).tolist() == [1.0, 1.0, 5.0]
    assert isotonic(np.array([1.0, 4.0, 1.0, 1.0, 2.0])).tolist() == [1.0, 1.0, 1.0, 1.0, 2.0]
    # against brute force over random sequences: monotone, every value one of y's, and no
    # monotone sequence is closer to y in absolute deviation
    rng = np.random.default_rng(0)
    for _ in range(200):
        y = rng.normal(size=int(rng.integers(2, 9)))
        f = isotonic(y)
        assert np.all(np.diff(f) >= 0) and set(f.tolist()) <= set(y.tolist())
        for _ in range(20):
            g = np.sort(rng.normal(size=y.size))
            assert np.sum(np.abs(f - y)) <= np.sum(np.abs(g - y)) + 1e-9


def test_one_outlier_no_longer_sets_a_floor_over_the_region_beyond_it():
    """The A100 decode-attention row that read 44.6 µs at 7 cached tokens, ~12 µs elsewhere:
    a running maximum made every longer context 44.6 µs."""
    row = np.array([12.3, 12.3, 44.6, 12.4, 12.5, 12.6, 12.6, 12.8, 17.3, 18.2, 18.9, 20.8])
    fit = monotone_curve(row)
    assert np.all(np.diff(fit) >= 0)
    assert fit[2] == pytest.approx(12.4) and np.delete(fit, 2).tolist() == np.delete(
        row, 2).tolist()  # the outlier takes its neighbours' value; nothing else moves
    assert np.maximum.accumulate(row)[3] == 44.6  # what the running maximum did
    grid = monotone_grid(np.vstack([row, row * 1.02, row * 1.05]))
    assert np.all(np.diff(grid, axis=0) >= 0) and np.all(np.diff(grid, axis=1) >= 0)
    assert grid[:, 2].tolist() == pytest.approx([12.4, 12.4 * 1.02, 12.4 * 1.05])
    assert grid[-1, -1] == pytest.approx(20.8 * 1.05)


def test_a_fast_outlier_pulls_the_cells_before_it_to_the_lower_median():
    assert monotone_curve(np.array([1.0, 2.0, 0.1, 4.0, 5.0])).tolist() == [1, 1, 1, 4, 5]
    assert monotone_curve(np.array([0.0, 1.0, 0.5])).tolist() == [0.0, 0.5, 0.5]


def test_a_monotone_grid_comes_back_unchanged():
    b, s = np.meshgrid(np.arange(1, 6), np.arange(1, 8), indexing="ij")
    t = 1e-5 * (1 + b * s) + 1e-6 * b
    assert np.array_equal(monotone_grid(t), t)
    assert np.array_equal(monotone_curve(t[0]), t[0])
