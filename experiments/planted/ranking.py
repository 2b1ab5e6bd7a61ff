r"""How well the shared weights rank cells: Kendall's tau between each cell's perplexity under the
shared weights and its perplexity when trained alone from scratch.

  python -m experiments.planted.ranking --out=workdirs/science/ranking_planted          # planted
  python -m experiments.planted.ranking --corpus=ptb --out=workdirs/science/ranking_ptb
      # Penn Treebank at CPU scale: PTB's validation split as training text, its test split
      # halved into validation and test (only those two splits are in --ptb_dir)

One search trains the shared weights (`--shared_from=random`: the uniform controller, so every
cell's edges are trained alike; or `enas`). Then `--cells` distinct cells drawn uniformly (and, on
the planted corpus, the teacher's cell) are scored on the whole validation split under the final
shared weights and trained alone with one recipe and seed (`common.StandaloneTrainer`). Reported:
Kendall's tau-b with a permutation p-value, the rank of the best cell trained alone under the
shared weights, and the perplexity lost by taking the shared weights' favourite. Writes
results.json, table.md and ranking.png to --out.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from experiments.planted import common, stats
from enas_jax.io.errors import UserError


def prepare_ptb(ptb_dir: str, out: str) -> str:
  """A corpus directory from PTB's valid and test files: train = valid, valid/test = the halves
  of test (whole lines)."""
  paths = {name: os.path.join(ptb_dir, f"{name}.txt") for name in ("valid", "test")}
  for name, path in paths.items():
    if not os.path.isfile(path):
      raise UserError(f"{path} does not exist: --ptb_dir must hold PTB's valid.txt and test.txt "
                      f"(this study trains on the validation split and evaluates on the test "
                      f"split's halves).")
  corpus_dir = os.path.join(out, "ptb_corpus")
  os.makedirs(corpus_dir, exist_ok=True)
  with open(paths["valid"]) as f:
    train = f.read()
  with open(paths["test"]) as f:
    lines = f.read().splitlines(keepends=True)
  half = len(lines) // 2
  for name, text in (("train", train), ("valid", "".join(lines[:half])),
                     ("test", "".join(lines[half:]))):
    with open(os.path.join(corpus_dir, f"{name}.txt"), "w") as f:
      f.write(text)
  return corpus_dir


def run(out: str, corpus_name: str, scale_name: str, cells: int, shared_from: str,
        ptb_dir: str) -> dict:
  scale = common.scale_of(scale_name)
  started = time.time()
  config = common.search_config(scale, 0, shared_from)
  if corpus_name == "ptb":
    config.data.source = "directory"
    config.data.dir = prepare_ptb(ptb_dir, out)
  summary, search = common.run_search(config, os.path.join(out, "search"))
  corpus = search.task.corpus
  teacher = corpus.info.get("teacher_arch")
  candidates = common.random_cells(config.model.num_nodes, cells, seed=1,
                                   exclude={teacher} if teacher else set())
  if teacher and len(common.arch_of(teacher).act_N) == config.model.num_nodes:
    candidates.append(teacher)
  trainer = common.StandaloneTrainer(config, corpus, scale.standalone_epochs)
  rows = []
  for text in candidates:
    arch = common.arch_of(text)
    rows.append({"cell": text, "teacher": text == teacher,
                 "shared_ppl": common.shared_perplexity(search, arch),
                 "standalone_ppl": trainer.valid_perplexity(arch)})
    print(f"{text}: shared {rows[-1]['shared_ppl']:.2f}  alone {rows[-1]['standalone_ppl']:.2f}",
          flush=True)
  result = {"corpus": common.corpus_facts(corpus), "scale": scale_name,
            "shared_from": shared_from, "rows": rows, **figures(rows, corpus.vocab_size),
            "seconds": time.time() - started}
  write_outputs(out, result)
  return result


def figures(rows: list[dict], vocab_size: int) -> dict:
  """Kendall's tau (all cells, and without those broken under the shared weights), its p-value,
  where the best cell trained alone ranks under the shared weights, the shared favourite's cost."""
  shared = [r["shared_ppl"] for r in rows]
  alone = [r["standalone_ppl"] for r in rows]
  best_alone = int(np.argmin(alone))
  shared_rank = sorted(range(len(rows)), key=lambda i: shared[i])
  pick = shared_rank[0]
  # cells worse under the shared weights than guessing uniformly: broken there, not bad
  sane = [i for i in range(len(rows)) if shared[i] < vocab_size]
  return {"cells": len(rows),
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


def resummarize(out: str) -> dict:
  """The figures and outputs again from `out`/results.json's rows (nothing retrained)."""
  with open(os.path.join(out, "results.json")) as f:
    result = json.load(f)
  result.update(figures(result["rows"], result["corpus"]["vocab"]))
  write_outputs(out, result)
  return result


def write_outputs(out: str, result: dict) -> None:
  common.write_json(os.path.join(out, "results.json"), result)
  rows = sorted(result["rows"], key=lambda r: r["standalone_ppl"])
  lines = [f"Corpus {result['corpus']['name']}; shared weights from a `{result['shared_from']}` "
           f"search; {result['cells']} cells"
           f"{'; batch norm on every node' if result.get('batch_norm') else ''}.", "",
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
  with open(os.path.join(out, "table.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(5, 4))
  ax.set_xscale("log")
  ax.scatter([r["shared_ppl"] for r in result["rows"]],
             [r["standalone_ppl"] for r in result["rows"]],
             c=["red" if r["teacher"] else "tab:blue" for r in result["rows"]])
  ax.set_xlabel("valid ppl under the shared weights")
  ax.set_ylabel("valid ppl trained alone")
  ax.set_title(f"{result['corpus']['name']}: Kendall tau {result['kendall_tau']:.2f}", fontsize=10)
  fig.tight_layout()
  fig.savefig(os.path.join(out, "ranking.png"), dpi=100)
  plt.close(fig)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--corpus", default="planted", choices=["planted", "ptb"])
  parser.add_argument("--out", default="")
  parser.add_argument("--scale", default="small", choices=sorted(common.SCALES))
  parser.add_argument("--cells", type=int, default=20)
  parser.add_argument("--shared_from", default="random", choices=["random", "enas"])
  parser.add_argument("--ptb_dir", default="../shared/data/ptb")
  parser.add_argument("--resummarize", action="store_true",
                      help="recompute the figures and tables from --out's results.json")
  args = parser.parse_args()
  out = args.out or f"workdirs/science/ranking_{args.corpus}"
  os.makedirs(out, exist_ok=True)
  common.use_compilation_cache(out)
  try:
    result = (resummarize(out) if args.resummarize else
              run(out, args.corpus, args.scale, args.cells, args.shared_from, args.ptb_dir))
  except UserError as err:
    raise SystemExit(f"error: {err}") from None
  print(open(os.path.join(out, "table.md")).read())
  print(f"({result['seconds'] / 60:.1f} min; {out}/results.json, table.md, ranking.png)")


if __name__ == "__main__":
  main()
