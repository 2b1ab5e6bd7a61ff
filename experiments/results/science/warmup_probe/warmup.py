"""The twenty-second session's probe (science.md, section 21): does a learning-rate warm-up for
training alone stop the first-steps divergence of section 19, and what does it do to the
yardstick's figures?

Every training is the compare study's yardstick (`common.StandaloneTrainer`, the PTB corpus at
CPU scale, the `small` scale's ten annealed passes) with the learning rate ramped linearly over
the first `--warmup` steps (lr * (t + 1) / N at step t; 0: the yardstick as it is). Prints one
JSON line per training: the cell, the initialisation seed, exp(mean training NLL) over steps
17-32 (the screen's figure for that draw) and the validation perplexity at the end.

  # the tuning set: section 19's six cells that exploded, initialisation seeds 0, 1, 2
  PYTHONPATH=. python experiments/results/science/warmup_probe/warmup.py --warmup=64 \
      --corpus=workdirs/science/ptb_corpus --seeds=0,1,2 CELL ...
  # the answers of a compare study (its JSON), seed 0 as the study trains them
  PYTHONPATH=. python experiments/results/science/warmup_probe/warmup.py --warmup=64 \
      --corpus=workdirs/science/ptb_corpus \
      --answers=experiments/results/science/compare_ptb40.json --answer_seeds=20-39
"""
import argparse
import dataclasses
import json
import math

import numpy as np

from enas_jax.data.text import read_corpus
from experiments.planted import common


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--warmup", type=int, required=True)
  parser.add_argument("--corpus", required=True)
  parser.add_argument("--seeds", default="0")
  parser.add_argument("--answers", default="")
  parser.add_argument("--answer_seeds", default="")
  parser.add_argument("cells", nargs="*")
  args = parser.parse_args()
  jobs = [(cell, int(s)) for cell in args.cells for s in args.seeds.split(",")]
  if args.answers:
    lo, hi = (int(v) for v in args.answer_seeds.split("-"))
    runs = json.load(open(args.answers))["runs"]
    cells = dict.fromkeys(r["cell"] for r in runs if lo <= r["seed"] <= hi)
    jobs += [(cell, 0) for cell in cells]
  scale = dataclasses.replace(common.scale_of("small"), standalone_warmup_steps=args.warmup)
  corpus = read_corpus(args.corpus)
  trainer = common.StandaloneTrainer(common.search_config(scale, 0, "enas"), corpus, scale)
  for cell, seed in jobs:
    nll = []
    valid = trainer.valid_perplexity(common.arch_of(cell), seed=seed,
                                     on_step=lambda m: nll.append(float(m["nll"])))
    print(json.dumps({"cell": cell, "seed": seed, "warmup": args.warmup,
                      "screen_ppl": math.exp(min(float(np.mean(nll[16:32])), 700.0)),
                      "valid_ppl": valid}), flush=True)


if __name__ == "__main__":
  main()
