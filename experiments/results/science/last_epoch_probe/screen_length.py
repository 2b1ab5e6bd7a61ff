r"""Scratch probe (science.md section 29): would a longer screen have failed the two last epoch's
cells that passed the 32-step screen and do not train alone (PTB seeds 4 and 14)? Each cell
screened at several lengths with the search's own screen (`run/screen.py`: the same weights,
batches and keys as the finish's, only `search.screen_steps` changed), beside the answers of the
same searches and others that train alone well.

  PYTHONPATH=. python experiments/results/science/last_epoch_probe/screen_length.py \
      --out=workdirs/science/rule_ptb
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os

from enas_jax.run import screen as screen_lib
from experiments.planted import common, ranking
from probe import load_search, screen_key  # this folder: sys.path[0] when run as a script

# (seed, which cell): the two that stall alone, then cells of the same study that train alone
CELLS = ((4, "last_epoch_cell"), (14, "last_epoch_cell"), (4, "answer"), (14, "answer"),
         (13, "answer"), (0, "answer"), (12, "last_epoch_cell"), (35, "answer"))


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--out", required=True)
  parser.add_argument("--steps", default="32,64,128,256")
  parser.add_argument("--ptb_dir", default="../shared/data/ptb")
  args = parser.parse_args()
  data_dir = ranking.prepare_ptb(args.ptb_dir, os.path.join(args.out, "ptb_corpus"))
  for seed, which in CELLS:
    row = json.load(open(os.path.join(args.out, f"seed{seed}.json")))
    _, run = load_search(args.out, seed, data_dir=data_dir)
    authors = row[which]
    alone = row["answer_alone"] if authors == row["answer"] else row["last_alone"]
    key, search = screen_key(run), run.cfg.search
    figures = {}
    for steps in (int(s) for s in args.steps.split(",")):
      run.cfg = dataclasses.replace(run.cfg, search=dataclasses.replace(search, screen_steps=steps))
      figures[steps] = round(screen_lib.screen(run, common.arch_of(authors), key)["train_ppl"], 1)
    print(json.dumps({"seed": seed, "cell": which, "authors": authors,
                      "alone": round(alone, 2), "screen_ppl_by_steps": figures}), flush=True)


if __name__ == "__main__":
  main()
