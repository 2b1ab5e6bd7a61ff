"""Rank statistics for the search report and the studies, with nothing beyond NumPy: Kendall's
tau-b with a permutation p-value, Spearman's rho (average ranks for ties), a figure's
percentile among others, a two-sided permutation test of a difference in means, its form on
ranks, and the confidence interval of that difference that inverts the test."""
from __future__ import annotations

import itertools
import math
from typing import Any, Sequence

import numpy as np


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
  """Kendall's tau-b: (concordant - discordant) / sqrt((n0 - ties_x) (n0 - ties_y))."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  if x.shape != y.shape or x.size < 2:
    raise ValueError("two sequences of the same length >= 2")
  concordant = discordant = ties_x = ties_y = 0
  for i, j in itertools.combinations(range(x.size), 2):
    dx, dy = _order_sign(x[i], x[j]), _order_sign(y[i], y[j])
    if dx == 0 and dy == 0:
      continue
    if dx == 0:
      ties_x += 1
    elif dy == 0:
      ties_y += 1
    elif dx == dy:
      concordant += 1
    else:
      discordant += 1
  n0 = concordant + discordant
  denom = math.sqrt((n0 + ties_x) * (n0 + ties_y))
  return (concordant - discordant) / denom if denom else float("nan")


def _order_sign(a: Any, b: Any) -> Any:
  """sign(a - b) by comparison, elementwise: the same for finite values, and an infinite figure
  (a cell that diverged) ties with another infinite one of its sign instead of making a NaN."""
  return np.greater(a, b).astype(float) - np.less(a, b).astype(float)


def tau_p_value(x: Sequence[float], y: Sequence[float], samples: int = 20_000,
                seed: int = 0) -> float:
  """Two-sided p-value of tau under independence: the share of random re-pairings of y whose
  |tau| is at least the observed one (with the observed pairing counted). Tau-b of a pairing is
  sum(sx * sy) / sqrt(sum(sx^2) sum(sy^2)) over the pairs' signs, computed for many pairings at
  once (the re-pairings are `rng.permutation` draws, in order)."""
  observed = abs(kendall_tau(x, y))
  x, y = np.asarray(x, float), np.asarray(y, float)
  i, j = np.triu_indices(x.size, 1)
  sx = _order_sign(x[i], x[j])
  rng = np.random.default_rng(seed)
  hits, left = 0, samples
  while left:
    chunk = min(left, 1000)
    y_PxN = y[np.stack([rng.permutation(y.size) for _ in range(chunk)])]
    sy_PxM = _order_sign(y_PxN[:, i], y_PxN[:, j])
    with np.errstate(invalid="ignore", divide="ignore"):
      tau_P = (sy_PxM @ sx) / np.sqrt(np.sum(sx * sx) * np.sum(sy_PxM * sy_PxM, axis=1))
    hits += int(np.sum(np.abs(tau_P) >= observed - 1e-12))
    left -= chunk
  return (hits + 1) / (samples + 1)


def ranks(x: Sequence[float]) -> np.ndarray:
  """1-based ranks of `x`, ties given their average rank."""
  x = np.asarray(x, float)
  order = np.argsort(x, kind="stable")
  r = np.empty(x.size, float)
  r[order] = np.arange(1, x.size + 1)
  for value in np.unique(x):
    tied = x == value
    r[tied] = r[tied].mean()
  return r


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
  """Spearman's rho: Pearson's correlation of the (average) ranks; NaN when either is constant."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  if x.shape != y.shape or x.size < 2:
    raise ValueError("two sequences of the same length >= 2")
  rx, ry = ranks(x) - (x.size + 1) / 2, ranks(y) - (y.size + 1) / 2
  denom = math.sqrt(float(np.sum(rx * rx) * np.sum(ry * ry)))
  return float(np.sum(rx * ry) / denom) if denom else float("nan")


def percentile_among(value: float, others: Sequence[float], lower_is_better: bool) -> float:
  """The share (in %) of `others` that `value` beats, ties counted half: 100 means better than
  every one of them, 50 the median."""
  others = np.asarray(others, float)
  if others.size == 0:
    raise ValueError("no figures to compare with")
  better = others > value if lower_is_better else others < value
  return float(100.0 * (np.sum(better) + 0.5 * np.sum(others == value)) / others.size)


def permutation_test(a: Sequence[float], b: Sequence[float], max_exact: int = 200_000,
                     samples: int = 50_000, seed: int = 0) -> float:
  """Two-sided p-value for a difference in means between groups `a` and `b`: every split of the
  pooled values into groups of the same sizes (all of them when there are at most `max_exact`,
  else `samples` random ones), the share with |mean difference| at least the observed one."""
  a, b = np.asarray(a, float), np.asarray(b, float)
  pooled = np.concatenate([a, b])
  n, k = pooled.size, a.size
  observed = abs(a.mean() - b.mean())
  total = pooled.sum()

  def diff(idx):
    s = pooled[idx].sum()
    return abs(s / k - (total - s) / (n - k))

  chosen, exact = _splits(n, k, max_exact, samples, seed)
  hits = int(np.sum(np.asarray([diff(idx) for idx in chosen]) >= observed - 1e-12))
  return hits / len(chosen) if exact else (hits + 1) / (len(chosen) + 1)


def rank_permutation_test(a: Sequence[float], b: Sequence[float]) -> float:
  """Two-sided p-value for a difference in mean rank between groups `a` and `b` (the
  permutation form of the Wilcoxon rank-sum test; ties share their mean rank): unlike
  `permutation_test` on the values, one diverged run counts as one rank, not as its size."""
  pooled = np.concatenate([np.asarray(a, float), np.asarray(b, float)])
  order = np.argsort(pooled, kind="stable")
  ranks = np.empty(pooled.size)
  ranks[order] = np.arange(1, pooled.size + 1)
  for value in np.unique(pooled):  # ties: the mean of the ranks they span
    same = pooled == value
    ranks[same] = ranks[same].mean()
  return permutation_test(ranks[:len(a)], ranks[len(a):])


def _splits(n: int, k: int, max_exact: int, samples: int, seed: int) -> tuple[np.ndarray, bool]:
  """int[S, k]: the pooled values' indices in the first group of each split (every split when
  there are at most `max_exact`, else `samples` random ones), and whether they are all of them."""
  if math.comb(n, k) <= max_exact:
    return np.asarray(list(itertools.combinations(range(n), k)), np.int64).reshape(-1, k), True
  rng = np.random.default_rng(seed)
  return np.asarray([rng.permutation(n)[:k] for _ in range(samples)]), False


def shift_interval(a: Sequence[float], b: Sequence[float], alpha: float = 0.05,
                   max_exact: int = 200_000, samples: int = 50_000, seed: int = 0
                   ) -> tuple[float, float]:
  """The (1 - alpha) confidence interval of mean(a) - mean(b) that inverts `permutation_test`:
  the shifts d for which the test of a - d against b (the same splits for every d) gives
  p >= alpha, each end found by bisection. (-inf, inf) when no shift reaches p < alpha (too few
  values: see the least p `permutation_test` can give)."""
  a, b = np.asarray(a, float), np.asarray(b, float)
  n, k = a.size + b.size, a.size
  chosen, exact = _splits(n, k, max_exact, samples, seed)
  member = np.zeros((len(chosen), n))
  np.put_along_axis(member, chosen, 1.0, axis=1)
  pooled = np.concatenate([a, b])
  s0, from_a, t0 = member @ pooled, member @ (np.arange(n) < k), pooled.sum()
  estimate = float(a.mean() - b.mean())

  def p_of(hits: int) -> float:
    return hits / len(s0) if exact else (hits + 1) / (len(s0) + 1)

  def p_at(d: float) -> float:
    s = s0 - d * from_a
    diffs = np.abs(s / k - (t0 - d * k - s) / (n - k))
    tolerance = 1e-12 * (1.0 + abs(d) + abs(t0))  # the sums' rounding grows with the shift
    return p_of(int(np.sum(diffs >= abs(estimate - d) - tolerance)))

  # Far from the estimate only the splits that keep a's values together (and, for equal
  # groups, their mirrors) are as far apart as the observed one: the least p any shift gets.
  together = int(np.sum(from_a == k)) + (int(np.sum(from_a == 0)) if 2 * k == n else 0)
  if p_of(together) >= alpha:
    return -math.inf, math.inf
  scale = max(float(np.std(pooled)), abs(estimate), 1e-12)
  ends = []
  for sign in (-1.0, 1.0):
    step = scale
    while p_at(estimate + sign * step) >= alpha:
      step *= 2.0
    inside, outside = 0.0, step  # p >= alpha at `inside`, < alpha at `outside`
    while outside - inside > 1e-9 * scale:
      middle = 0.5 * (inside + outside)
      inside, outside = (middle, outside) if p_at(estimate + sign * middle) >= alpha else \
          (inside, middle)
    ends.append(estimate + sign * inside)
  return ends[0], ends[1]
