"""The twentieth session's probe (science.md, section 19), kept as run: each cell of a ranking
study trained alone from fresh weights for 64 steps; prints exp(mean training NLL) over steps
K/2+1..K for K = 8, 16, 32, 64 beside the cell's recorded stand-alone figure.

  PYTHONPATH=. python experiments/results/science/screen_probe/first_steps.py ptb|planted
(ptb reads the PTB corpus a `compare --corpus=ptb` study wrote, workdirs/science/v18/...)"""
import sys, json, math
import jax, jax.numpy as jnp, numpy as np
from experiments.planted import common
from enas_jax.data.text import read_corpus
from enas_jax.data.lm_batches import windows
from enas_jax.tasks.language import steps as lm_steps

which = sys.argv[1]
if which == "ptb":
  corpus = read_corpus("workdirs/science/v18/compare_ptb20/ptb_corpus")
  rows = json.load(open("experiments/results/science/ranking_ptb.json"))["rows"]
  rows.append({"cell": "2 0 3 0 1 2 1 0 1 4 1", "standalone_ppl": 1105.37})
else:
  rows = json.load(open("experiments/results/science/ranking_planted.json"))["rows"]
  corpus = None
scale = common.scale_of("small")
config = common.search_config(scale, 0, "enas")
if corpus is None:
  summary, search = common.run_search(common.override(config, ["search.epochs=1", "search.controller_steps=1", "search.derive_samples=1"]), "/tmp/scr/planted_one")
  corpus = search.task.corpus
tr = common.StandaloneTrainer(config, corpus, scale)
print("vocab", corpus.vocab_size, "log V", math.log(corpus.vocab_size), flush=True)
K = 64
for row in rows:
  arch = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.int32), common.arch_of(row["cell"]))
  d = tr.cfg.data; key = jax.random.key(0)
  state = lm_steps.init_state(tr.model, tr.optimizer, jax.random.fold_in(key, 0), d.batch_size, arch)
  nll = []
  for i, window in enumerate(windows(tr.train_BxN, d.bptt, 0, 0)):
    if i == K: break
    state, m = tr.train_step(state, lm_steps.window_batch(window, d.bptt), arch, jax.random.fold_in(key, i))
    nll.append(float(m["nll"]))
  figs = {k: float(np.mean(nll[k // 2:k])) for k in (8, 16, 32, 64)}
  print(json.dumps({"cell": row["cell"], "alone": row["standalone_ppl"], **{f"ppl{k}": round(math.exp(min(v, 700)), 1) for k, v in figs.items()}}), flush=True)
