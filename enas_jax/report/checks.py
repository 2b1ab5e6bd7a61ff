"""The search report's health checks: each a measured figure, a status, a plain-words reading and
what to do when it fails. Pure functions of figures the search logged or the report measured,
so each is checked by hand on a constructed case (tests/test_report.py).

Statuses: "pass", "warn", "fail", or "n/a" (the check does not apply, e.g. no controller steps
yet). The verdict is the worst status among the checks that apply.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np

from enas_jax.report import stats

PASS, WARN, FAIL, NA = "pass", "warn", "fail", "n/a"
_ORDER = {PASS: 0, NA: 0, WARN: 1, FAIL: 2}
# Thresholds, named so that the page can state them.
PERCENTILE_PASS, PERCENTILE_WARN = 75.0, 50.0  # the answer against random cells (%)
RHO_PASS, RHO_WARN = 0.7, 0.4  # Spearman's rho between the two halves of the validation split
TAU_PASS, TAU_WARN = 0.5, 0.2  # Kendall's tau, shared weights against trained alone
COLLAPSE_EARLY = 0.5  # a collapse before this share of the planned shared training is early
SIGNIFICANCE = 0.05  # a rank correlation passes only when its permutation p-value is below this
PERMUTATIONS = 2000  # re-pairings for the p-values


@dataclasses.dataclass(frozen=True)
class Check:
  """One health check as the report shows it."""

  title: str
  status: str
  figure: str  # the measured figure(s), one line
  reading: str  # what it means, plain words
  remedy: str  # what to do when it does not pass ("" when it passes)


@dataclasses.dataclass(frozen=True)
class Collapse:
  """When the controller's entropy first fell below `fraction` of its first logged value."""

  start: float  # the first logged entropy (nats, summed over decisions)
  threshold: float  # fraction * start
  latest: float  # the last logged entropy
  controller_step: int | None  # the first controller step below the threshold (None: never)
  epoch: int | None  # the epoch (from 1) that step was in
  shared_steps: int | None  # shared steps taken before it


def entropy_collapse(records: Sequence[dict[str, Any]], fraction: float) -> Collapse | None:
  """Walks metrics.jsonl's records in order; None when no controller record has an entropy."""
  start = threshold = latest = None
  shared_steps, epochs = 0, 0
  found: tuple[int, int, int] | None = None
  for r in records:
    phase = r.get("phase")
    if phase == "shared":
      shared_steps = int(r["step"])
    elif phase == "epoch":
      epochs = int(r["step"])
    elif phase == "controller" and isinstance(r.get("entropy"), (int, float)):
      entropy = float(r["entropy"])
      if start is None:
        start, threshold = entropy, fraction * entropy
      latest = entropy
      if found is None and entropy < threshold:
        found = (int(r["step"]), epochs + 1, shared_steps)
  if start is None:
    return None
  step, epoch, shared = found if found else (None, None, None)
  return Collapse(start, threshold, latest, step, epoch, shared)


def collapse_check(collapse: Collapse | None, fraction: float, planned_shared_steps: int,
                   planned_controller_steps: int) -> Check:
  """Controller collapse: failed when the entropy fell below `fraction` of its start while the
  shared weights had had less than half of `COLLAPSE_EARLY` of their planned training, warned
  below `COLLAPSE_EARLY` (the controller committed to cells before the weights could tell cells
  apart); passed when it never fell or fell later (a late collapse is convergence). A search
  without shared weights (a benchmark's table) is judged by its controller steps instead."""
  title = "Controller collapse"
  if collapse is None:
    return Check(title, NA, "no controller steps logged yet", "Nothing to judge yet.", "")
  if collapse.controller_step is None:
    return Check(title, PASS,
                 f"entropy {collapse.start:.3g} -> {collapse.latest:.3g} nats; never below "
                 f"{fraction:.0%} of its start ({collapse.threshold:.3g})",
                 "The controller still samples broadly: it has not locked onto one cell.", "")
  if planned_shared_steps:
    done, planned, unit = collapse.shared_steps, planned_shared_steps, "shared steps"
  else:
    done, planned, unit = collapse.controller_step, planned_controller_steps, "controller steps"
  share = done / planned if planned else math.nan
  figure = (f"entropy fell below {fraction:.0%} of its start ({collapse.start:.3g} -> "
            f"{collapse.threshold:.3g} nats) at controller step {collapse.controller_step}, "
            f"epoch {collapse.epoch}, after {done} {unit} ({share:.0%} of the {planned} "
            f"planned)")
  if share >= COLLAPSE_EARLY:
    return Check(title, PASS, figure,
                 "The controller converged late in the search, after most of the shared "
                 "training: expected.", "")
  return Check(
      title, FAIL if share < COLLAPSE_EARLY / 2 else WARN, figure,
      "The controller committed to a few cells while the shared weights were still young; "
      "the cells it then trains are the only ones the weights learn, so its early favourites "
      "win by being trained, not by being good.",
      "Raise `controller.entropy_weight`, raise `controller.temperature`, or train the shared "
      "weights longer before the controller learns (more shared steps per epoch).")


def percentile_check(answer: float, random_figures: Sequence[float], lower_is_better: bool,
                     metric: str) -> Check:
  """The answer against cells drawn uniformly, all scored on the whole validation split under
  the same shared weights."""
  title = "The answer against random cells"
  pct = stats.percentile_among(answer, random_figures, lower_is_better)
  figure = (f"valid {metric} {answer:.4g}: better than {pct:.0f}% of {len(random_figures)} "
            f"random cells (their median {float(np.median(random_figures)):.4g}, best "
            f"{(min if lower_is_better else max)(random_figures):.4g})")
  if pct >= PERCENTILE_PASS:
    return Check(title, PASS, figure,
                 "Scored the same way (the search's shared weights, or the benchmark's table), "
                 "the answer beats most cells drawn at random.", "")
  reading = ("The answer is no better than a typical random cell under the same weights: the "
             "controller's choice adds little over sampling at random."
             if pct < PERCENTILE_WARN else
             "The answer beats the median random cell, but not by much.")
  return Check(title, FAIL if pct < PERCENTILE_WARN else WARN, figure, reading,
               "Search longer, lower the reward's noise (more validation batches per reward, "
               "`controller.num_samples`), and compare with random search at equal compute "
               "before trusting the answer.")


def _correlation_status(value: float, p: float, passing: float, warning: float) -> str:
  """pass: at least `passing` and significant (p below `SIGNIFICANCE`); warn: at least
  `passing` but over too few cells to be significant, or significant and at least `warning`
  (weak but real); fail otherwise (weak, or no evidence of any ranking)."""
  significant = p < SIGNIFICANCE
  if value >= passing:
    return PASS if significant else WARN
  return WARN if value >= warning and significant else FAIL


# (reading, remedy) of a rank-correlation check for each outcome: passed, strong but over too
# few cells, weak but real, no evidence of agreement.
_STABILITY_TEXTS = {
    "pass": ("The shared weights rank cells the same way on both halves: the reward measures the "
             "cell, not the batch.", ""),
    "few": ("The halves agree, but over too few cells to be sure (the correlation could be "
            "chance).", "Score more cells (`--random_cells`)."),
    "weak": ("The halves agree only loosely: the shared weights separate clearly different "
             "cells, but a reward from one batch cannot rank close ones.",
             "Reward on more validation data per step (`controller.num_samples`, longer "
             "validation windows)."),
    "none": ("The ranking changes with the data it is scored on: a reward from one batch is "
             "largely noise, and the controller learns from noise.",
             "Reward on more validation data per step, or train the shared weights longer "
             "before the controller learns; then re-run the report."),
}
_ALONE_TEXTS = {
    "pass": ("Cells the shared weights prefer also train better on their own.", ""),
    "few": ("They agree, but over too few cells to be sure.",
            "Train more cells alone (--train_alone=K with a larger K)."),
    "weak": ("A weak but real agreement: the shared weights tell good cells from bad ones only "
             "roughly.", "Train the top cells alone and pick by their own figures."),
    "none": ("No evidence that the shared weights' preference carries over to cells trained "
             "alone (as Sciuto et al. 2019 found for ENAS): the answer is ranked by a proxy that "
             "may not predict stand-alone quality.",
             "Treat the answer as one candidate among several: train the top cells alone "
             "(longer, `report.train_alone_steps`) and pick by their own figures."),
}


def _correlation_check(title: str, value: float, p: float, passing: float, warning: float,
                       figure: str, texts: dict[str, tuple[str, str]]) -> Check:
  status = _correlation_status(value, p, passing, warning)
  outcome = ("pass" if status == PASS else "few" if value >= passing else
             "weak" if status == WARN else "none")
  return Check(title, status, figure, *texts[outcome])


def stability_check(half_a: Sequence[float], half_b: Sequence[float],
                    halves: str = "the two halves of the validation split") -> Check:
  """Whether the shared-weight score ranks the random cells alike on two disjoint halves of
  the validation split (judged by Spearman's rho, with Kendall's tau's permutation p-value):
  if not, the controller's reward is mostly noise."""
  title = "Stability of the shared-weight score"
  rho, tau = stats.spearman_rho(half_a, half_b), stats.kendall_tau(half_a, half_b)
  if math.isnan(rho) or math.isnan(tau):
    return Check(title, WARN, f"the {len(half_a)} random cells' figures are constant on a half",
                 "No ranking to compare.", "Score more cells (`--random_cells`).")
  p = stats.tau_p_value(half_a, half_b, PERMUTATIONS)
  figure = (f"rank correlation between {halves} over {len(half_a)} random cells: Spearman "
            f"{rho:.2f}, Kendall {tau:.2f} (p = {p:.3g})")
  return _correlation_check(title, rho, p, RHO_PASS, RHO_WARN, figure, _STABILITY_TEXTS)


def train_alone_check(shared: Sequence[float], alone: Sequence[float], steps: int) -> Check:
  """Kendall's tau (with its permutation p-value) between cells' figures under the shared
  weights and trained alone."""
  title = "Shared weights against training alone"
  tau = stats.kendall_tau(shared, alone)
  if math.isnan(tau):
    return Check(title, WARN, f"{len(shared)} cells: constant figures, no ranking",
                 "No ranking to compare.", "Train the cells longer (`report.train_alone_steps`).")
  p = stats.tau_p_value(shared, alone, PERMUTATIONS)
  figure = (f"Kendall tau {tau:.2f} (p = {p:.3g}) over {len(shared)} cells ({steps} training "
            f"steps each alone)")
  return _correlation_check(title, tau, p, TAU_PASS, TAU_WARN, figure, _ALONE_TEXTS)


def verdict(checks: Sequence[Check]) -> tuple[str, str]:
  """(one word, one sentence) from the worst status among the checks that apply."""
  applied = [c for c in checks if c.status != NA]
  if not applied:
    return "unknown", "Nothing to judge yet: the search has logged no controller steps."
  worst = max(_ORDER[c.status] for c in applied)
  failed = [c.title.lower() for c in applied if c.status == FAIL]
  warned = [c.title.lower() for c in applied if c.status == WARN]
  if worst == 0:
    return "trust", f"All {len(applied)} checks passed."
  if worst == 1:
    return "caution", f"Use with care: {', '.join(warned)} only partly passed."
  return "distrust", (f"Do not trust the answer yet: {', '.join(failed)} failed"
                      + (f"; {', '.join(warned)} only partly passed." if warned else "."))

