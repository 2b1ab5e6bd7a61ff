"""One method's results against another's over seeds (`python -m enas_jax.compare`): the runs'
summary.json files read, the figure chosen, both sides' means and a two-sided permutation test
of their difference with the 95% interval that inverts it, its verdict and the least p-value the
run counts can reach."""
from __future__ import annotations

import json
import os
from typing import Any, Sequence

import numpy as np

from enas_jax.io import workdir as workdir_lib
from enas_jax.io.configuration import has_kind
from enas_jax.io.errors import UserError
from enas_jax.io.metrics import read_metrics
from enas_jax.report.stats import permutation_test, rank_permutation_test, shift_interval

AUTO_FIGURES = ("valid_ppl", "valid_acc", "valid_acc_table", "test_acc")
SHARED_SUFFIX = "_shared"  # a search's figures under its shared weights
ALPHA = 0.05
# The largest figure compared: past it the runs' squares (a variance) overflow float64; a float32
# run's figures stay far below (3.4e38 at most).
LARGEST = 1e150


def read_runs(given: Sequence[str], side: str) -> dict[str, dict[str, Any]]:
  """{path: summary} of every run named by --`side` (workdirs or summary.json files)."""
  paths = [p for item in given for p in item.split(",") if p]
  if len(set(paths)) < len(paths):
    raise UserError(f"--{side} names a run twice; give each seed's run once.")
  if len(paths) < 2:
    raise UserError(f"--{side} names {len(paths)} run(s); give at least two (one per seed), "
                    f"comma-separated or with --{side} repeated.")
  runs = {}
  for path in paths:
    file = os.path.join(path, "summary.json") if os.path.isdir(path) else path
    try:
      with open(file) as f:
        runs[path] = json.load(f)
    except FileNotFoundError:
      raise UserError(f"--{side}: {file} does not exist{_unfinished(path)}. Give finished "
                      f"runs' workdirs (a training writes summary.json when it ends).") from None
    except (OSError, ValueError) as err:
      raise UserError(f"--{side}: {file} cannot be read as JSON ({err}).") from None
    if not isinstance(runs[path], dict):
      raise UserError(f"--{side}: {file} is not a summary (a JSON object).")
    runs[path] = {k: workdir_lib.from_jsonable(v) for k, v in runs[path].items()}
  return runs


def _unfinished(path: str) -> str:
  """What a workdir without a summary has written, for the error's words ("" when it has no
  records): its finished epochs and the last one's validation perplexity when it has one."""
  records = read_metrics(os.path.join(path, "metrics.jsonl")) if os.path.isdir(path) else []
  if not records:
    return ""
  epochs = [r for r in records if r.get("phase") == "epoch"]
  last = (f", the last with validation perplexity {epochs[-1]['valid_ppl']}"
          if epochs and "valid_ppl" in epochs[-1] else "")
  return (f": that run has not finished. Its metrics.jsonl records {len(epochs)} finished "
          f"epoch(s){last}; it is still running, was stopped by a signal (the same command "
          f"resumes it), or stopped on divergence (its last output said which)")


def choose_figure(runs: dict[str, dict[str, Any]], asked: str) -> str:
  """The summary key to compare: `asked`, else the first of AUTO_FIGURES every run has."""
  if asked:
    lacking = [p for p, s in runs.items() if not has_kind(s.get(asked), (int, float))]
    if lacking:
      raise UserError(f"--figure={asked}: {lacking[0]} has no such number in its summary.json "
                      f"(keys: {', '.join(sorted(runs[lacking[0]]))}).")
    return asked
  for figure in AUTO_FIGURES:
    if all(has_kind(s.get(figure), (int, float)) for s in runs.values()):
      return figure
  shared = [p for p, s in runs.items() if any(k.endswith(SHARED_SUFFIX) for k in s)]
  if shared:
    given = shared[0]
    summary = given.endswith(".json")  # a summary.json given: its search's workdir is beside it
    workdir = (os.path.dirname(given) or ".") if summary else given
    raise UserError(f"{given} is a search's {'summary' if summary else 'workdir'}: its figures "
                    f"are under the shared weights, which rank cells poorly. Train each answer "
                    f"alone first (python -m enas_jax.train --config=... --config.arch={workdir}) "
                    f"and compare those workdirs, or name the shared figure with --figure to "
                    f"compare it anyway.")
  raise UserError(f"No figure that every run has among {', '.join(AUTO_FIGURES)}; name one of "
                  f"the summaries' keys with --figure.")


def lower_is_better(figure: str) -> bool:
  if any(word in figure for word in ("ppl", "error", "loss")):
    return True
  if "acc" in figure:
    return False
  raise UserError(f"--figure={figure}: compare knows which way is better only for perplexity, "
                  f"error, loss and accuracy figures (a key containing ppl, error, loss or acc).")


def interval(a: Sequence[float], b: Sequence[float]) -> list[float] | None:
  """The 95% interval of mean(a) - mean(b) that inverts the permutation test; None when the run
  counts leave it unbounded."""
  low, high = shift_interval(a, b, ALPHA)
  return [low, high] if np.isfinite(low) else None


def comparison(ours: dict[str, dict], baseline: dict[str, dict], figure: str) -> dict[str, Any]:
  """Both sides' figures, their means and sample standard deviations, the difference with its
  95% interval (the shifts the permutation test does not reject), the permutation p-value, the
  least p-value reachable with these run counts, and the verdict."""
  for path, summary in {**ours, **baseline}.items():
    if not abs(float(summary[figure])) <= LARGEST:  # NaN, inf, or past what a variance holds
      raise UserError(f"{path}: its {figure} is {summary[figure]} (the run diverged or stopped "
                      f"early). Leave it out and say so, or rerun it; a mean and a test over it "
                      f"would mean nothing.")
  a = [float(s[figure]) for s in ours.values()]
  b = [float(s[figure]) for s in baseline.values()]
  p, p_ranks = permutation_test(a, b), rank_permutation_test(a, b)
  least = permutation_test(list(range(len(a))), list(range(len(a), len(a) + len(b))))
  lower = lower_is_better(figure)
  ours_better = (np.mean(a) < np.mean(b)) == lower
  if p < ALPHA:
    verdict = f"{'ours' if ours_better else 'the baseline'} is better (p < {ALPHA})"
  else:
    verdict = f"no significant difference at p < {ALPHA}"
    if least >= ALPHA:
      verdict += (f"; with {len(a)} and {len(b)} runs no difference can reach it (least p "
                  f"{least:.3g}): run more seeds")
  if (p < ALPHA) != (p_ranks < ALPHA):  # e.g. one run that trained badly swamps a mean
    verdict += (f"; but by ranks p = {p_ranks:.3g}: the two tests disagree, so a few runs "
                f"decide the means (look at the medians and the runs)")
  return {"figure": figure, "lower_is_better": lower,
          "ours": dict(zip(ours, a)), "baseline": dict(zip(baseline, b)),
          "ours_mean": float(np.mean(a)), "ours_std": float(np.std(a, ddof=1)),
          "baseline_mean": float(np.mean(b)), "baseline_std": float(np.std(b, ddof=1)),
          "ours_median": float(np.median(a)), "baseline_median": float(np.median(b)),
          "difference": float(np.mean(a) - np.mean(b)),
          "interval": interval(a, b), "p": p, "p_ranks": p_ranks, "least_p": least,
          "verdict": verdict}


def _fmt(value: float, sign: str = "") -> str:
  """Four decimals, or six significant digits for a figure of a million or more (a perplexity
  near divergence: 3e+38 rather than 39 digits)."""
  return f"{value:{sign}.4f}" if abs(value) < 1e6 else f"{value:{sign}.6g}"


def report_lines(result: dict[str, Any]) -> list[str]:
  figure = result["figure"]
  lines = [f"figure: {figure} ({'lower' if result['lower_is_better'] else 'higher'} is better)"]
  if figure.endswith(SHARED_SUFFIX):
    lines.append("  (under a search's shared weights, not trained alone: a weak yardstick)")
  for side in ("ours", "baseline"):
    runs = result[side]
    lines.append(f"{side} ({len(runs)} runs): {_fmt(result[side + '_mean'])} +- "
                 f"{_fmt(result[side + '_std'])}, median {_fmt(result[side + '_median'])}")
    lines += [f"  {_fmt(value)}  {path}" for path, value in runs.items()]
  interval = result["interval"]
  within = (f"{_fmt(interval[0], '+')} to {_fmt(interval[1], '+')}" if interval else
            "unbounded with these run counts")
  lines += [f"difference (ours - baseline): {_fmt(result['difference'], '+')}; two-sided "
            f"permutation p = {result['p']:.4g} (by ranks p = {result['p_ranks']:.4g})",
            f"95% interval of the difference (the shifts the test does not reject): {within}",
            f"verdict: {result['verdict']}"]
  return lines
