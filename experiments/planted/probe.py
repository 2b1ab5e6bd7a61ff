r"""A quick probe of a planted-benchmark design: the teacher's cell and a few random cells, each
trained alone, before a full ranking study is worth its 15 minutes.

  python -m experiments.planted.probe --out=workdirs/science/probes/width32 \
      --scale_set=width=32 --cells=8
  python -m experiments.planted.probe --out=DIR --set=data.planted.arch="2 0 2 1 3 2 1 1 1 0 0"
  python -m experiments.planted.probe --out=DIR --cell="2 0 0 1 1 0 0 0 3 2 2" --noise_seeds=2

`--set SECTION.FIELD=VALUE` changes the corpus or the student (the study's search config, e.g.
`data.planted.weight_scale=1.0`); `--scale_set FIELD=VALUE` changes the study scale
(`common.Scale`: `width`, `standalone_epochs`, `teacher_weight_scale`, ...). Trains the teacher's
cell alone from `--noise_seeds` initialisations (the noise) and the first `--cells` of the
ranking study's random cells (`common.random_cells(seed=1)`, so a probe's cells are the study's
first ones) or the cells named by `--cell CELL` (e.g. those that beat the teacher's) from one,
with the yardstick's recipe (`common.StandaloneTrainer`), from initialisation seed `--seed` (the
yardstick's: 0; another seed measures how well the yardstick agrees with itself). Prints and
writes to OUT/probe.json: the teacher's optimal perplexity, each cell's trained-alone
perplexity, the teacher's cell's rank and gap to the optimum, the noise's sd and the spread
(median minus best) over it. The figures of every probe run so far:
experiments/results/science/benchmark_design.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import time

from enas_jax.io.errors import UserError, run_main
from enas_jax.io.workdir import output_folder
from enas_jax.run import config as run_config
from enas_jax.spaces.rnn import arch as rnn_arch, formats
from enas_jax.tasks.language.data import load_corpus
from experiments.planted import common, ranking


def scaled(name: str, changes: list[str]) -> common.Scale:
  scale = common.scale_of(name)
  fields = {f.name for f in dataclasses.fields(scale)}
  updates = {}
  for change in changes:
    field, sep, text = change.partition("=")
    if not sep or field not in fields:
      raise UserError(f"--scale_set {change}: write FIELD=VALUE with FIELD one of "
                      f"{', '.join(sorted(fields))}.")
    updates[field] = common.typed_value(text, getattr(scale, field), f"--scale_set {change}")
  return dataclasses.replace(scale, **updates)


def run(out: str, scale: common.Scale, settings: list[str], cells: int, noise_seeds: int,
        chosen: tuple[str, ...] = (), seed: int = 0) -> dict:
  if noise_seeds < 1 or (cells < 1 and not chosen):
    raise UserError(f"--noise_seeds is {noise_seeds}, --cells {cells}: a probe trains the "
                    f"teacher's cell from at least 1 initialisation and at least 1 other cell "
                    f"(or the cells given by --cell).")
  started = time.time()
  config = common.override(common.search_config(scale, 0, "random"), settings)
  for text in chosen:  # the user's cells: checked before any training
    rnn_arch.validate(formats.from_authors_string(text, where="--cell"), config.model.num_nodes,
                      where=f"--cell {text!r}")
  corpus = load_corpus(run_config.search_config(config).data)
  teacher = corpus.info["teacher_arch"]
  trainer = common.StandaloneTrainer(config, corpus, scale, seed=seed, keep_in=out)
  noise = [trainer.valid_perplexity(common.arch_of(teacher), seed=s)
           for s in range(seed, seed + noise_seeds)]
  print(f"teacher {teacher}: {', '.join(f'{p:.3f}' for p in noise)}; optimum "
        f"{corpus.info['teacher_ppl_valid']:.3f}", flush=True)
  rows = [{"cell": teacher, "teacher": True, "standalone_ppl": noise[0]}]
  others = chosen or common.random_cells(config.model.num_nodes, cells, seed=1,
                                         exclude={teacher})
  for text in others:
    rows.append({"cell": text, "teacher": False,
                 "standalone_ppl": trainer.valid_perplexity(common.arch_of(text))})
    print(f"{text}: {rows[-1]['standalone_ppl']:.3f}", flush=True)
  result = {"settings": settings, "seed": seed, "scale": dataclasses.asdict(scale),
            "corpus": common.corpus_facts(corpus), "rows": rows, "noise_ppl_seeds": noise,
            "cells": len(rows), "noise_sd": None, "spread_over_noise": None,  # one init: none
            **ranking.standalone_figures(rows, noise, corpus.info["teacher_ppl_valid"]),
            "seconds_per_cell": (time.time() - started) / (len(rows) + noise_seeds - 1)}
  common.write_json(os.path.join(out, "probe.json"), result)
  return result


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", required=True)
  parser.add_argument("--scale", default="small", choices=sorted(common.SCALES))
  parser.add_argument("--scale_set", action="append", default=[], metavar="FIELD=VALUE")
  parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
  parser.add_argument("--cells", type=int, default=8)
  parser.add_argument("--noise_seeds", type=int, default=3)
  parser.add_argument("--seed", type=int, default=0,
                      help="the initialisation seed of every cell (the noise: seeds SEED, "
                           "SEED+1, ...); the yardstick's is 0")
  parser.add_argument("--cell", action="append", default=[], metavar="CELL",
                      help="train these cells (authors' strings) instead of --cells random ones")
  args = parser.parse_args()
  output_folder(args.out)
  common.use_compilation_cache(args.out)
  r = run(args.out, scaled(args.scale, args.scale_set), args.set, args.cells,
          args.noise_seeds, tuple(args.cell), args.seed)
  noise = (f"noise sd {r['noise_sd']:.4f}, spread / sd {r['spread_over_noise']:.1f}"
           if r["noise_sd"] is not None else "noise not measured (--noise_seeds=1)")
  print(f"teacher's cell {r['teacher_rank']} of {r['cells']}, "
        f"{100 * r['teacher_alone_gap']:.1f}% above the optimum; {noise}; "
        f"{r['seconds_per_cell']:.1f} s a cell")


if __name__ == "__main__":  # stops, full disks and mistakes in one paragraph
  run_main(lambda _: main(), resumes=False)([])
