"""The twentieth session's probe (science.md, section 19), kept as run: cells trained alone by
the compare study's trainer on its PTB corpus, exactly as `compare` trains them (seed 0), with
the training perplexity by quarter of each pass, the gradient norms and the validation figure.

  PYTHONPATH=. python experiments/results/science/screen_probe/trajectory.py "2 0 3 0 1 2 1 0 1 4 1" ..."""
import sys
import time
import jax, jax.numpy as jnp, numpy as np
from experiments.planted import common
from enas_jax.data.text import read_corpus
from enas_jax.data.lm_batches import windows
from enas_jax.ops.params import set_learning_rate
from enas_jax.tasks.language import steps as lm_steps

corpus = read_corpus("workdirs/science/v18/compare_ptb20/ptb_corpus")
scale = common.scale_of("small")
tr = common.StandaloneTrainer(common.search_config(scale, 0, "enas"), corpus, scale)
print("vocab", corpus.vocab_size, "train", corpus.train.size, flush=True)
for cell in sys.argv[1:]:
  arch = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.int32), common.arch_of(cell))
  d = tr.cfg.data; key = jax.random.key(0)
  state = lm_steps.init_state(tr.model, tr.optimizer, jax.random.fold_in(key, 0), d.batch_size, arch)
  t = time.time(); trace = []
  for epoch in range(scale.standalone_epochs):
    lr = tr.cfg.shared.lr * scale.standalone_lr_decay ** max(0, epoch - scale.standalone_decay_start)
    state = state.replace(hidden=jnp.zeros_like(state.hidden), opt_state=set_learning_rate(state.opt_state, lr))
    nll, gn = [], []
    for window in windows(tr.train_BxN, d.bptt, 0, epoch):
      step_key = jax.random.fold_in(jax.random.fold_in(key, 1), int(state.step))
      state, m = tr.train_step(state, lm_steps.window_batch(window, d.bptt), arch, step_key)
      nll.append(float(m["nll"])); gn.append(float(m["grad_norm"]))
    q = len(nll) // 4
    ppl = lm_steps.evaluate_perplexity(tr.eval_step, state.params, state.batch_stats, tr.valid_BxN, d.bptt, arch)
    print(f"{cell} pass {epoch} lr {lr:.2f} steps {len(nll)} train ppl by quarter "
          f"{[round(float(np.exp(np.mean(nll[i*q:(i+1)*q]))),1) for i in range(4)]} max grad {max(gn):.2f} "
          f"median grad {np.median(gn):.2f} valid {ppl:.2f}", flush=True)
  print(cell, "done", round(time.time() - t, 1), flush=True)
