r"""ENAS against random search with weight sharing on the planted-cell corpus, at equal compute.

  python -m experiments.planted.compare --out=workdirs/science/compare            # small, 10 seeds
  python -m experiments.planted.compare --corpus=ptb --out=DIR --seeds=10
      # Penn Treebank at CPU scale (the ranking study's corpus: `ranking.prepare_ptb`); no
      # teacher there, so no distance or gap to it, and the noise is the first ENAS answer's
  python -m experiments.planted.compare --out=DIR --scale=medium --seeds=10
  python -m experiments.planted.compare --out=DIR --seeds=10 --set=search.warmup_epochs=2
      # a remedy: any config field, for both methods (repeat --set for several)
  python -m experiments.planted.compare --out=DIR --seeds=10 --set=controller.entropy_weight=0.01 \
      --random_from=workdirs/science/v15/compare_defaults   # a remedy random search ignores:
      # its searches reused from a study of the defaults, after one rerun matches to the bit
  python -m experiments.planted.compare --corpus=ptb --out=DIR2 --seeds=20 --extend_from=DIR
      # seeds 10-19 added to a 10-seed study: its rows reused after seed 0 (both methods) is
      # rerun and matches to the bit

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
import dataclasses
import os
import time
from typing import Any

import numpy as np

from enas_jax.io.errors import UserError, run_main
from enas_jax.io.workdir import output_folder, write_atomically
from enas_jax.io.render import write_figure
from enas_jax.report import versus as versus_lib
from experiments.planted import common, ranking, stats

METHODS = ("enas", "random")


def run(out: str, scale_name: str, seeds: int, settings: tuple[str, ...] = (),
        random_from: str = "", verify_random: int = 1, corpus_name: str = "planted",
        ptb_dir: str = "../shared/data/ptb", ptb_corpus: str = "", extend_from: str = "",
        verify_extend: int = 1) -> dict:
  scale = common.scale_of(scale_name)
  if seeds < 1:
    raise UserError(f"--seeds is {seeds}; give at least 1 (10 or more for a test of ENAS "
                    f"against random search).")
  started = time.time()
  rows, standalone, ctx = [], {}, {}
  if random_from and extend_from:
    raise UserError("--random_from and --extend_from both given: extend a study that reused "
                    "random searches by giving that study as --extend_from alone.")
  reuse = (Reuse.extending(extend_from, scale_name, corpus_name, settings, seeds, verify_extend)
           if extend_from else Reuse.random(random_from, scale_name, seeds, verify_random))
  if corpus_name == "ptb":  # every search reads the ranking study's PTB corpus folder
    ctx["data_dir"] = ranking.prepare_ptb(ptb_dir, ptb_corpus or os.path.join(out, "ptb_corpus"))
  for seed in range(seeds):
    for kind in METHODS:
      earlier = reuse.rows.get((kind, seed))
      if earlier and seed >= reuse.verify:
        rows.append(dict(earlier, reused_from=earlier.get("reused_from") or reuse.folder))
        continue
      rows.append(search_row(out, scale, seed, kind, settings, standalone, ctx))
      if earlier:  # the reruns that license reusing the rest
        check_same(rows[-1], earlier, reuse.folder)
        if seed == reuse.verify - 1 and kind == METHODS[-1]:  # trains alone as it did then
          standalone.update(reuse.alone)
  corpus, trainer = ctx["corpus"], ctx["trainer"]
  teacher = corpus.info.get("teacher_arch")  # None on PTB
  result = {"scale": scale_name, "seeds": seeds, "settings": list(settings),
            "random_from": random_from, "verified_random": verify_random if random_from else 0,
            "extended_from": extend_from, "verified_extend": verify_extend if extend_from else 0,
            "corpus_name": corpus_name, "corpus": common.corpus_facts(corpus),
            **(teacher_facts(rows, teacher, corpus, trainer) if teacher else {})}
  if not teacher:  # the noise of "trained alone": the first ENAS answer from other inits
    probe = rows[0]["cell"]
    result.update(noise_cell=probe, noise_ppl_seeds=reuse.noise.get(probe) or [
        standalone[probe]] + [trainer.valid_perplexity(common.arch_of(probe), seed=s)
                              for s in (1, 2)])
  result.update(runs=rows, methods=summarize(rows), seconds=time.time() - started,
                **tests(rows))
  write_outputs(out, result)
  return result


def tests(rows: list[dict]) -> dict:
  """ENAS against random search over `rows` (one per method and seed): the permutation test on
  the means of the trained-alone perplexities, its rank form, the difference's interval, and
  with a teacher the test on the distances to it."""
  by = {m: [r["standalone_ppl"] for r in rows if r["method"] == m] for m in METHODS}
  out = {"p_value_standalone_ppl": stats.permutation_test(by["enas"], by["random"]),
         # by ranks: an answer that trains alone badly (diverges) weighs one rank, not its ppl
         "p_value_standalone_ranks": stats.rank_permutation_test(by["enas"], by["random"]),
         # the 95% interval of ENAS's mean minus random's; None when too few seeds bound it
         "difference_interval": versus_lib.interval(by["enas"], by["random"])}
  if all("distance_to_teacher" in r for r in rows):
    dist = {m: [r["distance_to_teacher"] for r in rows if r["method"] == m] for m in METHODS}
    out["p_value_distance"] = stats.permutation_test(dist["enas"], dist["random"])
  return out


def teacher_facts(rows: list[dict], teacher: str, corpus: Any, trainer: Any) -> dict:
  """The planted teacher's figures, and each row's distance and gap to it (set on the rows)."""
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
  return {"teacher_cell": teacher, "teacher_optimal_ppl": optimal,
          "teacher_standalone_ppl": teacher_alone, "teacher_standalone_ppl_seeds": noise}


def search_row(out: str, scale: common.Scale, seed: int, kind: str, settings: tuple[str, ...],
               standalone: dict[str, float], ctx: dict) -> dict:
  """One search of `kind` and its answer trained alone (`standalone`: by cell, filled here;
  `ctx` receives the corpus and the trainer at the first search)."""
  workdir = os.path.join(out, "searches", f"{kind}_seed{seed}")
  config = common.override(common.search_config(scale, seed, kind), list(settings))
  if ctx.get("data_dir"):
    config.data.source, config.data.dir = "directory", ctx["data_dir"]
  summary, search = common.run_search(config, workdir)
  if "corpus" not in ctx:
    ctx["corpus"] = search.task.corpus
    # the yardstick never takes the study's settings: every study measures with one recipe
    ctx["trainer"] = common.StandaloneTrainer(common.search_config(scale, 0, "enas"),
                                              ctx["corpus"], scale, keep_in=out)
  found = summary["authors"]
  if found not in standalone:
    standalone[found] = ctx["trainer"].valid_perplexity(common.arch_of(found))
  row = {"method": kind, "seed": seed, "cell": found, "shared_ppl": summary["valid_ppl_shared"],
         "teacher_shared_ppl": summary.get("planted_arch_valid_ppl_shared"),
         "standalone_ppl": standalone[found], "entropy_end": common.last_entropy(workdir)}
  print(f"{kind:>6} seed {seed}: {found}  shared {row['shared_ppl']:.2f}  alone "
        f"{standalone[found]:.2f}", flush=True)
  return row


@dataclasses.dataclass(frozen=True)
class Reuse:
  """Rows an earlier compare study ran that this one takes instead of rerunning them.

  rows: by (method, seed); the seeds below `verify` are rerun and must match (`check_same`).
  alone: every answer the earlier study trained alone, by cell (used once the reruns match).
  noise: the earlier study's noise figures of training alone, by cell (PTB's first answer)."""
  folder: str = ""
  rows: dict[tuple[str, int], dict] = dataclasses.field(default_factory=dict)
  alone: dict[str, float] = dataclasses.field(default_factory=dict)
  noise: dict[str, list[float]] = dataclasses.field(default_factory=dict)
  verify: int = 0

  @classmethod
  def random(cls, folder: str, scale_name: str, seeds: int, verify: int) -> "Reuse":
    """`--random_from`: an earlier study's random searches for seeds 0..seeds-1. For settings the
    uniform controller ignores (the controller's learning: entropy bonus, temperature, locality
    prior) random search runs as it did there; the first `verify` seeds are rerun to prove it."""
    if not folder:
      return cls()
    earlier = common.read_results(folder, "--random_from")
    rows = {r["seed"]: r for r in earlier["runs"] if r["method"] == "random"}
    if earlier["scale"] != scale_name or any(s not in rows for s in range(seeds)):
      raise UserError(f"--random_from={folder}: that study ran at scale {earlier['scale']!r} "
                      f"with seeds {sorted(rows)}; this one needs scale {scale_name!r} and seeds "
                      f"0-{seeds - 1}. Give a study that covers them, or drop the flag.")
    if not 1 <= verify <= seeds:
      raise UserError(f"--verify_random is {verify}; it must be 1..--seeds ({seeds}): at least "
                      f"one random search is rerun to prove the reused ones still hold.")
    return cls(folder, {("random", s): rows[s] for s in range(seeds)},
               {r["cell"]: r["standalone_ppl"] for r in earlier["runs"]}, verify=verify)

  @classmethod
  def extending(cls, folder: str, scale_name: str, corpus_name: str,
                settings: tuple[str, ...], seeds: int, verify: int) -> "Reuse":
    """`--extend_from`: an earlier study of the same scale, corpus and settings with fewer
    seeds; both methods' rows for its seeds are reused, the first `verify` seeds of each rerun
    to prove the code still gives them."""
    earlier = common.read_results(folder, "--extend_from")
    mine = {"scale": scale_name, "corpus_name": corpus_name, "settings": list(settings)}
    theirs = {k: earlier.get(k, "planted" if k == "corpus_name" else None) for k in mine}
    if theirs != mine:
      raise UserError(f"--extend_from={folder}: that study ran with {theirs}, this one with "
                      f"{mine}; only a study of the same scale, corpus and settings can be "
                      f"extended. Give the same --scale, --corpus and --set as it had.")
    done = earlier["seeds"]
    if not done < seeds:
      raise UserError(f"--extend_from={folder} already has seeds 0-{done - 1}; --seeds is "
                      f"{seeds}. Give more seeds than it has (it adds seeds {done}..--seeds-1).")
    if not 1 <= verify <= done:
      raise UserError(f"--verify_extend is {verify}; it must be 1..{done} (the earlier study's "
                      f"seeds): at least one seed is rerun to prove the reused rows still hold.")
    noise = ({earlier["noise_cell"]: earlier["noise_ppl_seeds"]}
             if "noise_cell" in earlier else {})
    return cls(folder, {(r["method"], r["seed"]): r for r in earlier["runs"]},
               {r["cell"]: r["standalone_ppl"] for r in earlier["runs"]}, noise, verify)


def check_same(rerun: dict, before: dict, folder: str) -> None:
  """A rerun search must give the earlier study's row to the bit (its answer, its shared and
  trained-alone perplexities): otherwise the settings, or the code, changed that search."""
  keys = ("cell", "shared_ppl", "standalone_ppl")
  if any(rerun[k] != before[k] for k in keys):
    raise UserError(
        f"{folder}: {rerun['method']} search seed {rerun['seed']} rerun here gives "
        + ", ".join(f"{k} {rerun[k]!r}" for k in keys) + " where that study recorded "
        + ", ".join(f"{k} {before[k]!r}" for k in keys) + ": this study's settings (or the "
        "code since) change that search, so the earlier study's rows cannot be reused. Drop "
        "--random_from / --extend_from and run every seed.")


def summarize(rows: list[dict]) -> dict:
  out = {}
  for m in METHODS:
    mine = [r for r in rows if r["method"] == m]
    out[m] = {}
    for key in ("standalone_ppl", "gap_to_optimal", "shared_ppl", "distance_to_teacher",
                "entropy_end"):
      if all(key in r for r in mine):  # no teacher (PTB): no distance or gap to it
        mean, std = stats.mean_std([r[key] for r in mine])
        out[m][key] = {"mean": mean, "std": std,
                       "median": float(np.median([r[key] for r in mine]))}
    if all("distance_to_teacher" in r for r in mine):
      out[m]["recovered"] = sum(r["distance_to_teacher"] == 0 for r in mine)
    out[m]["runs"] = len(mine)
  return out


def write_outputs(out: str, result: dict) -> None:
  common.write_json(os.path.join(out, "results.json"), result)
  if "teacher_cell" in result:
    lines = [f"Settings: {', '.join(result.get('settings') or ['the defaults'])}.", "",
             f"Planted corpus: teacher cell `{result['teacher_cell']}`, optimal validation "
             f"perplexity {result['teacher_optimal_ppl']:.2f}, the teacher's cell trained alone "
             f"{result['teacher_standalone_ppl']:.2f} (with initialisation seeds 0, 1, 2: "
             + ", ".join(f"{v:.2f}" for v in result["teacher_standalone_ppl_seeds"])
             + ": the noise of training alone).", ""]
    run_cols, method_cols = ("trained alone ppl", "gap to optimal", "distance to teacher"), (
        "trained alone ppl", "gap to optimal", "distance to teacher", "recovered")
  else:
    lines = [f"Settings: {', '.join(result.get('settings') or ['the defaults'])}.", "",
             f"Corpus: {result['corpus_name']} (no planted teacher). The noise of training "
             f"alone: the first ENAS answer `{result['noise_cell']}` from initialisation seeds "
             "0, 1, 2: " + ", ".join(f"{v:.2f}" for v in result["noise_ppl_seeds"]) + ".", ""]
    run_cols, method_cols = ("trained alone ppl",), ("trained alone ppl",)
  lines += [table_head(("method", "seed", "found cell", "shared ppl", *run_cols,
                        "final entropy"), 3)]
  for r in result["runs"]:
    cells = [r["method"], r["seed"], f"`{r['cell']}`", f"{r['shared_ppl']:.2f}",
             f"{r['standalone_ppl']:.2f}"]
    if "distance_to_teacher" in r:
      cells += [f"{r['gap_to_optimal']:.2f}", r["distance_to_teacher"]]
    lines.append("| " + " | ".join(map(str, cells + [f"{r['entropy_end']:.2f}"])) + " |")
  lines += ["", table_head(("method", *method_cols[:1], "median", *method_cols[1:],
                            "final entropy"), 1)]
  for m, s in result["methods"].items():
    f = lambda k: f"{s[k]['mean']:.2f} ± {s[k]['std']:.2f}"
    cells = [m, f("standalone_ppl"), f"{s['standalone_ppl']['median']:.2f}"]
    if "recovered" in s:
      cells += [f("gap_to_optimal"), f("distance_to_teacher"), f"{s['recovered']}/{s['runs']}"]
    lines.append("| " + " | ".join(cells + [f("entropy_end")]) + " |")
  low, high = result["difference_interval"] or (-np.inf, np.inf)
  lines += ["", f"Permutation test (two-sided, difference in means, ENAS vs random): trained-alone "
            f"perplexity p = {result['p_value_standalone_ppl']:.3f} (95% interval of the "
            f"difference {low:+.3f} to {high:+.3f})"
            + (f"; by ranks p = {result['p_value_standalone_ranks']:.3f}"
               if "p_value_standalone_ranks" in result else "")
            + (f"; distance to the teacher p = {result['p_value_distance']:.3f}."
               if "p_value_distance" in result else ".")]
  write_atomically(os.path.join(out, "table.md"), "\n".join(lines) + "\n")
  plot(out, result)


def table_head(columns: tuple[str, ...], text_columns: int) -> str:
  """A markdown table's header and rule; the first `text_columns` left-aligned."""
  rule = ["---"] * text_columns + ["---:"] * (len(columns) - text_columns)
  return "| " + " | ".join(columns) + " |\n|" + "|".join(rule) + "|"


def plot(out: str, result: dict) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  teacher = "teacher_cell" in result
  fig, axes = plt.subplots(1, 2 if teacher else 1, figsize=(10 if teacher else 5, 4),
                           squeeze=False)
  axes = axes[0]
  panels = [(axes[0], "standalone_ppl", "answer trained alone: valid ppl")]
  if teacher:
    panels.append((axes[1], "distance_to_teacher", "decisions differing from the teacher"))
  for ax, key, title in panels:
    for i, m in enumerate(METHODS):
      values = [r[key] for r in result["runs"] if r["method"] == m]
      jitter = np.linspace(-0.08, 0.08, len(values))
      ax.scatter(np.full(len(values), i) + jitter, values, label=m)
      ax.hlines(np.mean(values), i - 0.2, i + 0.2, color="black")
    ax.set_xticks(range(len(METHODS)), METHODS)
    ax.set_title(title, fontsize=10)
  if teacher:
    axes[0].axhline(result["teacher_optimal_ppl"], ls="--", color="grey",
                    label="teacher optimum")
    axes[0].axhline(result["teacher_standalone_ppl"], ls=":", color="green",
                    label="teacher cell alone")
  axes[0].legend(fontsize=8)
  fig.tight_layout()
  write_figure(fig, os.path.join(out, "compare.png"), dpi=100)
  plt.close(fig)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="workdirs/science/compare")
  parser.add_argument("--scale", default="small", choices=sorted(common.SCALES))
  parser.add_argument("--corpus", default="planted", choices=["planted", "ptb"])
  parser.add_argument("--ptb_dir", default="../shared/data/ptb",
                      help="with --corpus=ptb: PTB's valid.txt and test.txt (as for ranking)")
  parser.add_argument("--ptb_corpus", default="",
                      help="with --corpus=ptb: the folder the corpus is built in (default: "
                      "OUT/ptb_corpus)")
  parser.add_argument("--seeds", type=int, default=10)
  parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                      help="a config change for both methods' searches (a remedy)")
  parser.add_argument("--random_from", default="",
                      help="an earlier compare study's --out: reuse its random searches (for "
                      "settings that change only the controller's learning)")
  parser.add_argument("--verify_random", type=int, default=1,
                      help="with --random_from: this many random searches rerun and checked "
                      "to the bit before the others are reused")
  parser.add_argument("--extend_from", default="",
                      help="an earlier compare study's --out with fewer seeds (same scale, "
                      "corpus, settings): reuse its rows, run only the seeds it lacks")
  parser.add_argument("--verify_extend", type=int, default=1,
                      help="with --extend_from: this many of its seeds rerun (both methods) and "
                      "checked to the bit before the others are reused")
  args = parser.parse_args()
  output_folder(args.out)
  common.use_compilation_cache(args.out)
  result = run(args.out, args.scale, args.seeds, tuple(args.set), args.random_from,
               args.verify_random, args.corpus, args.ptb_dir, args.ptb_corpus,
               args.extend_from, args.verify_extend)
  print(open(os.path.join(args.out, "table.md")).read())
  print(f"({result['seconds'] / 60:.1f} min; {args.out}/results.json, table.md, compare.png)")


if __name__ == "__main__":  # stops, full disks and mistakes in one paragraph
  run_main(lambda _: main(), resumes=False)([])
