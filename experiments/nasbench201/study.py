r"""Search strategies against NAS-Bench-201's table: ENAS's controller, random search and
regularized evolution, at equal query budgets, over many seeds.

  python -m experiments.nasbench201.study tune      # the controller's settings, CIFAR-100 only
  python -m experiments.nasbench201.study compare   # all three strategies, all three datasets
  python -m experiments.nasbench201.study diagnose  # why the controller is (not) ahead, CIFAR-100

`tune` grids the controller's learning rate, entropy weight, temperature, baseline decay and
samples per update on CIFAR-100 (seeds 1000-1099, 100 queries) and writes the ranking to
`--out/tuning.{json,md}`; the best setting goes into configs/nasbench201.py by hand. `compare`
reads the controller's settings from configs/nasbench201.py untouched and runs every strategy on
every dataset with seeds 0-99 (not the tuning seeds), up to `--queries` queries. Reported per
dataset and strategy: after q queries, the table's mean validation accuracy of the cell with the
best observed accuracy so far (mean over seeds with a 95% bootstrap interval) and its regret to
the table's best cell; the same at a simulated-time budget (the time 100 queries of the average
cell take); two-sided permutation tests between strategies at 100 queries. Writes
`--out/compare.{json,md,png}`. Both take about a minute on 2 CPU cores (mostly compiling).
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import time
from typing import Any, Callable

import numpy as np

from enas_jax.configs import nasbench201 as nb201_config
from enas_jax.controller.policy import ControllerConfig
from enas_jax.data.nasbench201 import DATASETS, Table, load_table
from enas_jax.spaces.registry import get_space
from enas_jax.tasks.table import strategies as st
from enas_jax.io.errors import run_main
from enas_jax.io.workdir import output_folder, write_atomically
from enas_jax.io.render import write_figure
from experiments.planted import stats

STRATEGIES = ("enas", "evolution", "random")
CHECKPOINTS = (10, 25, 50, 100, 200, 300)  # queries at which the table reports
TUNE_GRID = {"lr": (0.003, 0.01, 0.03, 0.1), "entropy_weight": (0.0, 0.001, 0.01),
             "temperature": (1.0, 5.0), "baseline_decay": (0.9, 0.99), "num_samples": (1, 5)}


def controller_config(**changes: Any) -> ControllerConfig:
  """The controller section of configs/nasbench201.py (with `changes`)."""
  section = dict(nb201_config.get_config().controller)
  return dataclasses.replace(ControllerConfig(**section), **changes)


def traces(strategy: str, table: Table, budget: st.Budget, seeds: np.ndarray,
           ctrl: ControllerConfig) -> list[st.Trace]:
  if strategy == "enas":
    return st.enas_traces(table, get_space("nasbench201"), ctrl, budget, seeds)
  run: Callable[..., st.Trace] = st.random_trace if strategy == "random" else st.evolution_trace
  return [run(table, budget, int(seed)) for seed in seeds]


def curves(table: Table, runs: list[st.Trace], queries: int) -> np.ndarray:
  """[R, Q] incumbent accuracies (%) (a run that stopped short keeps its last incumbent)."""
  return np.stack([st.incumbent_curve(table, trace, queries) for trace in runs])


def bootstrap_ci(values: np.ndarray, samples: int = 10_000, seed: int = 0) -> tuple[float, float]:
  """95% percentile bootstrap interval of the mean."""
  rng = np.random.default_rng(seed)
  means = values[rng.integers(0, len(values), (samples, len(values)))].mean(axis=1)
  return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def tune(out: str, seeds: int, queries: int) -> dict:
  table = load_table("cifar100")
  seed_ids = np.arange(1000, 1000 + seeds)
  rows = []
  for values in itertools.product(*TUNE_GRID.values()):
    setting = dict(zip(TUNE_GRID, values))
    start = time.time()
    best_R = curves(table, traces("enas", table, st.Budget(queries), seed_ids,
                                  controller_config(**setting)), queries)[:, -1]
    rows.append({**setting, "mean": float(best_R.mean()), "std": float(best_R.std(ddof=1))})
    print(f"{setting}: {rows[-1]['mean']:.3f} +- {rows[-1]['std']:.3f}  "
          f"({time.time() - start:.1f} s)", flush=True)
  rows.sort(key=lambda r: -r["mean"])
  baselines = {s: float(curves(table, traces(s, table, st.Budget(queries), seed_ids,
                                             controller_config()), queries)[:, -1].mean())
               for s in ("evolution", "random")}
  result = {"dataset": "cifar100", "seeds": [int(seed_ids[0]), int(seed_ids[-1])],
            "queries": queries, "grid": TUNE_GRID, "ranking": rows, "baselines": baselines}
  lines = [f"# Tuning ENAS's controller on NAS-Bench-201 CIFAR-100 ({seeds} seeds "
           f"{seed_ids[0]}-{seed_ids[-1]}, {queries} queries)", "",
           f"Mean best-found validation accuracy (%); regularized evolution "
           f"{baselines['evolution']:.3f}, random search {baselines['random']:.3f} on the same "
           f"seeds.", "", "| rank | " + " | ".join(TUNE_GRID) + " | mean | std |",
           "|---:|" + "---:|" * (len(TUNE_GRID) + 2)]
  lines += [f"| {i + 1} | " + " | ".join(str(r[k]) for k in TUNE_GRID)
            + f" | {r['mean']:.3f} | {r['std']:.3f} |" for i, r in enumerate(rows)]
  _write(out, "tuning", result, lines)
  return result


def compare(out: str, seeds: int, queries: int, free_repeats: bool = False) -> dict:
  seed_ids = np.arange(seeds)
  ctrl = controller_config()
  budget = st.Budget(queries, free_repeats=free_repeats)
  result: dict[str, Any] = {"seeds": seeds, "queries": queries, "free_repeats": free_repeats,
                            "controller": dataclasses.asdict(ctrl), "datasets": {}}
  for dataset in DATASETS:
    table = load_table(dataset)
    best = float(table.mean_acc_K[table.best_index])
    seconds = 100 * float(table.train_time_K.mean())  # 100 queries of the average cell
    entry: dict[str, Any] = {"optimum": best, "seconds_budget": seconds, "strategies": {}}
    curves_of = {}
    for strategy in STRATEGIES:
      runs = traces(strategy, table, budget, seed_ids, ctrl)
      c_RxQ = curves_of[strategy] = curves(table, runs, queries)
      fits = [st.within_seconds(table, t, seconds) for t in runs]
      timed = np.asarray([c[n - 1] if n else np.nan for c, n in zip(c_RxQ, fits)])
      entry["strategies"][strategy] = {
          "at": {q: _summary(c_RxQ[:, q - 1], best) for q in CHECKPOINTS if q <= queries},
          "at_seconds": {**_summary(timed, best), "queries_mean": float(np.mean(fits)),
                         "runs_out_of_queries": int(np.sum(np.asarray(fits) >= queries))},
          "runs_stopped_short": int(sum(len(t.index_Q) < queries for t in runs)),
          "mean_curve": c_RxQ.mean(axis=0).tolist()}
    entry["p_values_at_100"] = {
        f"{a} vs {b}": stats.permutation_test(curves_of[a][:, 99], curves_of[b][:, 99])
        for a, b in itertools.combinations(STRATEGIES, 2)} if queries >= 100 else {}
    result["datasets"][dataset] = entry
    print(f"{dataset}: " + "  ".join(f"{s} {entry['strategies'][s]['at'][100]['mean']:.2f}"
                                      for s in STRATEGIES if 100 <= queries), flush=True)
  name = "compare_free_repeats" if free_repeats else "compare"
  _write(out, name, result, _compare_lines(result))
  _plot(out, result, name)
  return result


def diagnose(out: str, seeds: int) -> dict:
  """Why the controller is (not) ahead, on the tuning dataset and seeds only: how much the policy
  moves (entropy), how many queries repeat a cell already queried, how the strategies compare at
  longer budgets, and whether the reward's scale matters."""
  table = load_table("cifar100")
  seed_ids = np.arange(1000, 1000 + seeds)
  ctrl, budgets = controller_config(), (100, 300, 1000)
  result: dict[str, Any] = {"dataset": "cifar100", "controller": dataclasses.asdict(ctrl),
                            "max_entropy": 6 * float(np.log(5)), "strategies": {}}
  for strategy in STRATEGIES:
    runs = traces(strategy, table, st.Budget(max(budgets)), seed_ids, ctrl)
    c_RxQ = curves(table, runs, max(budgets))
    repeats = [1 - len(np.unique(t.index_Q[:100])) / 100 for t in runs]
    entry = {"best_found": {q: _summary(c_RxQ[:, q - 1], float(table.mean_acc_K.max()))
                            for q in budgets},
             "repeated_queries_in_first_100": float(np.mean(repeats))}
    if runs[0].entropy_Q is not None:
      e_RxQ = np.stack([t.entropy_Q for t in runs])
      entry["entropy_at"] = {q: float(e_RxQ[:, q - 1].mean()) for q in (1, 25, 50, 100, 300, 1000)}
    free = traces(strategy, table, st.Budget(100, free_repeats=True), seed_ids, ctrl)
    entry["free_repeats_at_100"] = _summary(curves(table, free, 100)[:, -1],
                                            float(table.mean_acc_K.max()))
    result["strategies"][strategy] = entry
  space = get_space("nasbench201")
  result["reward_scale"] = {
      scale: float(curves(table, st.enas_traces(table, space, ctrl, st.Budget(100), seed_ids,
                                                scale), 100)[:, -1].mean())
      for scale in (0.1, 1.0, 10.0, 100.0)}
  lines = [f"# Why: ENAS's controller on NAS-Bench-201 CIFAR-100 (tuning seeds "
           f"{seed_ids[0]}-{seed_ids[-1]})", "", "| strategy | " + " | ".join(
               f"{q} queries" for q in budgets) + " | repeated queries in the first 100 |",
           "|---|" + "---:|" * (len(budgets) + 2)]
  lines[-2] = lines[-2][:-1] + "| 100 queries, repeats free |"
  for strategy, e in result["strategies"].items():
    free = e["free_repeats_at_100"]
    lines.append(f"| {strategy} | " + " | ".join(
        f"{e['best_found'][q]['mean']:.2f} [{e['best_found'][q]['ci95'][0]:.2f}, "
        f"{e['best_found'][q]['ci95'][1]:.2f}]" for q in budgets)
        + f" | {100 * e['repeated_queries_in_first_100']:.0f}% | {free['mean']:.2f} "
          f"[{free['ci95'][0]:.2f}, {free['ci95'][1]:.2f}] |")
  lines += ["", f"ENAS policy entropy (max {result['max_entropy']:.2f} nats) after q queries: "
            + ", ".join(f"{q}: {v:.2f}" for q, v in
                        result["strategies"]["enas"]["entropy_at"].items()),
            "", "ENAS best-found at 100 queries with the reward scaled: " + ", ".join(
                f"x{k:g}: {v:.2f}" for k, v in result["reward_scale"].items())]
  _write(out, "diagnose", result, lines)
  return result


def _summary(values: np.ndarray, best: float) -> dict[str, float]:
  lo, hi = bootstrap_ci(values)
  return {"mean": float(values.mean()), "std": float(values.std(ddof=1)), "ci95": [lo, hi],
          "regret": float(best - values.mean()),
          "found_optimum": float(np.mean(np.isclose(values, best)))}


def _compare_lines(result: dict) -> list[str]:
  protocol = ("a cell queried before is read from the run's memory: the budget counts distinct "
              "cells" if result["free_repeats"] else "every sample is a query (NAS-Bench-201's "
              "protocol)")
  lines = [f"Controller (configs/nasbench201.py, tuned on CIFAR-100 only): "
           f"{json.dumps(result['controller'])}", "", f"Protocol: {protocol}.", ""]
  for dataset, entry in result["datasets"].items():
    lines += [f"## {dataset} (best cell {entry['optimum']:.2f}%; {result['seeds']} seeds)", "",
              "| strategy | " + " | ".join(f"{q} queries" for q in CHECKPOINTS
                                           if q <= result["queries"])
              + f" | {entry['seconds_budget'] / 3600:.0f} simulated h |",
              "|---|" + "---:|" * (sum(q <= result["queries"] for q in CHECKPOINTS) + 1)]
    for strategy, s in entry["strategies"].items():
      cells = [f"{v['mean']:.2f} [{v['ci95'][0]:.2f}, {v['ci95'][1]:.2f}]"
               for v in s["at"].values()]
      timed = s["at_seconds"]
      cells.append(f"{timed['mean']:.2f} [{timed['ci95'][0]:.2f}, {timed['ci95'][1]:.2f}]")
      lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    lines += ["", "Regret at 100 queries (percentage points): " + ", ".join(
        f"{s} {v['at'][100]['regret']:.2f}" for s, v in entry["strategies"].items()
        if 100 in v["at"]), "Permutation tests at 100 queries (two-sided p): " + ", ".join(
        f"{k} {p:.4f}" for k, p in entry["p_values_at_100"].items()), ""]
  return lines


def _plot(out: str, result: dict, name: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, len(result["datasets"]), figsize=(15, 4))
  for ax, (dataset, entry) in zip(axes, result["datasets"].items()):
    for strategy, s in entry["strategies"].items():
      regret = entry["optimum"] - np.asarray(s["mean_curve"])
      ax.plot(np.arange(1, len(regret) + 1), regret, label=strategy)
    ax.set(title=f"NAS-Bench-201 {dataset}", xlabel="queries", ylabel="regret (% points)",
           xscale="log", yscale="log")
    ax.legend()
  fig.tight_layout()
  write_figure(fig, os.path.join(out, f"{name}.png"), dpi=110)
  plt.close(fig)


def _write(out: str, name: str, result: dict, lines: list[str]) -> None:
  output_folder(out)  # written whole or not at all: a full disk keeps the earlier files
  write_atomically(os.path.join(out, f"{name}.json"), json.dumps(result, indent=1))
  write_atomically(os.path.join(out, f"{name}.md"), "\n".join(lines) + "\n")
  print("\n".join(lines))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("command", choices=("tune", "compare", "diagnose"))
  parser.add_argument("--out", default="experiments/results/nasbench201")
  parser.add_argument("--seeds", type=int, default=100)
  parser.add_argument("--queries", type=int, default=0, help="0: 100 (tune), 300 (compare)")
  parser.add_argument("--free_repeats", action="store_true",
                      help="compare: a cell queried before costs nothing (distinct-cell budget)")
  args = parser.parse_args()
  if args.command == "tune":
    tune(args.out, args.seeds, args.queries or 100)
  elif args.command == "diagnose":
    diagnose(args.out, args.seeds)
  else:
    compare(args.out, args.seeds, args.queries or 300, args.free_repeats)


if __name__ == "__main__":  # stops, full disks and mistakes in one paragraph
  run_main(lambda _: main(), resumes=False)([])
