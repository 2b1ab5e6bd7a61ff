r"""Random search without weight sharing: cells drawn uniformly, each trained alone briefly (the
report's training alone, annealed), the best one taken as the answer, at about the compute of one
ENAS search. The baseline a search with shared weights must beat (Li & Talwalkar 2019 compare
against it too), measured against a `compare` study's ENAS answers on the same yardstick recipe.

  python -m experiments.planted.brief_random --out=workdirs/science/v9/brief_random \
      --compare=workdirs/science/v3/compare --seeds=20 --cells=16 --steps=200   # ~30 min
  # 2026-12-04: 27.374 +- 0.035 trained alone; the compare study's ENAS answers 27.349 +-
  # 0.037 (p = 0.039), its random search with weight sharing 27.420 (science.md, section 11)

Per seed s: `--cells` distinct cells drawn uniformly (`common.random_cells`, seed 1000 + s),
each trained alone for `--steps` steps with the learning rate annealed linearly to 0 from fresh
weights (`enas_jax.report.scoring.trained_alone`, report seed s), the best by its validation
perplexity trained alone with the study's recipe (`common.StandaloneTrainer`, as `compare` trains
every answer). Reported: each answer, its perplexity trained alone, its decision distance to the
teacher's cell, the wall time of the brief trainings (against the ENAS searches' own), and a
two-sided permutation test against the `--compare` study's ENAS (and random-search) answers,
trained alone again by the same code (the recipe's rounding moves with the code).
Writes results.json and table.md to --out.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import numpy as np

from enas_jax.io.errors import UserError
from enas_jax.report import scoring
from experiments.planted import common, stats

CELL_SEED = 1000  # the cells of seed s: common.random_cells(..., seed=CELL_SEED + s)


def run(out: str, compare_dir: str, seeds: int, cells: int, steps: int) -> dict[str, Any]:
  earlier = common.read_results(compare_dir, "--compare")
  scale = common.scale_of(earlier["scale"])
  config = common.search_config(scale, 0, "random")
  search = scoring.search_run(config.to_dict(), "")  # its task only: nothing runs or is written
  corpus = search.task.corpus
  teacher = common.arch_of(corpus.info["teacher_arch"])
  trainer = common.StandaloneTrainer(common.search_config(scale, 0, "enas"), corpus, scale)
  rows, standalone = [], {}

  def alone(cell: str) -> float:  # the study's recipe, once per distinct cell
    if cell not in standalone:
      standalone[cell] = trainer.valid_perplexity(common.arch_of(cell))
    return standalone[cell]

  for seed in range(seeds):
    started = time.time()
    drawn = common.random_cells(config.model.num_nodes, cells, seed=CELL_SEED + seed,
                                exclude=set())
    brief = scoring.cells_trained_alone(search, [common.arch_of(c) for c in drawn], steps,
                                        "linear", seed)
    seconds = time.time() - started
    found = drawn[int(np.argmin(brief))]
    a = common.arch_of(found)
    rows.append({"seed": seed, "cell": found, "brief_ppl": float(min(brief)),
                 "standalone_ppl": alone(found), "search_seconds": seconds,
                 "distance_to_teacher": stats.cell_distance(a.prev_N, a.act_N, teacher.prev_N,
                                                            teacher.act_N)})
    print(f"seed {seed}: {found}  brief {min(brief):.2f}  alone {standalone[found]:.3f}  "
          f"({seconds:.0f} s)", flush=True)
  result = {"compare": compare_dir, "scale": earlier["scale"], "seeds": seeds, "cells": cells,
            "steps": steps, "runs": rows, "against": {}}
  mine = [r["standalone_ppl"] for r in rows]
  result["standalone_ppl"] = dict(zip(("mean", "std"), stats.mean_std(mine)))
  for method in ("enas", "random"):  # their answers retrained by today's code, as ours were
    theirs = [alone(r["cell"]) for r in earlier["runs"] if r["method"] == method]
    mean, std = stats.mean_std(theirs)
    recorded = [r["standalone_ppl"] for r in earlier["runs"] if r["method"] == method]
    result["against"][method] = {"runs": len(theirs), "mean": mean, "std": std,
                                 "recorded_mean": float(np.mean(recorded)),
                                 "p": stats.permutation_test(mine, theirs)}
  write_outputs(out, result)
  return result


def write_outputs(out: str, result: dict[str, Any]) -> None:
  os.makedirs(out, exist_ok=True)
  common.write_json(os.path.join(out, "results.json"), result)
  lines = [f"Random search without weight sharing: {result['cells']} uniform cells per seed, "
           f"each trained alone {result['steps']} steps (lr annealed to 0), the best trained "
           f"alone with the study's recipe; against {result['compare']}.", "",
           "| seed | found cell | brief ppl | trained alone ppl | distance to teacher | "
           "brief trainings s |", "|---:|---|---:|---:|---:|---:|"]
  for r in result["runs"]:
    lines.append(f"| {r['seed']} | `{r['cell']}` | {r['brief_ppl']:.2f} | "
                 f"{r['standalone_ppl']:.3f} | {r['distance_to_teacher']} | "
                 f"{r['search_seconds']:.0f} |")
  s = result["standalone_ppl"]
  lines += ["", f"Trained alone: {s['mean']:.3f} +- {s['std']:.3f} over {len(result['runs'])} "
            f"seeds."]
  for method, a in result["against"].items():
    lines.append(f"Against the compare study's {method} answers ({a['runs']} runs, trained "
                 f"alone again: {a['mean']:.3f} +- {a['std']:.3f}; as recorded "
                 f"{a['recorded_mean']:.3f}): permutation p = {a['p']:.4f}.")
  with open(os.path.join(out, "table.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", required=True)
  parser.add_argument("--compare", required=True, help="a compare study's --out folder")
  parser.add_argument("--seeds", type=int, default=20)
  parser.add_argument("--cells", type=int, default=16, help="cells drawn per seed")
  parser.add_argument("--steps", type=int, default=200, help="brief training steps per cell")
  args = parser.parse_args()
  try:
    if min(args.seeds, args.cells, args.steps) < 1:
      raise UserError("--seeds, --cells and --steps must each be at least 1.")
    run(args.out, args.compare, args.seeds, args.cells, args.steps)
  except UserError as err:
    sys.exit(f"error: {err}")


if __name__ == "__main__":
  main()
