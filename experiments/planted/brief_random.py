r"""Random search without weight sharing: cells drawn uniformly, each trained alone briefly (the
report's training alone, annealed), the best one taken as the answer, at one or more budgets
(cells a seed) around the compute of one ENAS search. The baseline a search with shared weights
must beat (Li & Talwalkar 2019 compare against it too), measured against a `compare` study's
ENAS answers on the same yardstick recipe.

  python -m experiments.planted.brief_random --out=workdirs/science/v10/brief_budgets \
      --compare=workdirs/science/v3/compare --seeds=20 --cells=4 --cells=8 --cells=16 \
      --cells=32 --steps=200 --standalone_from=workdirs/science/v3/compare \
      --standalone_from=workdirs/science/v9/brief_random --verify_reused=2   # 31 min, 2 cores
  # 2026-12-04: trained alone 27.421 / 27.384 / 27.374 / 27.370 at 4 / 8 / 16 / 32 cells; the
  # compare study's ENAS answers 27.349 +- 0.037, better at p = 0.00002 / 0.008 / 0.039 / 0.057
  # (science.md, section 11); without --standalone_from every answer is trained here (~12 min
  # more for compare's 40)

Per seed s: max(--cells) distinct cells drawn uniformly (`common.random_cells`, seed 1000 + s),
each trained alone for `--steps` steps with the learning rate annealed linearly to 0 from fresh
weights (`enas_jax.report.scoring.each_trained_alone`, report seed s); a budget of k cells is
the first k of them (each cell's training is independent of the others), its answer the best of
those by the brief figure, trained alone with the study's recipe (`common.StandaloneTrainer`, as
`compare` trains every answer). Reported per budget: each answer, its perplexity trained alone,
its decision distance to the teacher's cell, the wall time of its brief trainings (the one
compilation included), and a two-sided permutation test against the `--compare` study's ENAS (and
random-search) answers, trained alone by the same code. `--standalone_from` reuses figures
trained alone by earlier studies (compare's answers, a brief_random's): only after
`--verify_reused` of them, retrained here, match to the bit (the recipe's rounding moves with the
code). Writes results.json (with every figure trained alone, `standalone_by_cell`) and table.md
to --out.
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Any, Callable

import numpy as np

from enas_jax.io.errors import UserError, run_main
from enas_jax.io.workdir import output_folder, write_atomically
from enas_jax.report import scoring
from experiments.planted import common, stats

CELL_SEED = 1000  # the cells of seed s: common.random_cells(..., seed=CELL_SEED + s)


def reused_figures(folders: list[str]) -> dict[str, float]:
  """Cells' figures trained alone with the study's recipe, from earlier studies' results.json
  (`compare`'s runs, a `brief_random` study's runs and `standalone_by_cell`), by cell."""
  known: dict[str, float] = {}
  for folder in folders:
    earlier = common.read_results(folder, "--standalone_from")
    rows = earlier.get("runs", []) + [r for b in earlier.get("budgets", {}).values()
                                      for r in b["runs"]]
    known.update({r["cell"]: r["standalone_ppl"] for r in rows if "standalone_ppl" in r})
    known.update(earlier.get("standalone_by_cell", {}))
  return known


def check_reused(known: dict[str, float], alone: Callable[[str], float], count: int) -> None:
  """Retrains the first `count` reused cells (sorted) and asks for the same figure to the last
  bit: reused figures are valid only while the recipe's code computes them unchanged."""
  for cell in sorted(known)[:count]:
    again = alone(cell)
    if again != known[cell]:
      raise UserError(f"--standalone_from: cell {cell} trained alone now gives {again!r}, the "
                      f"earlier study recorded {known[cell]!r}: the recipe's code has changed "
                      f"since; rerun without --standalone_from.")


def draw_and_train(search: Any, num_nodes: int, seed: int, count: int,
                   steps: int) -> dict[str, Any]:
  """Seed `seed`'s `count` uniform cells, each trained alone `steps` annealed steps, and the
  wall time after each (the one compilation included in the first)."""
  drawn = common.random_cells(num_nodes, count, seed=CELL_SEED + seed, exclude=set())
  started, brief, seconds_after = time.time(), [], []
  for figure in scoring.each_trained_alone(search, [common.arch_of(c) for c in drawn], steps,
                                           "linear", seed):
    brief.append(float(figure))
    seconds_after.append(time.time() - started)
  return {"seed": seed, "cells": drawn, "brief_ppl": brief, "seconds_after": seconds_after}


def budget_runs(draws: list[dict[str, Any]], budget: int, alone: Callable[[str], float],
                teacher: Any) -> list[dict[str, Any]]:
  """Each seed's answer at `budget` cells: the best of its first `budget` brief figures (cells
  are drawn and trained independently of how many follow, so a prefix is that budget's run)."""
  rows = []
  for d in draws:
    best = int(np.argmin(d["brief_ppl"][:budget]))
    a = common.arch_of(d["cells"][best])
    rows.append({"seed": d["seed"], "cell": d["cells"][best], "brief_ppl": d["brief_ppl"][best],
                 "standalone_ppl": alone(d["cells"][best]),
                 "search_seconds": d["seconds_after"][budget - 1],
                 "distance_to_teacher": stats.cell_distance(a.prev_N, a.act_N, teacher.prev_N,
                                                            teacher.act_N)})
  return rows


def run(out: str, compare_dir: str, seeds: int, budgets: list[int], steps: int,
        standalone_from: tuple[str, ...] = (), verify_reused: int = 1) -> dict[str, Any]:
  earlier = common.read_results(compare_dir, "--compare")
  scale = common.scale_of(earlier["scale"])
  config = common.search_config(scale, 0, "random")
  search = scoring.search_run(config.to_dict(), "")  # its task only: nothing runs or is written
  teacher = common.arch_of(search.task.corpus.info["teacher_arch"])
  trainer = common.StandaloneTrainer(common.search_config(scale, 0, "enas"), search.task.corpus,
                                     scale, keep_in=out)
  known = reused_figures(list(standalone_from))
  standalone: dict[str, float] = {}

  def retrain(cell: str) -> float:  # the study's recipe
    return float(trainer.valid_perplexity(common.arch_of(cell)))

  def alone(cell: str) -> float:  # reused or retrained, once per distinct cell
    if cell not in standalone:
      standalone[cell] = known[cell] if cell in known else retrain(cell)
    return standalone[cell]

  check_reused(known, retrain, verify_reused)
  draws = []
  for seed in range(seeds):
    draws.append(draw_and_train(search, config.model.num_nodes, seed, max(budgets), steps))
    print(f"seed {seed}: {max(budgets)} cells in {draws[-1]['seconds_after'][-1]:.0f} s",
          flush=True)
  result = {"compare": compare_dir, "scale": earlier["scale"], "seeds": seeds, "steps": steps,
            "standalone_from": list(standalone_from), "verified_reused": verify_reused,
            "draws": draws, "budgets": {}}
  for budget in sorted(set(budgets)):
    rows = budget_runs(draws, budget, alone, teacher)
    mine = [r["standalone_ppl"] for r in rows]
    entry = {"runs": rows, "standalone_ppl": dict(zip(("mean", "std"), stats.mean_std(mine))),
             "against": {}}
    for method in ("enas", "random"):  # their answers, as retrained (or reused) here
      theirs = [alone(r["cell"]) for r in earlier["runs"] if r["method"] == method]
      recorded = [r["standalone_ppl"] for r in earlier["runs"] if r["method"] == method]
      mean, std = stats.mean_std(theirs)
      entry["against"][method] = {"runs": len(theirs), "mean": mean, "std": std,
                                  "recorded_mean": float(np.mean(recorded)),
                                  "p": stats.permutation_test(mine, theirs)}
    result["budgets"][str(budget)] = entry
  result["standalone_by_cell"] = standalone
  write_outputs(out, result)
  return result


def write_outputs(out: str, result: dict[str, Any]) -> None:
  output_folder(out)
  common.write_json(os.path.join(out, "results.json"), result)
  lines = [f"Random search without weight sharing: uniform cells per seed, each trained alone "
           f"{result['steps']} steps (lr annealed to 0), the best trained alone with the "
           f"study's recipe; against {result['compare']}.", ""]
  for budget, entry in result["budgets"].items():
    lines += [f"## {budget} cells a seed", "",
              "| seed | found cell | brief ppl | trained alone ppl | distance to teacher | "
              "brief trainings s |", "|---:|---|---:|---:|---:|---:|"]
    for r in entry["runs"]:
      lines.append(f"| {r['seed']} | `{r['cell']}` | {r['brief_ppl']:.2f} | "
                   f"{r['standalone_ppl']:.3f} | {r['distance_to_teacher']} | "
                   f"{r['search_seconds']:.0f} |")
    s = entry["standalone_ppl"]
    lines += ["", f"Trained alone: {s['mean']:.3f} +- {s['std']:.3f} over {len(entry['runs'])} "
              f"seeds."]
    for method, a in entry["against"].items():
      lines.append(f"Against the compare study's {method} answers ({a['runs']} runs, trained "
                   f"alone here: {a['mean']:.3f} +- {a['std']:.3f}; as recorded "
                   f"{a['recorded_mean']:.3f}): permutation p = {a['p']:.4f}.")
    lines.append("")
  write_atomically(os.path.join(out, "table.md"), "\n".join(lines))
  print("\n".join(lines))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", required=True)
  parser.add_argument("--compare", required=True, help="a compare study's --out folder")
  parser.add_argument("--seeds", type=int, default=20)
  parser.add_argument("--cells", type=int, action="append",
                      help="cells drawn per seed (repeat for several budgets: one run draws the "
                           "largest, a smaller budget is its prefix); default 16")
  parser.add_argument("--steps", type=int, default=200, help="brief training steps per cell")
  parser.add_argument("--standalone_from", action="append", default=[],
                      help="an earlier compare or brief_random --out folder whose cells' "
                           "figures trained alone are reused (repeatable)")
  parser.add_argument("--verify_reused", type=int, default=1,
                      help="reused figures retrained to check they are still exact")
  args = parser.parse_args()
  budgets = args.cells or [16]
  if min(args.seeds, args.steps, *budgets) < 1 or args.verify_reused < 0:
    raise UserError("--seeds, --cells and --steps must each be at least 1, --verify_reused "
                    "at least 0.")
  run(args.out, args.compare, args.seeds, budgets, args.steps,
      tuple(args.standalone_from), args.verify_reused)


if __name__ == "__main__":  # stops, full disks and mistakes in one paragraph
  run_main(lambda _: main(), resumes=False)([])
