"""The twentieth session's probe (science.md, section 19), kept as run: does the screen's figure
predict the outcome of the same draw? Each cell trained alone by the compare study's trainer on
its PTB corpus from initialisation seeds 0, 1, 2 (seed s: key s, data order s), the full recipe;
prints exp(mean training NLL) over steps 17-32 (the screen's figure for that very draw) and the
validation perplexity at the end.

  PYTHONPATH=. python experiments/results/science/screen_probe/same_draw.py CELL ...
"""
import json
import math
import sys

import jax
import jax.numpy as jnp
import numpy as np

from enas_jax.data.lm_batches import windows
from enas_jax.data.text import read_corpus
from enas_jax.ops.params import set_learning_rate
from enas_jax.tasks.language import steps as lm_steps
from experiments.planted import common

corpus = read_corpus("workdirs/science/v18/compare_ptb20/ptb_corpus")
scale = common.scale_of("small")
tr = common.StandaloneTrainer(common.search_config(scale, 0, "enas"), corpus, scale)
d = tr.cfg.data
for cell in sys.argv[1:]:
  arch = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.int32), common.arch_of(cell))
  for seed in (0, 1, 2):
    key = jax.random.key(seed)
    state = lm_steps.init_state(tr.model, tr.optimizer, jax.random.fold_in(key, 0), d.batch_size,
                                arch)
    nll = []
    for epoch in range(scale.standalone_epochs):
      lr = tr.cfg.shared.lr * scale.standalone_lr_decay ** max(
          0, epoch - scale.standalone_decay_start)
      state = state.replace(hidden=jnp.zeros_like(state.hidden),
                            opt_state=set_learning_rate(state.opt_state, lr))
      for window in windows(tr.train_BxN, d.bptt, seed, epoch):
        step_key = jax.random.fold_in(jax.random.fold_in(key, 1), int(state.step))
        state, m = tr.train_step(state, lm_steps.window_batch(window, d.bptt), arch, step_key)
        if len(nll) < 32:
          nll.append(float(m["nll"]))
    valid = lm_steps.evaluate_perplexity(tr.eval_step, state.params, state.batch_stats,
                                         tr.valid_BxN, d.bptt, arch)
    print(json.dumps({"cell": cell, "seed": seed,
                      "screen_ppl": math.exp(min(float(np.mean(nll[16:32])), 700.0)),
                      "valid_ppl": valid}), flush=True)
