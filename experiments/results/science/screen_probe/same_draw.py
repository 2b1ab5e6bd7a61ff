"""The twentieth session's probe (science.md, section 19): does the screen's figure
predict the outcome of the same draw? Each cell trained alone by the compare study's trainer on
its PTB corpus from initialisation seeds 0, 1, 2 (seed s: key s, data order s), the full recipe;
prints exp(mean training NLL) over steps 17-32 (the screen's figure for that very draw, read through
`StandaloneTrainer`'s `on_step`: the run's own training, to the bit) and the
validation perplexity at the end.

  PYTHONPATH=. python experiments/results/science/screen_probe/same_draw.py CELL ...
"""
import json
import math
import sys

import numpy as np

from enas_jax.data.text import read_corpus
from experiments.planted import common

corpus = read_corpus("workdirs/science/v18/compare_ptb20/ptb_corpus")
scale = common.scale_of("small")
tr = common.StandaloneTrainer(common.search_config(scale, 0, "enas"), corpus, scale)
for cell in sys.argv[1:]:
  for seed in (0, 1, 2):
    nll = []
    valid = tr.valid_perplexity(common.arch_of(cell), seed=seed,
                                on_step=lambda m: nll.append(float(m["nll"])))
    print(json.dumps({"cell": cell, "seed": seed,
                      "screen_ppl": math.exp(min(float(np.mean(nll[16:32])), 700.0)),
                      "valid_ppl": valid}), flush=True)
