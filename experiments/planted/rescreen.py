r"""A finished compare study again with the answer's screen (`search.screen_steps`): each search
re-finished from its last checkpoint with the screen on, each changed answer trained alone.

  python -m experiments.planted.rescreen --study=workdirs/science/v18/compare_ptb20 \
      --steps=32 --out=workdirs/science/v20/rescreen_ptb20

The screen acts only when a search names its answer (`run/screen.py`): the search's shared
weights, controller and derived cells do not depend on it. So a finished search resumed with
`search.screen_steps` set (a change its checkpoint accepts) re-finishes exactly as a search run
with it from the start would have finished (`tests/test_screen.py`), and a study's searches need
not be run again. Each search (the study's own, or the earlier study it reused rows from) is
copied to --out and re-finished there; an answer the screen changed is trained alone by the
study's recipe and seed (`common.StandaloneTrainer`), an unchanged one keeps its figure. Writes
results.json, table.md and compare.png (as `compare` does, plus each run's answer before the
screen and the screen's record) to --out.
"""
from __future__ import annotations

import argparse
import os
import shutil
import time

from enas_jax.io.errors import UserError, run_main
from enas_jax.io.workdir import output_folder
from experiments.planted import common, compare, stats


def search_folder(study: str, row: dict) -> str:
  """Where the study's row's search lives: its own folder, or the study it reused it from."""
  return os.path.join(row.get("reused_from") or study, "searches",
                      f"{row['method']}_seed{row['seed']}")


def refinish(study: str, row: dict, out: str, scale: common.Scale, settings: list[str],
             steps: int) -> tuple[dict, object]:
  """The row's search copied to `out` and re-finished with the screen: (its summary, its run)."""
  source = search_folder(study, row)
  workdir = os.path.join(out, "searches", os.path.basename(source))
  if not os.path.isdir(os.path.join(source, "checkpoints")):
    raise UserError(f"--study={study}: the search of {row['method']} seed {row['seed']} is not "
                    f"in {source} (no checkpoints): its folder was moved or deleted.")
  if not os.path.isdir(workdir):
    shutil.copytree(source, workdir, ignore=shutil.ignore_patterns("xla_cache"))
  data = common.read_json(os.path.join(source, "config.json"), "--study")["data"]
  config = common.override(common.search_config(scale, row["seed"], row["method"]),
                           settings + [f"search.screen_steps={steps}"])
  if data["source"] == "directory":  # PTB: the folder the search read
    config.data.source, config.data.dir = "directory", data["dir"]
  return common.run_search(config, workdir)


def run(study: str, out: str, steps: int) -> dict:
  started = time.time()
  earlier = common.read_results(study, "--study")
  scale = common.scale_of(earlier["scale"])
  alone = {r["cell"]: r["standalone_ppl"] for r in earlier["runs"]}
  trainer, rows = None, []
  for row in earlier["runs"]:
    summary, search = refinish(study, row, out, scale, list(earlier["settings"]), steps)
    cell = summary["authors"]
    if cell not in alone:
      if trainer is None:  # the study's yardstick: its recipe with seed 0, whatever the row's
        trainer = common.StandaloneTrainer(common.search_config(scale, 0, "enas"),
                                           search.task.corpus, scale, keep_in=out)
      alone[cell] = trainer.valid_perplexity(common.arch_of(cell))
    new = dict(row, cell=cell, shared_ppl=summary["valid_ppl_shared"],
               standalone_ppl=alone[cell], cell_before=row["cell"],
               standalone_before=row["standalone_ppl"], screen=summary["screen"])
    if "distance_to_teacher" in row:  # the planted corpus: the new answer's distance and gap
      t = common.arch_of(earlier["teacher_cell"])
      a = common.arch_of(cell)
      new["distance_to_teacher"] = stats.cell_distance(a.prev_N, a.act_N, t.prev_N, t.act_N)
      new["gap_to_optimal"] = alone[cell] - earlier["teacher_optimal_ppl"]
    rows.append(new)
    print(f"{row['method']:>6} seed {row['seed']}: {row['cell']} -> {cell}  alone "
          f"{row['standalone_ppl']:.2f} -> {alone[cell]:.2f}", flush=True)
  result = dict(earlier, study=study, screen_steps=steps, runs=rows,
                methods=compare.summarize(rows), seconds=time.time() - started,
                changed={m: sum(r["cell"] != r["cell_before"] for r in rows if r["method"] == m)
                         for m in compare.METHODS}, **compare.tests(rows))
  result["settings"] = list(earlier["settings"]) + [f"search.screen_steps={steps}"]
  compare.write_outputs(out, result)
  return result


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--study", required=True, help="a finished compare study's --out")
  parser.add_argument("--steps", type=int, default=32, help="search.screen_steps")
  parser.add_argument("--out", required=True)
  args = parser.parse_args()
  if args.steps < 1:
    raise UserError(f"--steps is {args.steps}; the screen needs at least 1 step.")
  output_folder(args.out)
  common.use_compilation_cache(args.out)
  result = run(args.study, args.out, args.steps)
  print(open(os.path.join(args.out, "table.md")).read())
  print(f"changed answers: {result['changed']}; ({result['seconds'] / 60:.1f} min; "
        f"{args.out}/results.json, table.md, compare.png)")


if __name__ == "__main__":  # stops, full disks and mistakes in one paragraph
  run_main(lambda _: main(), resumes=False)([])
