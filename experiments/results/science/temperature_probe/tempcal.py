"""Probe (science.md, section 23): do the shared weights rank cells better once each cell's
softmax temperature is fitted (one scalar per cell, post hoc, no training)?

  PYTHONPATH=. python experiments/results/science/temperature_probe/tempcal.py planted SEED OUT \
      YARDSTICK   # YARDSTICK: a folder whose results.json is ranking_planted.json

Runs the default search of seed SEED (experiments.planted.common, small scale), then scores the
ranking study's 31 cells under its final shared weights on the validation split: plain, and with
the temperature that minimises the NLL on the first half of every row, scored on the second half
(and, fitted and scored on the whole split, an optimistic bound). Kendall tau of each against the
cells' trained-alone perplexities. About a minute a seed on 2 cores."""
import json, os, sys, time
import numpy as np, jax, jax.numpy as jnp
from experiments.planted import common, stats
from experiments.planted.ranking import reuse_standalone, prepare_ptb
from enas_jax.data.lm_batches import windows

corpus_name, seed, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
yard = sys.argv[4]
scale = common.scale_of("small")
config = common.search_config(scale, 0, "enas")
if corpus_name == "ptb":
  config.data.source = "directory"
  config.data.dir = prepare_ptb("../shared/data/ptb", "/tmp/tc/ptb_corpus")
config = common.override(config, [f"seed={seed}"])
t0 = time.time()
_, search = common.run_search(config, os.path.join(out, "search"))
task = search.task
corpus = task.corpus
known = reuse_standalone(yard, corpus, "small")
teacher = corpus.info.get("teacher_arch")
cells = common.random_cells(config.model.num_nodes, 30, seed=1,
                            exclude={teacher} if teacher else set())
if teacher: cells.append(teacher)
params = search.final_state.model.params
model = task.model

@jax.jit
def logits_step(params, inputs, hidden, arch, valid):
  return model.apply({"params": params}, inputs, hidden, arch, valid, train=False)

data = task.valid_eval_BxN
bptt = config.data.bptt
def collect(arch):
  arch = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.int32), arch)
  hidden = jnp.zeros((data.shape[0], config.model.hidden_dim), jnp.float32)
  L, Y, M = [], [], []
  for w in windows(data, bptt):
    lg, hidden = logits_step(params, jnp.asarray(w.inputs_BxW), hidden, arch,
                             jnp.asarray(w.valid_W))
    L.append(np.asarray(lg))
    Y.append(w.targets_BxW)
    M.append(np.broadcast_to(w.valid_W[None], w.targets_BxW.shape))
  return np.concatenate(L, 1), np.concatenate(Y, 1), np.concatenate(M, 1)

def nll(lg, y, m, t):
  z = lg / t
  z = z - z.max(-1, keepdims=True)
  lp = z - np.log(np.exp(z).sum(-1, keepdims=True))
  tok = np.take_along_axis(lp, y[..., None], -1)[..., 0]
  return -(tok * m).sum() / m.sum()

grid = np.exp(np.linspace(np.log(0.4), np.log(2.5), 61))
rows = []
for c in cells:
  lg, y, m = collect(common.arch_of(c))
  half = lg.shape[1] // 2
  a, b = (lg[:, :half], y[:, :half], m[:, :half]), (lg[:, half:], y[:, half:], m[:, half:])
  plain_all = nll(lg, y, m, 1.0)
  fit = [nll(*a, t) for t in grid]; tb = grid[int(np.argmin(fit))]
  fitall = [nll(lg, y, m, t) for t in grid]; tall = grid[int(np.argmin(fitall))]
  rows.append(dict(cell=c, alone=known[c], plain=float(np.exp(plain_all)),
                   plain_b=float(np.exp(nll(*b, 1.0))), cal_b=float(np.exp(nll(*b, tb))),
                   t_a=float(tb), cal_all=float(np.exp(min(fitall))), t_all=float(tall)))
alone = [r["alone"] for r in rows]
res = {k: stats.kendall_tau([r[k] for r in rows], alone)
       for k in ("plain", "plain_b", "cal_b", "cal_all")}
res["seconds"] = time.time() - t0
res["t_range"] = [min(r["t_all"] for r in rows), max(r["t_all"] for r in rows)]
print(json.dumps(res), flush=True)
json.dump({"res": res, "rows": rows}, open(os.path.join(out, "tempcal.json"), "w"), indent=1)
