"""Scratch probe (issue 19, science.md section 27): the controller learns under weights it shapes
(one cell a shared step, the defaults), and its candidates are picked under a second set of
weights trained with eight uniformly drawn cells a step (random search's weights with
shared.cells_per_step=8).

  PYTHONPATH=. python experiments/results/science/hybrid_probe/probe.py --out=DIR --seed=S

Per seed: (1) the defaults' ENAS search; (2) random search with C = 8 (8 epochs), the second
weights; (3) the hybrid: (1)'s search finished again with (2)'s final weights in place of its
own: every epoch's derived cell (as the defaults derive them) rescored under (2)'s weights, the
screen as in the defaults; (4) random search with C = 8 for 16 epochs (the hybrid's compute, all
on one weight set). Each answer trained alone with the studies' common recipe. Writes
DIR/seed{S}.json."""
import argparse
import json
import os
import shutil

from enas_jax.io import metrics
from enas_jax.run import config as run_config
from enas_jax.run import search as search_run
from experiments.planted import common, stats


def config(seed: int, kind: str, settings: list[str]):
  return common.override(common.search_config(common.scale_of("small"), seed, kind), settings)


def hybrid(enas_dir: str, out_dir: str, seed: int, model) -> dict:
  if not os.path.exists(out_dir):
    shutil.copytree(enas_dir, out_dir)
  cfg = run_config.search_config(config(seed, "enas", []))
  with open(os.path.join(out_dir, "stdout.txt"), "a") as out:
    run = search_run.SearchRun(cfg, out_dir, out, metrics.Progress(enabled=False))
    plain = run.restore_or_fresh

    def swapped():
      state, step = plain()
      state.model = model
      return state, step

    run.restore_or_fresh = swapped
    return run.execute()


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--out", required=True)
  parser.add_argument("--seed", type=int, required=True)
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  common.use_compilation_cache(args.out)
  s = args.seed
  d = lambda name: os.path.join(args.out, f"{name}_seed{s}")
  enas, _ = common.run_search(config(s, "enas", []), d("enas"))
  rnd8, rnd8_run = common.run_search(config(s, "random", ["shared.cells_per_step=8"]), d("rnd8"))
  hyb = hybrid(d("enas"), d("hybrid"), s, rnd8_run.final_state.model)
  rnd8x2, run2 = common.run_search(config(s, "random", ["shared.cells_per_step=8",
                                                         "search.epochs=16",
                                                         "shared.lr_decay_start_epoch=8"]),
                                   d("rnd8x2"))
  trainer = common.StandaloneTrainer(common.search_config(common.scale_of("small"), 0, "enas"),
                                     run2.task.corpus, common.scale_of("small"),
                                     keep_in=args.out)
  teacher = common.arch_of(run2.task.corpus.info["teacher_arch"])
  rows = {}
  for name, summary in (("enas", enas), ("rnd8", rnd8), ("hybrid", hyb), ("rnd8x2", rnd8x2)):
    a = common.arch_of(summary["authors"])
    rows[name] = {"cell": summary["authors"],
                  "standalone_ppl": trainer.valid_perplexity(a),
                  "distance_to_teacher": stats.cell_distance(a.prev_N, a.act_N, teacher.prev_N,
                                                             teacher.act_N)}
    print(name, rows[name], flush=True)
  with open(os.path.join(args.out, f"seed{s}.json"), "w") as f:
    json.dump({"seed": s, "rows": rows}, f, indent=1)


if __name__ == "__main__":
  main()
