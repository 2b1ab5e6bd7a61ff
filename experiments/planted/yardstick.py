r"""How well the trained-alone yardstick agrees with itself, and the searches' Kendall tau against
the yardstick averaged over initialisation seeds (nothing retrained: the searches' shared-weight
perplexities are re-read from their results).

  python -m experiments.planted.probe --out=workdirs/science/probes/yardstick_seed1 \
      --cells=30 --noise_seeds=2 --seed=1           # the 31 cells again, from another init
  python -m experiments.planted.yardstick --yardstick=workdirs/science/ranking_planted \
      --seed_probe=workdirs/science/probes/yardstick_seed1 \
      --searches experiments/results/science/seeds/planted_defaults_lr075_seed{0..19}.json \
      --out=experiments/results/science/yardstick_seeds

`--yardstick` is the ranking study whose trained-alone figures every search was scored against
(initialisation seed 0); each `--seed_probe` is a `probe` run of the same cells from another seed
(`probe --seed`). Reported: Kendall tau between every two seeds' figures (how well one
trained-alone ranking predicts another: the ceiling for any shared-weight ranking scored against
one seed), the per-cell noise, the benchmark's figures on the seeds' mean, and each search's tau
against the single yardstick (as recorded) and against the mean, with a paired sign-flip
permutation test of the difference. Writes OUT.md and OUT.json.
"""
from __future__ import annotations

import argparse
import itertools
import os
from typing import Any

import numpy as np

from enas_jax.io.errors import UserError, run_main
from experiments.planted import common, ranking, stats


def read_json(path: str, flag: str) -> dict[str, Any]:
  """A study's results: `path` a results JSON file or a folder holding results.json/probe.json
  (read by `common.read_json`)."""
  if os.path.isdir(path):
    names = [n for n in ("results.json", "probe.json") if os.path.isfile(os.path.join(path, n))]
    if not names:
      raise UserError(f"{flag} {path}: the folder has no results.json or probe.json; give a "
                      f"finished study's --out folder or its JSON file.")
    path = os.path.join(path, names[0])
  if not os.path.isfile(path):
    raise UserError(f"{flag} {path}: no such file or folder.")
  return common.read_json(path, flag)


def seed_table(yardstick: dict[str, Any], probes: list[dict[str, Any]]) -> dict[str, list[float]]:
  """{cell: [trained-alone perplexity from the yardstick's seed, then each probe's]}."""
  table = {r["cell"]: [r["standalone_ppl"]] for r in yardstick["rows"]}
  for i, probe in enumerate(probes):
    got = {r["cell"]: r["standalone_ppl"] for r in probe["rows"]}
    missing = sorted(set(table) - set(got))
    if missing:
      raise UserError(f"--seed_probe #{i + 1} lacks {len(missing)} of the yardstick's cells "
                      f"(e.g. {missing[0]!r}): run the probe with --cells={len(table) - 1} so "
                      f"that it trains the ranking study's cells.")
    for cell in table:
      table[cell].append(got[cell])
  return table


def agreement(table: dict[str, list[float]]) -> list[dict[str, Any]]:
  """Kendall tau (and p) between every two seeds' figures over the cells."""
  seeds = len(next(iter(table.values())))
  columns = np.asarray(list(table.values())).T
  return [{"a": a, "b": b, "tau": stats.kendall_tau(columns[a], columns[b]),
           "p": stats.tau_p_value(columns[a], columns[b])}
          for a, b in itertools.combinations(range(seeds), 2)]


def rescore(searches: list[tuple[str, dict[str, Any]]], mean_ppl: dict[str, float]
            ) -> list[dict[str, Any]]:
  """Each search's tau against its own recorded yardstick and against the seeds' mean."""
  rows = []
  for name, search in searches:
    cells = [r["cell"] for r in search["rows"]]
    if set(cells) != set(mean_ppl):
      raise UserError(f"--searches {name}: its cells are not the yardstick's; score searches "
                      f"of the same study (ranking --standalone_from=the yardstick).")
    shared = [r["shared_ppl"] for r in search["rows"]]
    rows.append({"search": name,
                 "tau_single": stats.kendall_tau(shared, [r["standalone_ppl"]
                                                          for r in search["rows"]]),
                 "tau_mean": stats.kendall_tau(shared, [mean_ppl[c] for c in cells])})
  return rows


def summarize(yardstick: dict[str, Any], probes: list[dict[str, Any]],
              searches: list[tuple[str, dict[str, Any]]],
              names: list[str] | None = None) -> dict[str, Any]:
  """`names`: the yardstick's and each probe's, for the tables (default: their positions)."""
  table = seed_table(yardstick, probes)
  mean_ppl = {cell: float(np.mean(v)) for cell, v in table.items()}
  per_cell_sd = [float(np.std(v, ddof=1)) for v in table.values()]
  mean_rows = [{"cell": r["cell"], "teacher": r.get("teacher", False),
                "standalone_ppl": mean_ppl[r["cell"]]} for r in yardstick["rows"]]
  noise = yardstick.get("noise_ppl_seeds")  # one cell's init noise, as the study measured it
  sd_of_mean = [x / np.sqrt(len(table[c])) for x, c in zip(per_cell_sd, table)]
  out: dict[str, Any] = {
      "seeds": len(next(iter(table.values()))), "cells": len(table), "table": table,
      "names": names or [str(i) for i in range(len(probes) + 1)],
      "agreement": agreement(table), "per_cell_sd_median": float(np.median(per_cell_sd)),
      "per_cell_sd_max": float(np.max(per_cell_sd)),
      "mean_yardstick": ranking.standalone_figures(
          mean_rows, None, yardstick.get("corpus", {}).get("teacher_ppl_valid")),
      "single_yardstick": ranking.standalone_figures(
          yardstick["rows"], noise, yardstick.get("corpus", {}).get("teacher_ppl_valid")),
      "sd_of_mean_median": float(np.median(sd_of_mean))}
  if searches:
    rows = rescore(searches, mean_ppl)
    single, mean = [r["tau_single"] for r in rows], [r["tau_mean"] for r in rows]
    out["searches"] = rows
    out["tau_single_mean_sd"] = stats.mean_std(single)
    out["tau_mean_mean_sd"] = stats.mean_std(mean)
    out["paired_p"] = stats.paired_sign_test([m - s for m, s in zip(mean, single)])
  return out


def markdown(result: dict[str, Any]) -> str:
  lines = [f"Trained-alone yardstick from {result['seeds']} initialisation seeds, "
           f"{result['cells']} cells.", "", "| seeds | Kendall tau between them | p |",
           "|---|---:|---:|"]
  names = result["names"]
  lines += [f"| {names[a['a']]} vs {names[a['b']]} | {a['tau']:.3f} | {a['p']:.4f} |"
            for a in result["agreement"]]
  m, s = result["mean_yardstick"], result["single_yardstick"]
  lines += ["", f"Per-cell sd across seeds: median {result['per_cell_sd_median']:.4f}, "
            f"largest {result['per_cell_sd_max']:.4f}. Teacher's cell: rank "
            f"{s.get('teacher_rank')} of {result['cells']} on {names[0]}, "
            f"{m.get('teacher_rank')} on the seeds' mean."]
  if "searches" in result:
    (sm, ss), (mm, ms) = result["tau_single_mean_sd"], result["tau_mean_mean_sd"]
    lines += ["", "| search | tau as recorded (against its own study's yardstick) | "
              "tau against the mean of the yardsticks above |",
              "|---|---:|---:|"]
    lines += [f"| {r['search']} | {r['tau_single']:.3f} | {r['tau_mean']:.3f} |"
              for r in result["searches"]]
    lines += [f"| **mean +- sd ({len(result['searches'])} searches)** | {sm:.3f} +- {ss:.3f} | "
              f"{mm:.3f} +- {ms:.3f} |", "",
              f"Paired sign-flip permutation test of equal mean: p = {result['paired_p']:.4f}"]
  return "\n".join(lines) + "\n"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--yardstick", required=True, help="the ranking study (folder or JSON)")
  parser.add_argument("--seed_probe", action="append", default=[], required=True,
                      help="a probe of the same cells from another seed (folder or JSON)")
  parser.add_argument("--searches", nargs="*", default=[],
                      help="searches scored against --yardstick (folders or JSON files)")
  parser.add_argument("--out", required=True, help="writes OUT.md and OUT.json")
  args = parser.parse_args()
  result = summarize(read_json(args.yardstick, "--yardstick"),
                     [read_json(p, "--seed_probe") for p in args.seed_probe],
                     [(os.path.basename(p).removesuffix(".json"), read_json(p, "--searches"))
                      for p in args.searches],
                     [args.yardstick.rstrip("/")] + [p.rstrip("/") for p in args.seed_probe])
  common.write_report(args.out, result, markdown(result))


if __name__ == "__main__":  # stops, full disks and mistakes in one paragraph
  run_main(lambda _: main(), resumes=False)([])
