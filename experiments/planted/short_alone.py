r"""How well does a short training alone rank cells? The report's check (`report.train_alone`),
measured on the yardstick's 31 cells: each cell trained alone for a few steps, as the report
trains it (`enas_jax.report.scoring.trained_alone`), under each learning-rate schedule, from
several initialisation seeds, then Kendall tau against the yardstick's figures (10 annealed
passes; `ranking_planted`).

  python -m experiments.planted.short_alone --yardstick=workdirs/science/ranking_planted \
      --steps=200 --schedule=linear --schedule=constant --seeds=0,1,2,3,4,5,6,7 \
      --out=experiments/results/science/short_alone            # 17 min on 2 cores
  # 2026-12-04: annealed tau 0.77 +- 0.04, held 0.62 +- 0.07, paired p = 0.008 (science.md,
  # section 10); on PTB (--yardstick=workdirs/science/ranking_ptb --corpus=ptb --seeds=0,1,2,
  # 5-10 min a seed) 0.64 against 0.60, p = 0.25
  # Against another yardstick of the same cells, reusing that study's trainings (rescored):
  #   ... --yardstick=workdirs/science/v12/ptb_final_mean --corpus=ptb \
  #   --reuse=experiments/results/science/short_alone_ptb.json --out=...

The runs are the quickstart's search task (the benchmark's corpus and student), unexecuted; a
seed is the report's `report.seed` (the fresh weights, the dropout keys); the training stream
is the search's (the same batches for every cell and seed). Reported per setting (steps,
schedule): tau per seed, over the 16 best cells of the yardstick too, the yardstick rank of the
cell the short training puts first, and a paired sign-flip test between the schedules' taus
over the seeds. Writes OUT.md and OUT.json.
"""
from __future__ import annotations

import argparse
import itertools
import os
import time
from typing import Any

import numpy as np

from enas_jax.io.errors import UserError, run_main
from enas_jax.report import scoring
from enas_jax.report import stats as report_stats
from enas_jax.run.config import TRAIN_ALONE_SCHEDULES
from experiments.planted import common, ranking, stats

TOP = 16  # the yardstick's best cells, for tau among good cells only


def setting_row(got: list[float], yard: list[float]) -> dict[str, Any]:
  top = list(np.argsort(yard)[:TOP])
  ranks = report_stats.ranks(yard)
  return {"ppl": got, "tau": report_stats.kendall_tau(got, yard),
          "tau_p": report_stats.tau_p_value(got, yard),
          "tau_top": report_stats.kendall_tau([got[i] for i in top], [yard[i] for i in top]),
          "first_cell_yardstick_rank": int(ranks[int(np.argmin(got))])}


def run(yardstick: str, steps_list: list[int], schedules: list[str], seeds: list[int],
        corpus: str = "planted", ptb_dir: str = "", ptb_corpus: str = "",
        earlier: dict[str, Any] | None = None) -> dict[str, Any]:
  """`earlier`: a previous result on the same cells and corpus (OUT.json, or another yardstick's
  study: `--reuse`), whose (steps, schedule, seed) rows are reused, their figures scored again
  against this yardstick."""
  known = common.read_results(yardstick, "--yardstick")
  ran_on = "planted" if known["corpus"]["name"] == "planted" else "ptb"
  if ran_on != corpus:
    raise UserError(f"--yardstick={yardstick} ran on the {ran_on} corpus, not {corpus}; pass "
                    f"--corpus={ran_on}.")
  cells, yard = [r["cell"] for r in known["rows"]], [r["standalone_ppl"] for r in known["rows"]]
  config = common.search_config(common.scale_of(known["scale"]), 0, "random")
  if corpus == "ptb":
    config.data.source = "directory"
    config.data.dir = ranking.prepare_ptb(ptb_dir, ptb_corpus)
  search = scoring.search_run(config.to_dict(), "")  # its task only: nothing runs or is written
  if earlier and (earlier["cells"], earlier.get("corpus", "planted")) != (cells, corpus):
    raise UserError(f"The study to reuse ran on other cells or another corpus than "
                    f"--yardstick={yardstick}; give another --out or --reuse.")
  reuse = {(s["steps"], s["schedule"], r["seed"]): r
           for s in (earlier or {}).get("settings", []) for r in s["seeds"]}
  out: dict[str, Any] = {"yardstick": yardstick, "corpus": corpus, "cells": cells,
                         "yardstick_ppl": yard, "settings": [], "tests": []}
  for steps, schedule in itertools.product(steps_list, schedules):
    per_seed = []
    for seed in seeds:
      row = reuse.get((steps, schedule, seed))
      if row is not None:
        row = {**setting_row(row["ppl"], yard), "seed": seed, "seconds": row["seconds"]}
      else:
        started = time.time()
        row = setting_row(scoring.cells_trained_alone(
            search, [common.arch_of(c) for c in cells], steps, schedule, seed), yard)
        row.update(seed=seed, seconds=time.time() - started)
      print(f"{steps} steps, {schedule}, seed {seed}: tau {row['tau']:.3f} (top {TOP}: "
            f"{row['tau_top']:.3f}), {row['seconds']:.0f} s", flush=True)
      per_seed.append(row)
    mean, sd = stats.mean_std([r["tau"] for r in per_seed])
    out["settings"].append({"steps": steps, "schedule": schedule, "tau_mean": mean,
                            "tau_sd": sd, "seeds": per_seed})
  for a, b in itertools.combinations(out["settings"], 2):
    diffs = [x["tau"] - y["tau"] for x, y in zip(a["seeds"], b["seeds"])]
    out["tests"].append({"a": name(a), "b": name(b), "mean_difference": float(np.mean(diffs)),
                         "paired_p": stats.paired_sign_test(diffs)})
  return out


def name(setting: dict[str, Any]) -> str:
  return f"{setting['steps']} steps, {setting['schedule']}"


def markdown(result: dict[str, Any]) -> str:
  lines = [f"Yardstick: {result['yardstick']} ({len(result['cells'])} cells, "
           f"{result['corpus']} corpus).", "",
           f"| setting | tau per seed | mean +- sd | tau among the {TOP} best, per seed | "
           "yardstick rank of its first cell |", "|---|---|---|---|---|"]
  for s in result["settings"]:
    def each(field: str, fmt: str = "{:.2f}") -> str:
      return ", ".join(fmt.format(r[field]) for r in s["seeds"])
    lines.append(f"| {name(s)} | {each('tau')} | {s['tau_mean']:.2f} +- {s['tau_sd']:.2f} | "
                 f"{each('tau_top')} | {each('first_cell_yardstick_rank', '{}')} |")
  lines.append("")
  lines += [f"Paired sign-flip test, {t['a']} against {t['b']}: mean difference "
            f"{t['mean_difference']:+.3f}, p = {t['paired_p']:.4f}" for t in result["tests"]]
  return "\n".join(lines) + "\n"


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--yardstick", required=True, help="a ranking study's --out folder")
  parser.add_argument("--steps", type=int, action="append", required=True)
  parser.add_argument("--schedule", action="append", choices=TRAIN_ALONE_SCHEDULES,
                      required=True)
  parser.add_argument("--seeds", default="0", help="comma-separated report seeds")
  parser.add_argument("--corpus", choices=("planted", "ptb"), default="planted",
                      help="the yardstick's corpus")
  parser.add_argument("--ptb_dir", default="../shared/data/ptb",
                      help="--corpus=ptb: PTB's valid.txt and test.txt (as `ranking` reads them)")
  parser.add_argument("--ptb_corpus", default="workdirs/science/ptb_corpus",
                      help="--corpus=ptb: the folder the study's PTB corpus is built in")
  parser.add_argument("--out", required=True,
                      help="writes OUT.md and OUT.json (rows already in OUT.json are reused)")
  parser.add_argument("--reuse", default="",
                      help="a study of the same cells against another yardstick (its OUT.json): "
                           "its rows are reused, scored against this one (when OUT.json is new)")
  args = parser.parse_args()
  try:
    seeds = [int(s) for s in args.seeds.split(",")]
  except ValueError:
    raise UserError(f"--seeds is {args.seeds!r}; give whole numbers separated by commas, e.g. "
                    f"--seeds=0,1,2.") from None
  if min(args.steps) < 1:
    raise UserError("--steps must be at least 1.")
  earlier = None
  if os.path.isfile(args.out + ".json"):
    earlier = common.read_json(args.out + ".json", "--out")
    if (earlier.get("yardstick"), earlier.get("corpus", "planted")) != (args.yardstick,
                                                                        args.corpus):
      raise UserError(f"{args.out}.json holds another yardstick's or corpus's study; give "
                      f"another --out.")
  elif args.reuse:
    earlier = common.read_json(args.reuse, "--reuse")
  result = run(args.yardstick, args.steps, args.schedule, seeds, args.corpus, args.ptb_dir,
               args.ptb_corpus, earlier)
  common.write_report(args.out, result, markdown(result))


if __name__ == "__main__":  # stops, full disks and mistakes in one paragraph
  run_main(lambda _: main(), resumes=False)([])
