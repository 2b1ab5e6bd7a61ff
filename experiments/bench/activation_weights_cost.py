"""What one copy of the shared matrices per activation costs: the shared step at PTB's shapes.

`model.activation_weights` = "shared" (the paper: one matrix per (node, prev) key), "node0"
(node 0's keys hold one copy per activation) or "all" (every key does; the configs' default).
A step reads and trains only each node's activation's copy, but the update and the L2 term of the
loss still pass over every copy; this script measures what that costs.

  python experiments/bench/activation_weights_cost.py                    # hidden 256 and 1000
  python experiments/bench/activation_weights_cost.py --hidden 200 --batch 32   # ptb_rnn:cpu

Prints, per hidden size and setting: shared parameters (millions, and MiB as float32) and the
median seconds of one shared step (the search's step with the architecture traced; the paper's
regularisation, L2 1e-7 in the loss), the settings timed in alternating blocks.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine_info  # noqa: E402
from ours_step import PAPER_RATES, Ours, jax_batch  # noqa: E402
from rnn_dynamic_overhead import add_ptb_shape_args  # noqa: E402

SETTINGS = ("shared", "node0", "all")


def timed(step: Ours, batch: dict[str, jax.Array], i: int) -> float:
  """Seconds of one step (its metrics read back, so the step has finished)."""
  t0 = time.perf_counter()
  step.run(batch, i)
  return time.perf_counter() - t0


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  add_ptb_shape_args(parser, 3, "timed steps per block")
  parser.add_argument("--rounds", type=int, default=2, help="blocks per setting")
  args = parser.parse_args()
  print(f"# machine: {machine_info.describe()}; batch {args.batch}, bptt {args.bptt}, vocab "
        f"{args.vocab}, {args.nodes} nodes; median of {args.rounds} x {args.steps} steps")
  print(f"{'hidden':>6}  {'setting':<7} {'params M':>9} {'MiB':>7} {'s/step':>7} {'vs shared':>9}")
  rng = np.random.default_rng(0)
  for hidden in args.hidden:
    batch = jax_batch(rng.integers(0, args.vocab, (args.batch, args.bptt)),
                      rng.integers(0, args.vocab, (args.batch, args.bptt)))
    steps = {s: Ours(hidden, args.vocab, args.nodes, args.batch, PAPER_RATES,
                     activation_weights=s) for s in SETTINGS}
    times: dict[str, list[float]] = {s: [] for s in SETTINGS}
    for s in SETTINGS:
      steps[s].run(batch, 0)  # compile
    for r in range(args.rounds):
      for s in SETTINGS:
        steps[s].run(batch, 1)  # opens the block, untimed
        times[s] += [timed(steps[s], batch, 2 + i) for i in range(args.steps)]
    base = float(np.median(times["shared"]))
    for s in SETTINGS:
      t = float(np.median(times[s]))
      n = sum(x.size for x in jax.tree_util.tree_leaves(steps[s].state.params))
      print(f"{hidden:>6}  {s:<7} {n / 1e6:>9.1f} {n * 4 / 2**20:>7.0f} {t:>7.3f} "
            f"{t / base:>8.2f}x", flush=True)


if __name__ == "__main__":
  main()
