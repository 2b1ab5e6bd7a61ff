r"""The yardstick's cells trained by the final-training recipe from several seeds: how well that
recipe agrees with itself and with the yardstick, over all cells and among the yardstick's best.

  python -m experiments.planted.final_recipe \
      --cells=experiments/results/science/final_recipe/yardstick_cells.json \
      --train_seed=1 --runs=workdirs/science/v11/final_seed1 \
      --yardstick_seeds=experiments/results/science/yardstick_seeds.json \
      --out=experiments/results/science/final_recipe/self_agreement      # 15 min a seed, alone

`--cells` is the JSON the tenth session wrote (`science.md`, section 12): the 31 cells, their
yardstick figures, the teacher's index and their final-recipe figures from seed 0. Each `--runs`
folder holds one more seed's trainings, `cell<i>/summary.json` for the i-th cell; with
`--train_seed S` the cells missing there are trained first (`python -m enas_jax.train
--config=configs/ptb_final.py:planted --config.arch=CELL --config.seed=S`, one process a cell,
finished ones kept), so an interrupted study resumes. Reported: Kendall tau between every two
seeds of the final recipe and between each (and their mean) and the yardstick, over all cells and
among the yardstick's `--top` best; with `--yardstick_seeds` (the yardstick's own seeds,
`experiments.planted.yardstick`'s JSON) the same self-agreement of the yardstick, like for like;
the per-cell noise, the spread of the seeds' mean over it and the teacher's rank. Writes OUT.md
and OUT.json; with `--write_yardstick=DIR --yardstick_template=RANKING` also DIR/results.json,
the ranking study's results with each cell's figure the final recipe's mean (a yardstick for
`short_alone --yardstick=DIR`).

On Penn Treebank at CPU scale (the 30 cells of `ranking --corpus=ptb`, no teacher, no seed 0 on
file), `--ranking` takes the cells and their yardstick figures from that study and `--set`
passes fields to every training:

  python -m experiments.planted.final_recipe --ranking=workdirs/science/ranking_ptb \
      --set=data.source=directory --set=data.dir=workdirs/science/ptb_corpus \
      --train_seed=0 --runs=workdirs/science/v12/ptb_final_seed0 \
      --train_seed=1 --runs=workdirs/science/v12/ptb_final_seed1 \
      --out=experiments/results/science/final_recipe/ptb_self_agreement   # 34 min a seed
"""
from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
from typing import Any, Sequence

import numpy as np

from enas_jax.io.errors import UserError, run_main
from enas_jax.io.workdir import output_folder
from enas_jax.report import versus
from experiments.planted import common, stats
from experiments.planted.yardstick import read_json

RECIPE = "configs/ptb_final.py:planted"  # the final training every cell gets (+ any --set)


def read_cells(path: str) -> dict[str, Any]:
  """The tenth session's JSON: cells, yardstick_ppl, teacher_index, final_recipe_valid_ppl."""
  data = read_json(path, "--cells")
  needed = ("cells", "yardstick_ppl", "teacher_index", "final_recipe_valid_ppl")
  missing = [k for k in needed if k not in data]
  if missing:
    raise UserError(f"--cells {path}: lacks {', '.join(missing)}; give the final-recipe study's "
                    f"yardstick_cells.json (experiments/results/science/final_recipe/).")
  return data


def cells_to_train(cells: str, ranking: str) -> dict[str, Any]:
  """The cells and their yardstick figures from exactly one of --cells and --ranking."""
  if bool(cells) == bool(ranking):
    raise UserError("give exactly one of --cells (the planted study's yardstick_cells.json) and "
                    "--ranking (a ranking study whose cells to train, e.g. "
                    "workdirs/science/ranking_ptb).")
  return read_cells(cells) if cells else cells_of_ranking(ranking)


def cells_of_ranking(path: str) -> dict[str, Any]:
  """A ranking study's cells as `read_cells` gives them: its rows' cells and trained-alone
  figures, the teacher's index (None without one); no final-recipe figures of its own."""
  rows = read_json(path, "--ranking").get("rows")
  if not rows or any("standalone_ppl" not in r for r in rows):
    raise UserError(f"--ranking {path}: no rows with trained-alone figures; give a finished "
                    f"ranking study's --out folder (e.g. workdirs/science/ranking_ptb).")
  teachers = [i for i, r in enumerate(rows) if r.get("teacher")]
  return {"cells": [r["cell"] for r in rows],
          "yardstick_ppl": [float(r["standalone_ppl"]) for r in rows],
          "teacher_index": teachers[0] if teachers else None}


def train_missing(cells: Sequence[str], folder: str, seed: int, settings: Sequence[str] = ()
                  ) -> None:
  """Trains each cell with the final recipe into folder/cell<i> unless it has finished there;
  `settings` (`field=value`) are passed as `--config.field=value`."""
  for i, cell in enumerate(cells):
    workdir = os.path.join(folder, f"cell{i}")
    if os.path.isfile(os.path.join(workdir, "summary.json")):
      continue
    print(f"# training cell {i} ({cell}), seed {seed}", flush=True)
    # a cell whose training diverges is trained to the end and recorded as it ends, as before
    # the final training learned to stop on a non-finite validation figure
    subprocess.run([sys.executable, "-m", "enas_jax.train",
                    f"--config={RECIPE}", f"--config.arch={cell}",
                    f"--config.seed={seed}", f"--workdir={workdir}",
                    "--config.train.stop_on_divergence=False",
                    *[f"--config.{setting}" for setting in settings]], check=True)


def read_runs(cells: Sequence[str], folder: str) -> list[float]:
  """Each cell's final validation perplexity from folder/cell<i>/summary.json (read as
  `enas_jax.compare` reads trainings; a missing one: add --train_seed)."""
  runs = versus.read_runs([os.path.join(folder, f"cell{i}") for i in range(len(cells))], "runs")
  for (path, summary), cell in zip(runs.items(), cells):
    if summary.get("model", "").find(f"[{cell}]") < 0:
      raise UserError(f"--runs: {path} trained {summary.get('model')!r}, not {cell!r}; the "
                      f"folder belongs to another cell list.")
  return [float(s["valid_ppl"]) for s in runs.values()]


def _tau(a: Sequence[float], b: Sequence[float], idx: Sequence[int]) -> float:
  return stats.kendall_tau([a[i] for i in idx], [b[i] for i in idx])


def agreements(columns: list[Sequence[float]], names: list[str], idx_all: Sequence[int],
               idx_top: Sequence[int]) -> list[dict[str, Any]]:
  """Kendall tau between every two columns, over all cells and over the `idx_top` cells."""
  return [{"a": names[a], "b": names[b], "tau_all": _tau(columns[a], columns[b], idx_all),
           "p_all": stats.tau_p_value(columns[a], columns[b]),
           "tau_top": _tau(columns[a], columns[b], idx_top),
           "p_top": stats.tau_p_value([columns[a][i] for i in idx_top],
                                      [columns[b][i] for i in idx_top])}
          for a, b in itertools.combinations(range(len(columns)), 2)]


def rescore(searches: list[tuple[str, dict[str, Any]]], cells: Sequence[str],
            yardstick_ppl: Sequence[float], final_ppl: Sequence[float], idx_top: Sequence[int]
            ) -> dict[str, Any]:
  """Each search's shared-weight figures (a ranking study's rows) against the yardstick and
  against the final recipe, over all cells and the top ones, with paired tests between the two."""
  rows = []
  for name, search in searches:
    shared = {r["cell"]: r["shared_ppl"] for r in search["rows"]}
    if set(shared) != set(cells):
      raise UserError(f"--searches {name}: its cells are not these {len(cells)}; give searches "
                      f"scored on the same cells (ranking --standalone_from=the yardstick).")
    column = [shared[c] for c in cells]
    rows.append({"search": name,
                 **{f"tau_{what}_{part}": _tau(column, ref, idx)
                    for what, ref in (("yardstick", yardstick_ppl), ("final", final_ppl))
                    for part, idx in (("all", range(len(cells))), ("top", idx_top))}})
  out: dict[str, Any] = {"searches": rows}
  for part in ("all", "top"):
    yard, final = ([r[f"tau_{w}_{part}"] for r in rows] for w in ("yardstick", "final"))
    out[f"tau_yardstick_{part}"], out[f"tau_final_{part}"] = (stats.mean_std(yard),
                                                               stats.mean_std(final))
    out[f"paired_p_{part}"] = stats.paired_sign_test([y - f for y, f in zip(yard, final)])
  return out


def summarize(data: dict[str, Any], seeds: list[list[float]], top: int,
              yardstick_table: dict[str, list[float]] | None = None,
              yardstick_names: Sequence[str] = (),
              searches: list[tuple[str, dict[str, Any]]] = ()) -> dict[str, Any]:
  """`seeds`: the final recipe's figures from each seed, seed 0 (data's) first;
  `yardstick_table`: {cell: the yardstick's figure from each of its runs}, named by
  `yardstick_names` (default: their positions); `searches`: (name, ranking study) pairs whose
  shared-weight figures are scored against the yardstick's mean (its runs' mean when given) and
  the final recipe's mean."""
  cells, yard = data["cells"], np.asarray(data["yardstick_ppl"])
  if len(seeds) < 2:
    raise UserError("the final recipe's agreement with itself needs two seeds at least: give "
                    "--runs with a second seed's trainings.")
  missing = [c for c in cells if yardstick_table is not None and c not in yardstick_table]
  if missing:
    raise UserError(f"--yardstick_seeds lacks {len(missing)} of the cells (e.g. {missing[0]!r}):"
                    f" give the yardstick study of the same {len(cells)} cells.")
  table = np.asarray(seeds).T  # [cells, seeds]
  mean = table.mean(axis=1)
  idx_all, idx_top = list(range(len(cells))), [int(i) for i in np.argsort(yard)[:top]]
  names = [f"final seed {s}" for s in range(table.shape[1])]
  cols = [table[:, s] for s in range(table.shape[1])]
  sd = table.std(axis=1, ddof=1)
  teacher = data["teacher_index"]
  rank = lambda v: None if teacher is None else int(np.sum(np.asarray(v) < v[teacher])) + 1
  out: dict[str, Any] = {
      "cells": cells, "top": top, "table": table.tolist(), "mean": mean.tolist(),
      "final_vs_final": agreements(cols, names, idx_all, idx_top),
      "final_vs_yardstick": agreements([yard] + cols + [mean], ["yardstick"] + names +
                                       ["final mean"], idx_all, idx_top)[:table.shape[1] + 1],
      "per_cell_sd_median": float(np.median(sd)), "per_cell_sd_max": float(np.max(sd)),
      "spread_of_mean": float(np.median(mean) - np.min(mean)),
      "spread_top_of_mean": float(np.max(mean[idx_top]) - np.min(mean[idx_top])),
      "teacher_rank_per_seed": [rank(c) for c in cols], "teacher_rank_mean": rank(mean)}
  out["spread_over_sd"] = out["spread_of_mean"] / out["per_cell_sd_median"]
  if yardstick_table is not None:
    ycols = list(np.asarray([yardstick_table[c] for c in cells]).T)
    names = list(yardstick_names) or [str(s) for s in range(len(ycols))]
    out["yardstick_vs_yardstick"] = agreements(ycols, [f"yardstick {n}" for n in names],
                                               idx_all, idx_top)
  if searches:
    yard_mean = (np.mean([yardstick_table[c] for c in cells], axis=1) if yardstick_table
                 else yard)
    out["rescored"] = rescore(list(searches), cells, list(yard_mean), list(mean), idx_top)
  return out


def mean_as_yardstick(template: dict[str, Any], cells: Sequence[str], mean: Sequence[float],
                      settings: Sequence[str] = ()) -> dict[str, Any]:
  """A ranking study's results (`template`, the yardstick's) with each row's trained-alone
  figure replaced by the final recipe's mean (trained with `settings`): a yardstick other
  studies read (`short_alone --yardstick=DIR`)."""
  recipe = ", ".join([RECIPE] + [f"--config.{s}" for s in settings])
  by_cell = dict(zip(cells, mean))
  rows = template["rows"]
  if {r["cell"] for r in rows} != set(by_cell):
    raise UserError("--yardstick_template: its cells are not the ones trained; give the ranking "
                    "study whose cells the final recipe trained.")
  return {**template, "rows": [{**r, "standalone_ppl": by_cell[r["cell"]]} for r in rows],
          "standalone_recipe": f"the final training ({recipe}), the mean over its seeds"}


def teacher_line(result: dict[str, Any]) -> str:
  if result["teacher_rank_mean"] is None:
    return " No teacher's cell among them."
  return (f" Teacher's cell: rank {', '.join(map(str, result['teacher_rank_per_seed']))} of "
          f"{len(result['cells'])} by seed, {result['teacher_rank_mean']} on the mean.")


def markdown(result: dict[str, Any]) -> str:
  k, n = result["top"], len(result["cells"])
  lines = [f"{n} cells; 'top' = the yardstick's {k} best (by its seed-0 figure).", "",
           f"| pair | Kendall tau, all {n} | p | Kendall tau, top {k} | p |",
           "|---|---:|---:|---:|---:|"]
  for group in ("final_vs_final", "final_vs_yardstick", "yardstick_vs_yardstick"):
    lines += [f"| {r['a']} vs {r['b']} | {r['tau_all']:.3f} | {r['p_all']:.4f} | "
              f"{r['tau_top']:.3f} | {r['p_top']:.4f} |" for r in result.get(group, [])]
  lines += ["", f"Final recipe: per-cell sd across seeds median {result['per_cell_sd_median']:.4f}"
            f", largest {result['per_cell_sd_max']:.4f}; the seeds' mean: spread (median - best) "
            f"{result['spread_of_mean']:.4f} = {result['spread_over_sd']:.1f} median sd; the top "
            f"{k} span {result['spread_top_of_mean']:.4f}." + teacher_line(result)]
  if "rescored" in result:
    r = result["rescored"]
    lines += ["", f"Shared-weight scores of {len(r['searches'])} searches: Kendall tau against",
              "", "| cells | the yardstick (mean of its runs) | "
              "the final recipe (mean of its seeds) | paired p |", "|---|---:|---:|---:|"]
    lines += [f"| {part} | {r[f'tau_yardstick_{part}'][0]:.3f} +- "
              f"{r[f'tau_yardstick_{part}'][1]:.3f} | {r[f'tau_final_{part}'][0]:.3f} +- "
              f"{r[f'tau_final_{part}'][1]:.3f} | {r[f'paired_p_{part}']:.4f} |"
              for part in ("all", "top")]
  return "\n".join(lines) + "\n"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--cells", default="", help="the final-recipe study's cells JSON")
  parser.add_argument("--ranking", default="",
                      help="instead of --cells: a ranking study's cells and yardstick figures")
  parser.add_argument("--set", action="append", default=[], dest="settings",
                      help="field=value passed to every training as --config.field=value")
  parser.add_argument("--runs", action="append", default=[], required=True,
                      help="a folder of one more seed's trainings (cell<i>/summary.json)")
  parser.add_argument("--train_seed", type=int, action="append", default=[],
                      help="train the missing cells of the matching --runs with this seed")
  parser.add_argument("--yardstick_seeds", help="the yardstick's own seeds (yardstick.py JSON)")
  parser.add_argument("--top", type=int, default=16, help="the yardstick's best cells compared")
  parser.add_argument("--searches", nargs="*", default=[],
                      help="ranking studies of these cells (folders or JSON) to rescore")
  parser.add_argument("--yardstick_template", default="",
                      help="with --write_yardstick: the ranking study whose rows to copy")
  parser.add_argument("--write_yardstick", default="",
                      help="writes DIR/results.json: the template with the final recipe's means")
  parser.add_argument("--out", required=True, help="writes OUT.md and OUT.json")
  args = parser.parse_args()
  try:
    if args.train_seed and len(args.train_seed) != len(args.runs):
      raise UserError(f"--train_seed given {len(args.train_seed)} times for {len(args.runs)} "
                      f"--runs: give one seed per --runs folder, in the same order, or none.")
    data = cells_to_train(args.cells, args.ranking)
    for folder, seed in zip(args.runs, args.train_seed):
      train_missing(data["cells"], folder, seed, args.settings)
    seeds = ([data["final_recipe_valid_ppl"]] if "final_recipe_valid_ppl" in data else []) + [
        read_runs(data["cells"], f) for f in args.runs]
    yard = read_json(args.yardstick_seeds, "--yardstick_seeds") if args.yardstick_seeds else {}
    if args.yardstick_seeds and "table" not in yard:
      raise UserError(f"--yardstick_seeds {args.yardstick_seeds}: no 'table'; give the JSON "
                      f"written by experiments.planted.yardstick.")
    searches = [(os.path.basename(p).removesuffix(".json"), read_json(p, "--searches"))
                for p in args.searches]
    result = summarize(data, seeds, args.top, yard.get("table"),
                       [os.path.basename(n) for n in yard.get("names", [])], searches)
  except subprocess.CalledProcessError as err:
    sys.exit(f"error: a training failed ({' '.join(err.cmd)}); its workdir keeps what it saved. "
             f"Rerun the same command to resume with the cells not yet finished.")
  except KeyboardInterrupt:
    sys.exit("interrupted: the finished cells' trainings are kept; rerun the same command to "
             "train the rest.")
  common.write_report(args.out, result, markdown(result))
  if args.write_yardstick:
    if not args.yardstick_template:
      raise UserError("--write_yardstick needs --yardstick_template (the ranking study of the "
                      "same cells, e.g. workdirs/science/ranking_planted).")
    template = read_json(args.yardstick_template, "--yardstick_template")
    yardstick = mean_as_yardstick(template, data["cells"], result["mean"], args.settings)
    output_folder(args.write_yardstick, "--write_yardstick")
    common.write_json(os.path.join(args.write_yardstick, "results.json"), yardstick)


if __name__ == "__main__":  # stops, full disks and mistakes in one paragraph
  run_main(lambda _: main(), resumes=False)([])
