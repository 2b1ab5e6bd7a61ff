"""Compilations of every jitted search phase over 1,000 sampled architectures, per search space.

For the recurrent, macro and micro searches this builds the real search program (the same
`SearchRun` the CLI runs, small shapes) and calls each phase function the way the loop calls it:
- shared step: one training batch per call, a fresh architecture drawn for each call;
- controller step: `controller.num_samples` sampled architectures rewarded per call;
- derive step: `search.derive_samples` architectures drawn and scored per call;
- the evaluation function (`eval_step` / `accuracy`) with an explicit architecture argument,
  one new random architecture per call.
It counts the architectures each phase saw (and how many were distinct) and compilations: the
jitted function's cache entries (`cache`, from `_cache_size()`), and JAX's own backend-compile
events (`jax.monitoring`) during the first call (`compiles`: the step and the small helpers it
needs once) and during all later calls (`later`: must be 0). `1st s` is the first call's time,
compilation included; `later ms` the mean time of the later calls. Exit status 1 if any phase
compiled twice.

Usage:
  python experiments/bench/compile_count.py                 # 1,000 architectures per phase
  python experiments/bench/compile_count.py --archs=200 --spaces=rnn
"""
from __future__ import annotations

import argparse
import io
import math
import os
import tempfile
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import machine_info  # this folder: sys.path[0] when run as a script
from enas_jax.configs import cifar10_macro, cifar10_micro, quickstart
from enas_jax.controller import policy as ctl
from enas_jax.io import metrics
from enas_jax.run import config as run_config
from enas_jax.run import search as search_run
from enas_jax.spaces.macro import arch as macro_arch
from enas_jax.spaces.micro import arch as micro_arch
from enas_jax.spaces.rnn import arch as rnn_arch

_COMPILES = [0]


def _on_event(event: str, duration: float, **kwargs: Any) -> None:
  del duration, kwargs
  if event == "/jax/core/compile/backend_compile_duration":
    _COMPILES[0] += 1


jax.monitoring.register_event_duration_secs_listener(_on_event)


def _configs() -> dict[str, Any]:
  rnn = quickstart.get_config("tiny")
  rnn.model.num_nodes = 12  # the paper's cell size: a space of 12! * 4^12 cells
  rnn.data.planted.arch = ""
  rnn.controller.num_samples = 4  # rewards of several architectures per update
  macro = cifar10_macro.get_config("tiny")
  macro.controller.num_samples = 4
  micro = cifar10_micro.get_config("tiny")
  micro.controller.num_samples = 4
  return {"rnn": rnn, "macro": macro, "micro": micro}


def _key_of(values: np.ndarray) -> bytes:
  return np.asarray(values, np.int32).tobytes()


class PhaseCounter:
  """Calls of one phase function: architectures seen, distinct ones, compilations."""

  def __init__(self, name: str, fn: Any):
    self.name, self.fn = name, fn
    self.archs = 0
    self.distinct: set[bytes] = set()
    self.compiles_first = 0
    self.compiles_after_first = 0
    self.calls = 0
    self.first_seconds = 0.0  # the first call: tracing and compilation included
    self.seconds = 0.0  # the later calls

  def call(self, archs_D: list[np.ndarray], *args: Any) -> Any:
    before = _COMPILES[0]
    t0 = time.perf_counter()
    out = self.fn(*args)
    jax.block_until_ready(out)
    if self.calls:
      self.seconds += time.perf_counter() - t0
      self.compiles_after_first += _COMPILES[0] - before
    else:
      self.first_seconds = time.perf_counter() - t0
      self.compiles_first = _COMPILES[0] - before
    self.calls += 1
    self.archs += len(archs_D)
    self.distinct.update(_key_of(a) for a in archs_D)
    return out

  def row(self) -> str:
    return (f"{self.name:<16} {self.calls:>6} {self.archs:>7} {len(self.distinct):>8} "
            f"{self.fn._cache_size():>6} {self.compiles_first:>9} {self.compiles_after_first:>9} "
            f"{self.first_seconds:>8.1f} {1e3 * self.seconds / max(self.calls - 1, 1):>9.1f}")


def bench_space(name: str, config: Any, n_archs: int, workdir: str) -> list[str]:
  run = search_run.SearchRun(run_config.search_config(config), workdir, io.StringIO(),
                       metrics.Progress(enabled=False))
  prog, cfg = run.program, run.cfg
  state = run.fresh_state()
  base = jax.random.key(cfg.seed)
  sample_many = jax.jit(lambda p, k, n: ctl.sample_many(prog.controller, p, k, n).values,
                        static_argnums=2)

  shared = PhaseCounter("shared step", prog.shared_step)
  key = jax.random.fold_in(base, 1)
  archs = run.shared_architectures(state, key, warming=False)  # as the search draws them
  for batch in run.task.shared_batches(state, n_archs):
    arch = next(archs)
    args = run.placed(batch, state.model, arch, key, state.sums["shared"])
    state.model, state.sums["shared"] = shared.call([arch], *args)

  control = PhaseCounter("controller step", prog.controller_step)
  key = jax.random.fold_in(base, 2)
  n_samples = cfg.controller.num_samples
  for batch in run.task.reward_batches(state, math.ceil(n_archs / n_samples)):
    sample_key = jax.random.fold_in(key, int(state.ctrl.step))
    archs = list(np.asarray(sample_many(state.ctrl.params, sample_key, n_samples)))
    args = run.placed(batch, state.ctrl, state.model.params, state.model.batch_stats, key,
                      state.sums["controller"])
    state.ctrl, state.sums["controller"] = control.call(archs, *args)

  derive = PhaseCounter("derive step", prog.derive_step)
  batch = next(run.task.reward_batches(state, 1))
  for i in range(math.ceil(n_archs / cfg.search.derive_samples)):
    values, _, _ = derive.call([], state.ctrl, state.model.params,
                               state.model.batch_stats, batch, jax.random.key(i))
    derive.archs += len(values)
    derive.distinct.update(_key_of(v) for v in np.asarray(values))

  evaluate = _evaluation(name, run, state, batch, n_archs)
  return [p.row() for p in (shared, control, derive, evaluate)]


def _evaluation(name: str, run: Any, state: Any, batch: Any, n_archs: int) -> PhaseCounter:
  """The evaluation function with an explicit (traced) architecture, a new one per call."""
  if name == "rnn":
    counter = PhaseCounter("eval step", run.task.jit_eval_step)
    hidden = jnp.zeros((batch["inputs"].shape[0], run.cfg.model.hidden_dim), jnp.float32)
    for i in range(n_archs):
      arch = rnn_arch.random_arch(jax.random.key(i), run.cfg.model.num_nodes)
      flat = np.concatenate([np.asarray(arch.prev_N), np.asarray(arch.act_N)])
      counter.call([flat], state.model.params, state.model.batch_stats, batch, hidden, arch)
    return counter
  model = run.cfg.model
  counter = PhaseCounter("accuracy", run.task.jit_accuracy)
  for i in range(n_archs):
    arch = (macro_arch.random_arch(jax.random.key(i), model.num_layers) if name == "macro"
            else micro_arch.random_arch(jax.random.key(i), model.num_nodes))
    flat = np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(arch)])
    counter.call([flat], state.model.params, batch, arch)
  return counter


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--archs", type=int, default=1000, help="architectures per phase")
  parser.add_argument("--spaces", nargs="*", default=["rnn", "macro", "micro"])
  args = parser.parse_args()
  print(f"# machine: {machine_info.describe()}; {args.archs} architectures per phase")
  configs = _configs()
  failed = False
  with tempfile.TemporaryDirectory() as tmp:
    for name in args.spaces:
      config = configs[name]
      t0 = time.perf_counter()
      print(f"\n## {name}")
      print(f"{'phase':<16} {'calls':>6} {'archs':>7} {'distinct':>8} {'cache':>6} "
            f"{'compiles':>9} {'later':>9} {'1st s':>8} {'later ms':>9}")
      for row in bench_space(name, config, args.archs, os.path.join(tmp, name)):
        print(row, flush=True)
        cache, after = int(row.split()[-5]), int(row.split()[-3])
        failed |= cache != 1 or after != 0
      print(f"({time.perf_counter() - t0:.0f} s)")
  print("\nresult:", "FAIL: a phase compiled more than once" if failed
        else "every phase compiled exactly once")
  raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
  main()
