"""Tokens/s of one shared-weight training step of the ENAS recurrent cell, architecture traced
versus the same architecture baked in as a constant, at PTB shapes.

Usage:
  python experiments/bench/rnn_dynamic_overhead.py                    # hidden 256 and 1000
  python experiments/bench/rnn_dynamic_overhead.py --hidden=256 --steps=5

Prints one line per hidden size: tokens/s traced, tokens/s constant, and their ratio (step time
traced / step time constant; 1.00 means the traced architecture costs nothing).
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import machine_info  # this folder: sys.path[0] when run as a script
from enas_jax.tasks.language import steps as lm_steps
from enas_jax.spaces.rnn.arch import random_arch
from enas_jax.spaces.rnn.model import RNNLanguageModel, RNNModelConfig


def time_step(step, state, batch, arch, steps: int) -> float:
  """Median seconds per step after one warm-up (compile) call."""
  state, m = step(state, batch, arch, jax.random.key(0))
  jax.block_until_ready(m["loss"])
  times = []
  for i in range(steps):
    t0 = time.perf_counter()
    state, m = step(state, batch, arch, jax.random.key(i + 1))
    jax.block_until_ready(m["loss"])
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def bench(hidden: int, batch: int, bptt: int, vocab: int, nodes: int, steps: int,
          unroll: int) -> dict[str, float]:
  cfg = RNNModelConfig(num_nodes=nodes, embed_dim=hidden, hidden_dim=hidden, scan_unroll=unroll)
  model = RNNLanguageModel(cfg, vocab)
  opt = lm_steps.make_optimizer(lm_steps.SharedTrainConfig())
  arch = random_arch(jax.random.key(42), nodes)
  state = lm_steps.init_state(model, opt, jax.random.key(0), batch, arch)
  train_step, _ = lm_steps.make_lm_steps(model, opt, l2=1e-7)
  rng = np.random.default_rng(0)
  data = {"inputs": jnp.asarray(rng.integers(0, vocab, (batch, bptt)), jnp.int32),
          "targets": jnp.asarray(rng.integers(0, vocab, (batch, bptt)), jnp.int32),
          "valid": jnp.ones((bptt,), bool), "lr_scale": jnp.ones((), jnp.float32)}
  traced = jax.jit(train_step, donate_argnums=0)
  const_arch = jax.tree_util.tree_map(np.asarray, arch)
  constant = jax.jit(lambda s, b, _, k: train_step(s, b, const_arch, k), donate_argnums=0)
  t_traced = time_step(traced, state, data, arch, steps)
  state = lm_steps.init_state(model, opt, jax.random.key(0), batch, arch)
  t_const = time_step(constant, state, data, arch, steps)
  tokens = batch * bptt
  return {"hidden": hidden, "traced_tok_s": tokens / t_traced, "const_tok_s": tokens / t_const,
          "ratio": t_traced / t_const, "traced_s": t_traced, "const_s": t_const}


def add_ptb_shape_args(parser: argparse.ArgumentParser, steps: int, steps_help: str) -> None:
  """The shapes of the recurrent-step benchmarks (PTB's by default) and how many steps to time."""
  parser.add_argument("--hidden", type=int, nargs="*", default=[256, 1000])
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--bptt", type=int, default=35)
  parser.add_argument("--vocab", type=int, default=10_000)
  parser.add_argument("--nodes", type=int, default=12)
  parser.add_argument("--steps", type=int, default=steps, help=steps_help)
  parser.add_argument("--unroll", type=int, default=1, help="our scan unroll")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  add_ptb_shape_args(parser, 5, "timed steps per variant")
  args = parser.parse_args()
  print(f"# machine: {machine_info.describe()}")
  print(f"# batch {args.batch}, bptt {args.bptt}, vocab {args.vocab}, {args.nodes} nodes, "
        f"median of {args.steps} steps, scan unroll {args.unroll}")
  print(f"{'hidden':>6} {'traced tok/s':>13} {'const tok/s':>12} {'traced s':>9} "
        f"{'const s':>8} {'ratio':>6}")
  for hidden in args.hidden:
    r = bench(hidden, args.batch, args.bptt, args.vocab, args.nodes, args.steps, args.unroll)
    print(f"{r['hidden']:>6} {r['traced_tok_s']:>13.0f} {r['const_tok_s']:>12.0f} "
          f"{r['traced_s']:>9.3f} {r['const_s']:>8.3f} {r['ratio']:>6.2f}", flush=True)


if __name__ == "__main__":
  main()
