"""Run by tests/test_data_parallel.py in a fresh process with 8 simulated CPU devices: one
shared step and one controller step, data-parallel against one device, then more steps the way
the search loop places them, each phase function compiled once. Prints one JSON line."""
import io
import json
import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8").strip()

import jax  # noqa: E402  (after the flag)
import numpy as np  # noqa: E402
from jax.sharding import PartitionSpec  # noqa: E402

from enas_jax.configs import cifar10_macro, quickstart  # noqa: E402
from enas_jax.io import metrics  # noqa: E402
from enas_jax.io.errors import UserError  # noqa: E402
from enas_jax.run import config as run_config  # noqa: E402
from enas_jax.run import search as search_run  # noqa: E402


def _run(config, workdir):
  return search_run.SearchRun(run_config.search_config(config), workdir, io.StringIO(),
                              metrics.Progress(enabled=False))


def _max_diff(a, b):
  return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
             for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def check(name, config, workdir, phases=("shared", "controller")):
  single = _run(config, os.path.join(workdir, "single"))
  config.parallel.data_parallel = True
  sharded = _run(config, os.path.join(workdir, "sharded"))
  key = jax.random.key(7)
  out = {}
  for phase in phases:
    results = []
    for run in (single, sharded):
      state = run.fresh_state()
      batches = run.task.shared_batches if phase == "shared" else run.task.reward_batches
      batch = next(batches(state, 1))
      if phase == "shared":
        args = run.placed(batch, state.model, state.ctrl.params, key, state.sums["shared"])
        new_state, sums = run.program.shared_step(*args)
        results.append((new_state.params, sums))
      else:
        args = run.placed(batch, state.ctrl, state.model.params, state.model.batch_stats, key,
                          state.sums["controller"])
        new_state, sums = run.program.controller_step(*args)
        results.append((new_state.params, sums))
      if run is sharded:
        split = args[-3][run.task.split_keys[0]]
        assert split.sharding.spec == PartitionSpec("data"), split.sharding
        assert len(split.addressable_shards) == 8
        assert split.addressable_shards[0].data.shape[0] == split.shape[0] // 8
    (p1, s1), (p2, s2) = results
    out[f"{name}_{phase}_param_diff"] = _max_diff(p1, p2)
    out[f"{name}_{phase}_metric_diff"] = _max_diff(s1, s2)
    out[f"{name}_{phase}_scale"] = max(float(np.max(np.abs(x))) for x in jax.tree_util.tree_leaves(s1))
  # more steps as the loop makes them (new batches, architectures, states): no recompilation
  state = sharded.fresh_state()
  for batch in sharded.task.shared_batches(state, 3):
    args = sharded.placed(batch, state.model, state.ctrl.params, key, state.sums["shared"])
    state.model, state.sums["shared"] = sharded.program.shared_step(*args)
  for batch in sharded.task.reward_batches(state, 3):
    args = sharded.placed(batch, state.ctrl, state.model.params, state.model.batch_stats, key,
                          state.sums["controller"])
    state.ctrl, state.sums["controller"] = sharded.program.controller_step(*args)
  out[f"{name}_traces"] = [sharded.program.shared_step._cache_size(),
                           sharded.program.controller_step._cache_size()]
  return out


def main(workdir):
  assert jax.device_count() == 8, jax.devices()
  figures = {}
  cnn = cifar10_macro.get_config("tiny")
  cnn.search.epochs = 1
  figures.update(check("macro", cnn, os.path.join(workdir, "macro")))
  rnn = quickstart.get_config("tiny")
  rnn.data.batch_size = 8
  rnn.search.epochs = 1
  figures.update(check("rnn", rnn, os.path.join(workdir, "rnn")))
  bad = cifar10_macro.get_config("tiny")
  bad.parallel.data_parallel = True
  bad.data.batch_size = 12
  try:
    _run(bad, os.path.join(workdir, "bad"))
  except UserError as err:
    figures["bad_batch_error"] = str(err)
  print(json.dumps(figures))


if __name__ == "__main__":
  main(sys.argv[1])
