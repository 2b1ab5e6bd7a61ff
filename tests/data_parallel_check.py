"""Run by tests/test_data_parallel.py in a fresh process with 8 simulated CPU devices: for the
micro and recurrent spaces one shared, one controller and one derive step, data-parallel
against one device, then more steps the way the search loop places them, each phase function
compiled once; then one whole tiny recurrent search data-parallel against one device. Prints one
JSON line."""
import io
import json
import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8").strip()

import jax  # noqa: E402  (after the flag)
import numpy as np  # noqa: E402
from jax.sharding import PartitionSpec  # noqa: E402

from enas_jax.configs import cifar10_macro, cifar10_micro, quickstart  # noqa: E402
from enas_jax.io import metrics  # noqa: E402
from enas_jax.io.errors import UserError  # noqa: E402
from enas_jax.run import config as run_config  # noqa: E402
from enas_jax.run import search as search_run  # noqa: E402
from tests import runs  # noqa: E402


def _run(config, workdir):
  return search_run.SearchRun(run_config.search_config(config), workdir, io.StringIO(),
                              metrics.Progress(enabled=False))


def _max_diff(a, b):
  return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
             for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def _steps(run, state, key, shared, controller):
  """`shared` shared steps, then `controller` controller steps, from `state`, placed as the loop
  places them (each split batch checked)."""
  values = run.shared_architectures(state, key, False)
  for batch in run.task.shared_batches(state, shared):
    args = run.placed(batch, state.model, next(values), key, state.sums["shared"])
    _check_split(run, args[-3])
    state.model, state.sums["shared"] = run.program.shared_step(*args)
  for batch in run.task.reward_batches(state, controller):
    args = run.placed(batch, state.ctrl, state.model.params, state.model.batch_stats, key,
                      state.sums["controller"])
    _check_split(run, args[-3])
    state.ctrl, state.sums["controller"] = run.program.controller_step(*args)
  return state


def _one_of_each(run, key):
  """From the fresh state, as the loop calls them: one shared step, two controller steps on its
  weights, one derive step on both. Returns each phase's (weights or decisions, figures)."""
  state = _steps(run, run.fresh_state(), key, 1, 0)
  out = {"shared": (state.model.params, state.sums["shared"])}
  # two controller steps: the first sets the reward baseline (its update is zero), the second
  # moves the controller by its advantage
  state = _steps(run, state, key, 0, 2)
  out["controller"] = (state.ctrl.params, state.sums["controller"])
  # the derive step as the loop calls it: the states as the steps left them, one batch
  values, _, figures = run.program.derive_step(*run.placed(
      run.task.derive_batch(0), state.ctrl, state.model.params, state.model.batch_stats,
      key, after=1))
  out["derive"] = (values, figures)
  return out


def _check_split(run, batch):
  if run.parallel is None:
    return
  split = batch[run.task.split_keys[0]]
  assert split.sharding.spec == PartitionSpec("data"), split.sharding
  assert len(split.addressable_shards) == 8
  assert split.addressable_shards[0].data.shape[0] == split.shape[0] // 8


def check(name, config, workdir, traces=None):
  """Every phase data-parallel against one device; then more steps the way the loop makes them
  (new batches, architectures, states) with no recompilation. `traces`: a dict counting the
  data-parallel run's traces (`runs.counting_traces`)."""
  single = _run(config, os.path.join(workdir, "single"))
  config.parallel.data_parallel = True
  with runs.counting_traces(traces if traces is not None else {}):
    sharded = _run(config, os.path.join(workdir, "sharded"))
  key = jax.random.key(7)
  one, many = _one_of_each(single, key), _one_of_each(sharded, key)
  out = {}
  for phase in ("shared", "controller", "derive"):
    (p1, s1), (p2, s2) = one[phase], many[phase]
    out[f"{name}_{phase}_param_diff"] = _max_diff(p1, p2)  # derive: the sampled decisions
    out[f"{name}_{phase}_metric_diff"] = _max_diff(s1, s2)
    out[f"{name}_{phase}_scale"] = max(float(np.max(np.abs(x)))
                                       for x in jax.tree_util.tree_leaves(s1))
  state = _steps(sharded, sharded.fresh_state(), key, 3, 3)
  for epoch in range(2):
    sharded.program.derive_step(*sharded.placed(
        sharded.task.derive_batch(epoch), state.ctrl, state.model.params,
        state.model.batch_stats, jax.random.fold_in(key, epoch), after=1))
  out[f"{name}_traces"] = [sharded.program.shared_step._cache_size(),
                           sharded.program.controller_step._cache_size(),
                           sharded.program.derive_step._cache_size()]
  return out, single, sharded


def whole_search(name, single, sharded):
  """The two runs' whole searches (the loop, its placement, checkpoints, derived cells): the
  same cells and figures up to float rounding, the final weights likewise."""
  compiles = []
  a = single.execute()
  with runs.counting_compiles(compiles):
    b = sharded.execute()
  out = {f"{name}_search_cells_equal": [h["authors"] for h in a["history"]] ==
         [h["authors"] for h in b["history"]]}
  figures = [(h1[k], h2[k]) for h1, h2 in zip(a["history"], b["history"]) for k in h1
             if isinstance(h1[k], float) and k != "seconds" and "time" not in k]
  out[f"{name}_search_figure_rel_diff"] = max(abs(x - y) / max(abs(x), 1.0) for x, y in figures)
  out[f"{name}_search_figures"] = len(figures)
  # the answer's screen (`search.screen_steps`), when the config runs it: the same candidates
  # and verdicts, each figure (32 steps alone, data-parallel) within float rounding
  screens = [s.get("screen") or {"candidates": []} for s in (a, b)]
  out[f"{name}_screen_verdicts_equal"] = [
      [(c["authors"], c["passed"]) for c in s["candidates"]] for s in screens]
  out[f"{name}_screen_rel_diff"] = max(
      [abs(x["train_ppl"] - y["train_ppl"]) / x["train_ppl"]
       for x, y in zip(*(s["candidates"] for s in screens))], default=0.0)
  out[f"{name}_search_param_diff"] = _max_diff(
      (single.final_state.model.params, single.final_state.ctrl.params),
      (sharded.final_state.model.params, sharded.final_state.ctrl.params))
  out[f"{name}_search_traces"] = [sharded.program.shared_step._cache_size(),
                                  sharded.program.controller_step._cache_size(),
                                  sharded.program.derive_step._cache_size()]
  # which programs the sharded search compiled, by thread: its steps are compiled already
  # (`check`), so only what compiling ahead lowered for other placements would show
  counts = {}
  for program, thread in compiles:
    if program in ("jit(draw)", "jit(score_S)", "jit(guarded)", "jit(eval_step)"):
      where = counts.setdefault("ahead" if thread == "compile-ahead" else "main", {})
      where[program] = where.get(program, 0) + 1
  out[f"{name}_search_compiles"] = counts
  return out


def main(workdir):
  assert jax.device_count() == 8, jax.devices()
  figures = {}
  # The image spaces share their task, batch norm and placement: the micro space (cells,
  # reductions, drop-path) stands for both; the macro space's own steps are checked on one device
  # elsewhere (tests/test_cnn_search.py). It cost 45 of this check's 150 s on 2 CPU cores.
  micro = cifar10_micro.get_config("tiny")
  micro.search.epochs = 1
  figures.update(check("micro", micro, os.path.join(workdir, "micro"))[0])
  rnn = quickstart.get_config("tiny")
  rnn.data.batch_size = 8
  rnn.search.epochs = 2
  traces = {}
  rnn_figures, single, sharded = check("rnn", rnn, os.path.join(workdir, "rnn"), traces)
  figures.update(rnn_figures)
  figures.update(whole_search("rnn", single, sharded))
  figures["rnn_step_traces"] = traces  # the metric shapes' traces are the calls' traces
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
