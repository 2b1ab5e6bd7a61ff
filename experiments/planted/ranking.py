r"""How well the shared weights rank cells: Kendall's tau between each cell's perplexity under the
shared weights and its perplexity when trained alone from scratch.

  python -m experiments.planted.ranking --out=workdirs/science/ranking_planted          # planted
  python -m experiments.planted.ranking --corpus=ptb --out=workdirs/science/ranking_ptb
      # Penn Treebank at CPU scale: PTB's validation split as training text, its test split
      # halved into validation and test (only those two splits are in --ptb_dir); the corpus
      # folder is OUT/ptb_corpus, or --ptb_corpus=DIR to share one search between studies
  python -m experiments.planted.ranking --out=DIR --set=model.activation_weights=node0 \
      --standalone_from=workdirs/science/ranking_planted
      # a remedy in the search; the cells' trained-alone figures reused from the first study

One search trains the shared weights (`--shared_from=random`: the uniform controller, so every
cell's edges are trained alike; or `enas`). Then `--cells` distinct cells drawn uniformly (and, on
the planted corpus, the teacher's cell) are scored on the whole validation split under the final
shared weights and trained alone with one recipe and seed (`common.StandaloneTrainer`). Reported:
Kendall's tau-b with a permutation p-value, the rank of the best cell trained alone under the
shared weights, and the perplexity lost by taking the shared weights' favourite; and what makes
the benchmark worth reading (issue 19): the noise of training alone (the teacher's cell from
`--noise_seeds` initialisations), the spread of the cells' trained-alone perplexities (median
minus best) over that noise, the teacher's cell's rank among the cells trained alone and its gap
to the teacher's optimal perplexity. Writes results.json, table.md and ranking.png to --out.
"""
from __future__ import annotations

import argparse
import copy
import os
import time
from typing import Any

import numpy as np

from experiments.planted import common, stats
from enas_jax.io.errors import UserError, run_main
from enas_jax.io.workdir import output_folder, write_atomically
from enas_jax.io.render import write_figure


def prepare_ptb(ptb_dir: str, corpus_dir: str) -> str:
  """A corpus directory (`corpus_dir`, returned) from PTB's valid and test files: train = valid,
  valid/test = the halves of test (whole lines). Each file is written whole and then moved into
  place, so studies sharing one folder (`--ptb_corpus`) never read a half-written file."""
  paths = {name: os.path.join(ptb_dir, f"{name}.txt") for name in ("valid", "test")}
  for name, path in paths.items():
    if not os.path.isfile(path):
      raise UserError(f"{path} does not exist: --ptb_dir must hold PTB's valid.txt and test.txt "
                      f"(this study trains on the validation split and evaluates on the test "
                      f"split's halves).")
  output_folder(corpus_dir, "--ptb_corpus")
  with open(paths["valid"]) as f:
    train = f.read()
  with open(paths["test"]) as f:
    lines = f.read().splitlines(keepends=True)
  half = len(lines) // 2
  for name, text in (("train", train), ("valid", "".join(lines[:half])),
                     ("test", "".join(lines[half:]))):
    target = os.path.join(corpus_dir, f"{name}.txt")
    write_atomically(target, text)
  return corpus_dir


def run(out: str, corpus_name: str, scale_name: str, cells: int, shared_from: str,
        ptb_dir: str, settings: tuple[str, ...] = (), noise_seeds: int = 3,
        standalone_from: str = "", tau_at: tuple[int, ...] = (), finetune_steps: int = 0,
        ptb_corpus: str = "") -> dict:
  scale = common.scale_of(scale_name)
  if cells < 2 or noise_seeds < 2 or finetune_steps < 0:
    raise UserError(f"--cells is {cells}, --noise_seeds {noise_seeds}, --finetune_steps "
                    f"{finetune_steps}: a ranking needs at least 2 cells, the noise of training "
                    f"alone at least 2 initialisations (a standard deviation), and the steps are "
                    f"0 or more (the defaults: 30, 3, 0).")
  started = time.time()
  base = common.search_config(scale, 0, shared_from)
  if corpus_name == "ptb":
    base.data.source = "directory"
    base.data.dir = prepare_ptb(ptb_dir, ptb_corpus or os.path.join(out, "ptb_corpus"))
  config = common.override(copy.deepcopy(base), list(settings))
  # stages after the warm-up only: a search must end with the controller learning; the last
  # stage is the search's length (the scale's, or `--set=search.epochs=E`)
  final, warmup = config.search.epochs, config.search.warmup_epochs
  outside = sorted(e for e in tau_at if not warmup < e <= final)
  if outside:  # they were left out silently
    raise UserError(f"--tau_at names epoch(s) {outside}; the search's tau can be measured after "
                    f"epochs {warmup + 1}-{final} (after the warm-up's {warmup}, up to the "
                    f"search's last epoch, search.epochs).")
  stages = sorted({e for e in tau_at if e < final} | {final})
  config.search.epochs = stages[0]
  _, search = common.run_search(config, os.path.join(out, "search"))
  corpus = search.task.corpus
  teacher = corpus.info.get("teacher_arch")
  candidates = common.random_cells(config.model.num_nodes, cells, seed=1,
                                   exclude={teacher} if teacher else set())
  if teacher and len(common.arch_of(teacher).act_N) == config.model.num_nodes:
    candidates.append(teacher)
  # the yardstick never takes the study's settings: every study measures with one recipe
  trainer = common.StandaloneTrainer(base, corpus, scale, keep_in=out)
  known = reuse_standalone(standalone_from, corpus, scale_name)
  curve = []
  for stage in stages:  # the same search, resumed to each stage's epoch (bit-exact)
    if stage != stages[0]:
      config.search.epochs = stage
      _, search = common.run_search(config, os.path.join(out, "search"))
    shared = [common.shared_perplexity(search, common.arch_of(text)) for text in candidates]
    point = {"epoch": stage, "shared_ppl": shared,
             "entropy": common.last_entropy(os.path.join(out, "search"))}
    if finetune_steps:  # the cells scored after a few steps on each; the plain scores kept
      point.update(plain_shared_ppl=shared, shared_ppl=[
          common.finetuned_perplexity(search, common.arch_of(text), finetune_steps)
          for text in candidates])
    curve.append(point)
  rows = []
  for i, (text, shared_ppl) in enumerate(zip(candidates, curve[-1]["shared_ppl"])):
    alone = known[text] if text in known else trainer.valid_perplexity(common.arch_of(text))
    rows.append({"cell": text, "teacher": text == teacher, "shared_ppl": shared_ppl,
                 "standalone_ppl": alone,
                 **({"plain_shared_ppl": curve[-1]["plain_shared_ppl"][i]}
                    if finetune_steps else {})})
    print(f"{text}: shared {shared_ppl:.2f}  alone {alone:.2f}", flush=True)
  alone_all = [r["standalone_ppl"] for r in rows]
  for point in curve:
    point["kendall_tau"] = stats.kendall_tau(point["shared_ppl"], alone_all)
    if finetune_steps:
      point["kendall_tau_plain"] = stats.kendall_tau(point["plain_shared_ppl"], alone_all)
  # the noise of training alone: the teacher's cell (else the first cell) from other inits
  probe = teacher or candidates[0]
  probe_alone = rows[candidates.index(probe)]["standalone_ppl"]  # the trainer's own seed
  noise = known.get(("noise", probe)) or [
      probe_alone if s == trainer.seed else trainer.valid_perplexity(common.arch_of(probe), seed=s)
      for s in range(noise_seeds)]
  result = {"corpus": common.corpus_facts(corpus), "scale": scale_name,
            "shared_from": shared_from, "settings": list(settings), "rows": rows,
            "noise_cell": probe, "noise_ppl_seeds": noise,
            "finetune_steps": finetune_steps,
            "tau_curve": [{k: v for k, v in p.items() if not k.endswith("shared_ppl")}
                          for p in curve],
            **figures(rows, corpus.vocab_size, noise, corpus.info.get("teacher_ppl_valid")),
            "entropy_end": curve[-1]["entropy"],
            "seconds": time.time() - started}
  write_outputs(out, result)
  return result


def tau_epochs(text: str) -> tuple[int, ...]:
  """`--tau_at`'s comma-separated epochs."""
  try:
    return tuple(int(e) for e in text.split(",") if e.strip())
  except ValueError:
    raise UserError(f"--tau_at is {text!r}; give whole epochs separated by commas, e.g. "
                    f"--tau_at=1,2,4.") from None


def reuse_standalone(path: str, corpus: Any, scale_name: str) -> dict:
  """The trained-alone perplexities of an earlier study's results.json (`path`: its folder) on
  the same corpus at the same scale: {cell: ppl, ("noise", cell): [ppl per seed]}."""
  if not path:
    return {}
  earlier = common.read_results(path, "--standalone_from")
  if earlier["corpus"] != common.corpus_facts(corpus) or earlier["scale"] != scale_name:
    raise UserError(f"--standalone_from={path}: that study ran on another corpus or scale "
                    f"({earlier['corpus']['name']}, {earlier['scale']}); its cells' "
                    f"perplexities do not apply here. Drop the flag to train them.")
  known: dict = {r["cell"]: r["standalone_ppl"] for r in earlier["rows"]}
  if earlier.get("noise_ppl_seeds"):
    known[("noise", earlier["noise_cell"])] = earlier["noise_ppl_seeds"]
  return known


def figures(rows: list[dict], vocab_size: int, noise: list[float] | None = None,
            optimal: float | None = None) -> dict:
  """Kendall's tau (all cells, and without those broken under the shared weights), its p-value,
  where the best cell trained alone ranks under the shared weights, the shared favourite's cost;
  with `noise` (one cell trained alone from several initialisations), the benchmark's
  discrimination: the spread of trained-alone perplexities (median minus best) over the noise's
  standard deviation, and where the teacher's cell ranks trained alone (rank / cells: 1/cells
  is the top) and how far above the teacher's `optimal` perplexity it lands."""
  shared = [r["shared_ppl"] for r in rows]
  alone = [r["standalone_ppl"] for r in rows]
  best_alone = int(np.argmin(alone))
  shared_rank = sorted(range(len(rows)), key=lambda i: shared[i])
  pick = shared_rank[0]
  # cells worse under the shared weights than guessing uniformly: broken there, not bad
  sane = [i for i in range(len(rows)) if shared[i] < vocab_size]
  out = {"cells": len(rows),
         "kendall_tau": stats.kendall_tau(shared, alone),
         "kendall_tau_p": stats.tau_p_value(shared, alone),
         "worse_than_uniform_under_shared": len(rows) - len(sane),
         "kendall_tau_sane": (stats.kendall_tau([shared[i] for i in sane],
                                                [alone[i] for i in sane])
                              if len(sane) > 1 else float("nan")),
         "best_alone_cell": rows[best_alone]["cell"],
         "best_alone_rank_under_shared": shared_rank.index(best_alone) + 1,
         "shared_pick_cell": rows[pick]["cell"],
         "shared_pick_regret_ppl": alone[pick] - alone[best_alone]}
  out.update(standalone_figures(rows, noise, optimal))
  teacher = [i for i, r in enumerate(rows) if r.get("teacher")]
  if teacher:
    out.update(teacher_rank_under_shared=shared_rank.index(teacher[0]) + 1)
  return out


def standalone_figures(rows: list[dict], noise: list[float] | None = None,
                       optimal: float | None = None) -> dict:
  """What makes the benchmark worth reading, from the trained-alone figures only: the spread
  (median minus best) over the noise's standard deviation (`noise`: one cell from several
  initialisations), and the teacher's cell's rank among the rows (1 is the top) and its gap to
  the teacher's `optimal` perplexity."""
  alone = [r["standalone_ppl"] for r in rows]
  out: dict = {}
  if noise and len(noise) > 1:
    sd = float(np.std(noise, ddof=1))
    spread = float(np.median(alone) - np.min(alone))
    out.update(noise_sd=sd, spread_best_to_median=spread,
               spread_over_noise=spread / sd if sd > 0 else float("inf"))
  teacher = [i for i, r in enumerate(rows) if r.get("teacher")]
  if teacher:
    t = teacher[0]
    rank = 1 + sum(a < alone[t] for a in alone)
    out.update(teacher_rank=rank, teacher_rank_fraction=rank / len(rows))
    if optimal:
      out.update(teacher_optimal_ppl=optimal, teacher_alone_gap=alone[t] / optimal - 1.0)
  return out


def resummarize(out: str) -> dict:
  """The figures and outputs again from `out`/results.json's rows (nothing retrained)."""
  result = common.read_results(out, "--out")
  result.update(figures(result["rows"], result["corpus"]["vocab"],
                        result.get("noise_ppl_seeds"),
                        result["corpus"].get("teacher_ppl_valid")))
  write_outputs(out, result)
  return result


def write_outputs(out: str, result: dict) -> None:
  common.write_json(os.path.join(out, "results.json"), result)
  rows = sorted(result["rows"], key=lambda r: r["standalone_ppl"])
  lines = [f"Corpus {result['corpus']['name']}; shared weights from a `{result['shared_from']}` "
           f"search{' with ' + ', '.join(result['settings']) if result.get('settings') else ''}; "
           f"{result['cells']} cells"
           f"{'; batch norm on every node' if result.get('batch_norm') else ''}"
           + (f"; each cell scored after {result['finetune_steps']} steps on it alone (plain "
              f"shared weights: tau-b {result['tau_curve'][-1]['kendall_tau_plain']:.3f})"
              if result.get("finetune_steps") else "") + ".", "",
           "| cell | teacher | shared ppl | trained alone ppl |", "|---|---|---:|---:|"]
  lines += [f"| `{r['cell']}` | {'yes' if r['teacher'] else ''} | {r['shared_ppl']:.2f} | "
            f"{r['standalone_ppl']:.2f} |" for r in rows]
  lines += ["", f"Kendall tau-b = {result['kendall_tau']:.3f} (permutation p = "
            f"{result['kendall_tau_p']:.4f}); the best cell trained alone ranks "
            f"{result['best_alone_rank_under_shared']} of {result['cells']} under the shared "
            f"weights; taking the shared weights' favourite costs "
            f"{result['shared_pick_regret_ppl']:.2f} perplexity trained alone. "
            f"{result['worse_than_uniform_under_shared']} cells are worse under the shared "
            f"weights than a uniform guess (perplexity above the vocabulary size, "
            f"{result['corpus']['vocab']}); without them tau-b = "
            f"{result['kendall_tau_sane']:.3f}."]
  if "spread_over_noise" in result:
    lines += ["", f"Trained alone, `{result['noise_cell']}` from {len(result['noise_ppl_seeds'])} "
              f"initialisations: " + ", ".join(f"{v:.4f}" for v in result["noise_ppl_seeds"])
              + f" (sd {result['noise_sd']:.2g}); the cells' spread, median minus best, "
              f"{result['spread_best_to_median']:.3f} = {result['spread_over_noise']:.0f} times "
              f"that sd."]
  if len(result.get("tau_curve", [])) > 1:
    lines += ["", "| epoch | Kendall tau-b | controller entropy |", "|---:|---:|---:|"]
    lines += [f"| {p['epoch']} | {p['kendall_tau']:.3f} | {p['entropy']:.2f} |"
              for p in result["tau_curve"]]
  if "teacher_rank" in result:
    lines += ["", f"The teacher's cell trained alone ranks {result['teacher_rank']} of "
              f"{result['cells']} ({result['teacher_rank_fraction']:.1%}) and under the shared "
              f"weights {result['teacher_rank_under_shared']}"
              + (f"; it lands {result['teacher_alone_gap']:.1%} above the teacher's optimal "
                 f"perplexity ({result['teacher_optimal_ppl']:.2f})."
                 if "teacher_alone_gap" in result else ".")]
  write_atomically(os.path.join(out, "table.md"), "\n".join(lines) + "\n")
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(5, 4))
  ax.set_xscale("log")
  ax.set_yscale("log")  # a cell that diverged trained alone would flatten the others
  ax.scatter([r["shared_ppl"] for r in result["rows"]],
             [r["standalone_ppl"] for r in result["rows"]],
             c=["red" if r["teacher"] else "tab:blue" for r in result["rows"]])
  ax.set_xlabel("valid ppl under the shared weights")
  ax.set_ylabel("valid ppl trained alone")
  ax.set_title(f"{result['corpus']['name']}: Kendall tau {result['kendall_tau']:.2f}", fontsize=10)
  fig.tight_layout()
  write_figure(fig, os.path.join(out, "ranking.png"), dpi=100)
  plt.close(fig)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--corpus", default="planted", choices=["planted", "ptb"])
  parser.add_argument("--out", default="")
  parser.add_argument("--scale", default="small", choices=sorted(common.SCALES))
  parser.add_argument("--cells", type=int, default=30)
  parser.add_argument("--shared_from", default="random", choices=["random", "enas"])
  parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                      help="a config change for the search (a remedy); not for training alone")
  parser.add_argument("--noise_seeds", type=int, default=3,
                      help="initialisations of the teacher's cell trained alone (the noise)")
  parser.add_argument("--tau_at", default="",
                      help="comma-separated epochs at which to measure tau too (the search "
                           "resumed stage by stage), e.g. 1,2,4: tau next to the entropy")
  parser.add_argument("--standalone_from", default="",
                      help="an earlier study's --out on the same corpus and scale: reuse its "
                           "cells' trained-alone perplexities instead of training them again")
  parser.add_argument("--finetune_steps", type=int, default=0,
                      help="score each cell after this many training steps of the shared "
                           "weights on it alone (few-shot scoring; 0: the weights as they are)")
  parser.add_argument("--ptb_dir", default="../shared/data/ptb")
  parser.add_argument("--ptb_corpus", default="",
                      help="the folder the PTB corpus is built in (default: OUT/ptb_corpus); "
                           "studies given the same one can reuse each other's search folders")
  parser.add_argument("--resummarize", action="store_true",
                      help="recompute the figures and tables from --out's results.json")
  args = parser.parse_args()
  out = args.out or f"workdirs/science/ranking_{args.corpus}"
  output_folder(out)
  common.use_compilation_cache(out)
  result = (resummarize(out) if args.resummarize else
            run(out, args.corpus, args.scale, args.cells, args.shared_from, args.ptb_dir,
                tuple(args.set), args.noise_seeds, args.standalone_from,
                tau_epochs(args.tau_at), args.finetune_steps,
                args.ptb_corpus))
  print(open(os.path.join(out, "table.md")).read())
  print(f"({result['seconds'] / 60:.1f} min; {out}/results.json, table.md, ranking.png)")


if __name__ == "__main__":  # stops, full disks and mistakes in one paragraph
  run_main(lambda _: main(), resumes=False)([])
