"""Rank statistics for the search report and the studies, with nothing beyond NumPy: Kendall's
tau-b with a permutation p-value, Spearman's rho (average ranks for ties), a figure's
percentile among others, and a two-sided permutation test of a difference in means."""
from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
  """Kendall's tau-b: (concordant - discordant) / sqrt((n0 - ties_x) (n0 - ties_y))."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  if x.shape != y.shape or x.size < 2:
    raise ValueError("two sequences of the same length >= 2")
  concordant = discordant = ties_x = ties_y = 0
  for i, j in itertools.combinations(range(x.size), 2):
    dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
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


def tau_p_value(x: Sequence[float], y: Sequence[float], samples: int = 20_000,
                seed: int = 0) -> float:
  """Two-sided p-value of tau under independence: the share of random re-pairings of y whose
  |tau| is at least the observed one (with the observed pairing counted). Tau-b of a pairing is
  sum(sx * sy) / sqrt(sum(sx^2) sum(sy^2)) over the pairs' signs, computed for many pairings at
  once (the re-pairings are `rng.permutation` draws, in order)."""
  observed = abs(kendall_tau(x, y))
  x, y = np.asarray(x, float), np.asarray(y, float)
  i, j = np.triu_indices(x.size, 1)
  sx = np.sign(x[i] - x[j])
  rng = np.random.default_rng(seed)
  hits, left = 0, samples
  while left:
    chunk = min(left, 1000)
    y_PxN = y[np.stack([rng.permutation(y.size) for _ in range(chunk)])]
    sy_PxM = np.sign(y_PxN[:, i] - y_PxN[:, j])
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
    s = pooled[list(idx)].sum()
    return abs(s / k - (total - s) / (n - k))

  if math.comb(n, k) <= max_exact:
    diffs = [diff(idx) for idx in itertools.combinations(range(n), k)]
    return float(np.mean(np.asarray(diffs) >= observed - 1e-12))
  rng = np.random.default_rng(seed)
  hits = sum(diff(rng.permutation(n)[:k]) >= observed - 1e-12 for _ in range(samples))
  return (hits + 1) / (samples + 1)
