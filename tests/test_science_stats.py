"""The studies' statistics against hand-computed values (experiments/planted/stats.py)."""
import itertools
import math

import numpy as np
import pytest

from experiments.planted import common, stats


def test_kendall_tau_by_hand():
  assert stats.kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
  assert stats.kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
  # pairs of (1,2,3,4) vs (1,3,2,4): 5 concordant, 1 discordant -> 4/6
  assert stats.kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
  # with a tie in x: x = (1,1,2), y = (1,2,3): pairs (0,1) tie in x, (0,2) c, (1,2) c
  # tau-b = 2 / sqrt((2 + 1) * 2)
  assert stats.kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))


def test_kendall_tau_matches_a_plain_count_on_random_data():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=12), rng.normal(size=12)
  c = d = 0
  for i, j in itertools.combinations(range(12), 2):
    s = (x[i] - x[j]) * (y[i] - y[j])
    c, d = c + (s > 0), d + (s < 0)
  assert stats.kendall_tau(x, y) == pytest.approx((c - d) / 66)


def test_permutation_test_exact_by_hand():
  # a = (1, 2), b = (3, 4): of the 6 splits of {1,2,3,4} into pairs, |mean diff| >= 2 only for
  # {1,2}|{3,4} and {3,4}|{1,2}: p = 2/6
  assert stats.permutation_test([1, 2], [3, 4]) == pytest.approx(2 / 6)
  assert stats.permutation_test([1, 1, 1], [1, 1, 1]) == 1.0
  # sampled version agrees with the exact one
  a, b = [5.0, 6.1, 5.5, 6.3, 5.9], [6.8, 7.2, 6.1, 7.0, 6.9]
  exact = stats.permutation_test(a, b)
  sampled = stats.permutation_test(a, b, max_exact=10, samples=20_000)
  assert abs(exact - sampled) < 0.01 and exact < 0.05


def test_cell_distance_counts_differing_decisions():
  prev, act = [-1, 0, 1, 1], [0, 1, 2, 3]
  assert stats.cell_distance(prev, act, prev, act) == 0
  assert stats.cell_distance(prev, act, [-1, 0, 0, 1], [1, 1, 2, 0]) == 3
  assert stats.mean_std([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))


def test_random_cells_are_distinct_valid_and_seeded():
  cells = common.random_cells(6, 20, seed=1, exclude={"0 0 0 0 0 0 0 0 0 0 0"})
  assert len(set(cells)) == 20
  assert cells == common.random_cells(6, 20, seed=1, exclude={"0 0 0 0 0 0 0 0 0 0 0"})
  for text in cells:
    arch = common.arch_of(text)
    assert len(arch.act_N) == 6
