"""Small statistics for the studies, written out so that nothing beyond NumPy is needed: Kendall's
tau-b and its p-value and an exact (or sampled) two-sided permutation test and its rank form (from
`enas_jax.report.stats`, shared with the search report and `enas_jax.compare`), the test's paired
(sign-flip) form, and the distance between two cells."""
from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

from enas_jax.report.stats import (  # noqa: F401  (the studies' names)
    kendall_tau, permutation_test, rank_permutation_test, shift_interval, tau_p_value)


def paired_sign_test(differences: list[float], samples: int = 200_000, seed: int = 0) -> float:
  """Two-sided p-value that paired differences have mean 0: the share of sign flips (all 2^n
  when n <= 16, else `samples` random ones) whose |mean| is at least the observed one."""
  d = np.asarray(differences, float)
  observed = abs(d.mean()) - 1e-12
  if d.size <= 16:
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
    return float(np.mean(np.abs(signs @ d / d.size) >= observed))
  signs = np.random.default_rng(seed).choice((1.0, -1.0), size=(samples, d.size))
  return float((np.sum(np.abs(signs @ d / d.size) >= observed) + 1) / (samples + 1))


def cell_distance(a_prev: Sequence[int], a_act: Sequence[int], b_prev: Sequence[int],
                  b_act: Sequence[int]) -> int:
  """How many of the controller's decisions differ (node 0's activation, then each later node's
  input and activation): 0 means the same cell, 2N - 1 the most."""
  if len(a_act) != len(b_act):
    raise ValueError("cells of different sizes")
  return (int(a_act[0] != b_act[0])
          + sum(int(a_prev[k] != b_prev[k]) + int(a_act[k] != b_act[k])
                for k in range(1, len(a_act))))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
  """Mean and sample standard deviation (ddof 1; 0 for one value)."""
  v = np.asarray(values, float)
  return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0
