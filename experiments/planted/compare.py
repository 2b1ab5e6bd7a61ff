r"""ENAS against random search with weight sharing on the planted-cell corpus, at equal compute.

  python -m experiments.planted.compare --out=workdirs/science/compare            # small, 10 seeds
  python -m experiments.planted.compare --out=DIR --scale=medium --seeds=10
  python -m experiments.planted.compare --out=DIR --seeds=10 --set=search.warmup_epochs=2
      # a remedy: any config field, for both methods (repeat --set for several)

For each seed, one search with the trained controller (`controller.kind=enas`) and one with the
uniform controller (`random`): the same config otherwise, so both train the shared weights for the
same steps and evaluate the same number of sampled cells. Each search's answer (its best cell
re-scored under the final shared weights) is then trained alone from scratch with one common
recipe and seed (`common.StandaloneTrainer`), as is the planted teacher's cell. Reported per run
and per method (mean, standard deviation): the validation perplexity of the answer trained alone,
its gap to the teacher's optimal perplexity (the corpus's floor), whether it is the teacher's cell
(decision distance 0), the controller's final entropy; and a two-sided permutation test of the
difference in means. Writes results.json, table.md and compare.png to --out.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from enas_jax.io.errors import UserError
from experiments.planted import common, stats

METHODS = ("enas", "random")


def run(out: str, scale_name: str, seeds: int, settings: tuple[str, ...] = ()) -> dict:
  scale = common.scale_of(scale_name)
  started = time.time()
  rows, corpus, trainer, standalone = [], None, None, {}
  for seed in range(seeds):
    for kind in METHODS:
      workdir = os.path.join(out, "searches", f"{kind}_seed{seed}")
      config = common.override(common.search_config(scale, seed, kind), list(settings))
      summary, search = common.run_search(config, workdir)
      if corpus is None:
        corpus = search.task.corpus
        # the yardstick never takes the study's settings: every study measures with one recipe
        trainer = common.StandaloneTrainer(common.search_config(scale, 0, "enas"), corpus, scale)
      found = summary["authors"]
      if found not in standalone:
        standalone[found] = trainer.valid_perplexity(common.arch_of(found))
      rows.append({"method": kind, "seed": seed, "cell": found,
                   "shared_ppl": summary["valid_ppl_shared"],
                   "teacher_shared_ppl": summary.get("planted_arch_valid_ppl_shared"),
                   "standalone_ppl": standalone[found],
                   "entropy_end": common.last_entropy(workdir)})
      print(f"{kind:>6} seed {seed}: {found}  shared {rows[-1]['shared_ppl']:.2f}  alone "
            f"{standalone[found]:.2f}", flush=True)
  teacher = corpus.info["teacher_arch"]
  t_arch = common.arch_of(teacher)
  optimal = float(corpus.info["teacher_ppl_valid"])
  teacher_alone = trainer.valid_perplexity(t_arch)
  # the noise of "trained alone" itself: the teacher's cell from other initialisations
  noise = [teacher_alone] + [trainer.valid_perplexity(t_arch, seed=s) for s in (1, 2)]
  for row in rows:
    a = common.arch_of(row["cell"])
    row["distance_to_teacher"] = stats.cell_distance(a.prev_N, a.act_N, t_arch.prev_N,
                                                     t_arch.act_N)
    row["gap_to_optimal"] = row["standalone_ppl"] - optimal
  result = {"scale": scale_name, "seeds": seeds, "settings": list(settings),
            "corpus": common.corpus_facts(corpus),
            "teacher_cell": teacher, "teacher_optimal_ppl": optimal,
            "teacher_standalone_ppl": teacher_alone,
            "teacher_standalone_ppl_seeds": noise, "runs": rows,
            "methods": summarize(rows), "seconds": time.time() - started}
  by = {m: [r["standalone_ppl"] for r in rows if r["method"] == m] for m in METHODS}
  result["p_value_standalone_ppl"] = stats.permutation_test(by["enas"], by["random"])
  dist = {m: [r["distance_to_teacher"] for r in rows if r["method"] == m] for m in METHODS}
  result["p_value_distance"] = stats.permutation_test(dist["enas"], dist["random"])
  write_outputs(out, result)
  return result


def summarize(rows: list[dict]) -> dict:
  out = {}
  for m in METHODS:
    mine = [r for r in rows if r["method"] == m]
    out[m] = {}
    for key in ("standalone_ppl", "gap_to_optimal", "shared_ppl", "distance_to_teacher",
                "entropy_end"):
      mean, std = stats.mean_std([r[key] for r in mine])
      out[m][key] = {"mean": mean, "std": std}
    out[m]["recovered"] = sum(r["distance_to_teacher"] == 0 for r in mine)
    out[m]["runs"] = len(mine)
  return out


def write_outputs(out: str, result: dict) -> None:
  common.write_json(os.path.join(out, "results.json"), result)
  lines = [f"Settings: {', '.join(result.get('settings') or ['the defaults'])}.", "",
           f"Planted corpus: teacher cell `{result['teacher_cell']}`, optimal validation "
           f"perplexity {result['teacher_optimal_ppl']:.2f}, the teacher's cell trained alone "
           f"{result['teacher_standalone_ppl']:.2f} (with initialisation seeds 0, 1, 2: "
           + ", ".join(f"{v:.2f}" for v in result["teacher_standalone_ppl_seeds"])
           + ": the noise of training alone).", "",
           "| method | seed | found cell | shared ppl | trained alone ppl | gap to optimal | "
           "distance to teacher | final entropy |", "|---|---:|---|---:|---:|---:|---:|---:|"]
  for r in result["runs"]:
    lines.append(f"| {r['method']} | {r['seed']} | `{r['cell']}` | {r['shared_ppl']:.2f} | "
                 f"{r['standalone_ppl']:.2f} | {r['gap_to_optimal']:.2f} | "
                 f"{r['distance_to_teacher']} | {r['entropy_end']:.2f} |")
  lines += ["", "| method | trained alone ppl | gap to optimal | distance to teacher | recovered "
            "| final entropy |", "|---|---:|---:|---:|---:|---:|"]
  for m, s in result["methods"].items():
    f = lambda k: f"{s[k]['mean']:.2f} ± {s[k]['std']:.2f}"
    lines.append(f"| {m} | {f('standalone_ppl')} | {f('gap_to_optimal')} | "
                 f"{f('distance_to_teacher')} | {s['recovered']}/{s['runs']} | "
                 f"{f('entropy_end')} |")
  lines += ["", f"Permutation test (two-sided, difference in means, ENAS vs random): trained-alone "
            f"perplexity p = {result['p_value_standalone_ppl']:.3f}; distance to the teacher "
            f"p = {result['p_value_distance']:.3f}."]
  with open(os.path.join(out, "table.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  plot(out, result)


def plot(out: str, result: dict) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, axes = plt.subplots(1, 2, figsize=(10, 4))
  for ax, key, title in ((axes[0], "standalone_ppl", "answer trained alone: valid ppl"),
                         (axes[1], "distance_to_teacher", "decisions differing from the teacher")):
    for i, m in enumerate(METHODS):
      values = [r[key] for r in result["runs"] if r["method"] == m]
      jitter = np.linspace(-0.08, 0.08, len(values))
      ax.scatter(np.full(len(values), i) + jitter, values, label=m)
      ax.hlines(np.mean(values), i - 0.2, i + 0.2, color="black")
    ax.set_xticks(range(len(METHODS)), METHODS)
    ax.set_title(title, fontsize=10)
  axes[0].axhline(result["teacher_optimal_ppl"], ls="--", color="grey", label="teacher optimum")
  axes[0].axhline(result["teacher_standalone_ppl"], ls=":", color="green",
                  label="teacher cell alone")
  axes[0].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(out, "compare.png"), dpi=100)
  plt.close(fig)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="workdirs/science/compare")
  parser.add_argument("--scale", default="small", choices=sorted(common.SCALES))
  parser.add_argument("--seeds", type=int, default=10)
  parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                      help="a config change for both methods' searches (a remedy)")
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  common.use_compilation_cache(args.out)
  try:
    result = run(args.out, args.scale, args.seeds, tuple(args.set))
  except UserError as err:
    raise SystemExit(f"error: {err}") from None
  print(open(os.path.join(args.out, "table.md")).read())
  print(f"({result['seconds'] / 60:.1f} min; {args.out}/results.json, table.md, compare.png)")


if __name__ == "__main__":
  main()
