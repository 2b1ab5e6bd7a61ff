"""Tokens/s of the ENAS shared recurrent step: ours (JAX, architecture traced) against a plain
PyTorch eager reference, and the fraction of the machine's matrix-multiply peak ours reaches.

Everything in one run, on the same machine and the same number of CPU threads:
1. a check that the two implementations compute the same step (no dropout, same weights and
   architecture: loss, gradient norm and updated weights compared);
2. the machine's matmul peak, measured: the best GFLOP/s of square float32 matrix products
   (JAX and torch, several sizes);
3. for each hidden size, the median step time of both at PTB shapes (batch 64, BPTT 35,
   vocabulary 10,000, 12 nodes, tied embedding) with the paper's regularisation on (word,
   locked input and output dropout, DropConnect, hidden-norm clip 25, L2 1e-7, gradient clip
   0.25, SGD), and our step's model FLOP/s as a fraction of that peak.

Model FLOPs count the matrix products only (x W_x, h W_h, the 11 chosen edge matrices per time
step, the softmax), times 3 for forward and backward: 2 * T * B * (E*2H + N*H*2H + H*V) * 3.

Usage (torch from the optional extra: pip install -e ".[bench]"):
  python experiments/bench/rnn_throughput.py                  # hidden 256 and 1000
  python experiments/bench/rnn_throughput.py --hidden 256 --steps 3
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine_info  # noqa: E402
import needs_torch  # noqa: E402
needs_torch.check()  # without torch: one line saying how to install it, not a traceback
import torch  # noqa: E402
import torch_rnn_reference as ref  # noqa: E402
from ours_step import NO_DROPOUT, PAPER_RATES, Ours, jax_batch  # noqa: E402
from rnn_dynamic_overhead import add_ptb_shape_args  # noqa: E402


def torch_model_like(ours: Ours, vocab: int) -> ref.SharedRNN:
  """The reference model holding our weights."""
  p = ours.state.params
  cfg = ours.model.config
  m = ref.SharedRNN(vocab, cfg.hidden_dim, cfg.num_nodes)
  with torch.no_grad():
    m.embedding.copy_(torch.from_numpy(np.array(p["embedding"])))
    m.w_x.copy_(torch.from_numpy(np.array(p["cell"]["node0"]["w_x"])))
    m.w_h.copy_(torch.from_numpy(np.array(p["cell"]["node0"]["w_h"])))
    for name, w in m.edges.items():
      w.copy_(torch.from_numpy(np.array(p["cell"][name])))
    m.softmax_bias.copy_(torch.from_numpy(np.array(p["softmax_bias"])))
  return m


def arch_lists(arch) -> tuple[list[int], list[int]]:
  return [int(x) for x in np.asarray(arch.prev_N)], [int(x) for x in np.asarray(arch.act_N)]


def check_same_step(vocab: int = 500, hidden: int = 64, nodes: int = 12, batch: int = 8,
                    bptt: int = 35) -> dict[str, float]:
  """One step of both without dropout from the same weights: the differences."""
  ours = Ours(hidden, vocab, nodes, batch, NO_DROPOUT)
  model = torch_model_like(ours, vocab)
  prev, act = arch_lists(ours.arch)
  rng = np.random.default_rng(1)
  x, y = rng.integers(0, vocab, (batch, bptt)), rng.integers(0, vocab, (batch, bptt))
  trainer = ref.Trainer(model, lr=20.0, grad_clip=0.25, l2=1e-7, rates=NO_DROPOUT,
                        hidden_clip=25.0)
  loss_t, _, norm_t = trainer.step(torch.from_numpy(x), torch.from_numpy(y),
                                   torch.zeros(batch, hidden), prev, act)
  m = ours.run(jax_batch(x, y), 0)
  params = ours.state.params
  diff = max(float(np.max(np.abs(np.asarray(params["cell"][name]) - w.detach().numpy())))
             for name, w in model.edges.items())
  diff = max(diff, float(np.max(np.abs(np.asarray(params["embedding"])
                                      - model.embedding.detach().numpy()))))
  return {"loss_ours": m["loss"], "loss_torch": loss_t, "grad_norm_ours": m["grad_norm"],
          "grad_norm_torch": norm_t, "max_weight_diff_after_step": diff}


def matmul_peak(sizes: tuple[int, ...] = (1024, 2048, 3072), reps: int = 3) -> dict[str, float]:
  """Best GFLOP/s of float32 square matmuls, JAX (XLA) and torch."""
  best = {"jax": 0.0, "torch": 0.0}
  dot = jax.jit(jnp.dot)
  for n in sizes:
    a = jax.random.normal(jax.random.key(0), (n, n))
    b = jax.random.normal(jax.random.key(1), (n, n))
    dot(a, b).block_until_ready()
    ta, tb = torch.randn(n, n), torch.randn(n, n)
    torch.mm(ta, tb)
    for _ in range(reps):
      t0 = time.perf_counter()
      dot(a, b).block_until_ready()
      best["jax"] = max(best["jax"], 2 * n ** 3 / (time.perf_counter() - t0) / 1e9)
      t0 = time.perf_counter()
      torch.mm(ta, tb)
      best["torch"] = max(best["torch"], 2 * n ** 3 / (time.perf_counter() - t0) / 1e9)
  return best


def step_flops(hidden: int, nodes: int, vocab: int, batch: int, bptt: int) -> float:
  per_token = 2 * (hidden * 2 * hidden + nodes * hidden * 2 * hidden + hidden * vocab)
  return 3.0 * per_token * batch * bptt


def time_blocks(runners: dict[str, Callable[[int], Any]], steps: int, rounds: int
                ) -> dict[str, float]:
  """Median step seconds of each runner (called with a running step index), in alternating
  blocks (each runner in turn, `rounds` times), each block opened by an untimed step after a 1 s
  pause: a slower spell of a shared machine hits all of them, and no one's thread pool (torch's
  OpenMP threads spin after a step) eats into another's timed steps."""
  times: dict[str, list[float]] = {name: [] for name in runners}
  i = 0
  for _ in range(rounds):
    for name, run in runners.items():
      time.sleep(1.0)
      for timed in [False] + [True] * steps:
        t0 = time.perf_counter()
        run(i)
        if timed:
          times[name].append(time.perf_counter() - t0)
        i += 1
  return {name: float(np.median(t)) for name, t in times.items()}


def time_both(hidden, vocab, nodes, batch, steps, unroll, data, rounds: int = 2
              ) -> tuple[float, float]:
  """Median step seconds of ours and of the reference (`time_blocks`)."""
  ours = Ours(hidden, vocab, nodes, batch, PAPER_RATES, unroll)
  ours_batches = [jax_batch(x, y) for x, y in data]
  torch.manual_seed(0)
  prev, act = arch_lists(ours.arch)  # the same cell for both
  trainer = ref.Trainer(ref.SharedRNN(vocab, hidden, nodes), lr=20.0, grad_clip=0.25, l2=1e-7,
                        rates=PAPER_RATES, hidden_clip=25.0)
  torch_batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in data]
  carry = {"h": torch.zeros(batch, hidden)}

  def theirs(i: int) -> None:
    _, carry["h"], _ = trainer.step(*torch_batches[i % len(data)], carry["h"], prev, act)

  t = time_blocks({"ours": lambda i: ours.run(ours_batches[i % len(data)], i),
                   "torch": theirs}, steps, rounds)
  return t["ours"], t["torch"]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  add_ptb_shape_args(parser, 4, "timed steps per implementation and round (2 rounds)")
  parser.add_argument("--threads", type=int, default=os.cpu_count(),
                      help="torch intra-op threads (XLA's CPU client uses every core)")
  args = parser.parse_args()
  torch.set_num_threads(args.threads)
  print(f"# machine: {machine_info.describe()}; torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads")
  check = check_same_step()
  print("# same step, no dropout, hidden 64: " + ", ".join(f"{k} {v:.6g}"
                                                          for k, v in check.items()))
  peak = matmul_peak()
  peak_gflops = max(peak.values())
  print(f"# matmul peak: {peak['jax']:.1f} GFLOP/s (JAX), {peak['torch']:.1f} GFLOP/s (torch); "
        f"using {peak_gflops:.1f}")
  print(f"# batch {args.batch}, bptt {args.bptt}, vocab {args.vocab}, {args.nodes} nodes, median "
        f"of 2 x {args.steps} steps, paper regularisation, scan unroll {args.unroll}")
  print(f"{'hidden':>6} {'ours tok/s':>10} {'torch tok/s':>11} {'speed-up':>8} "
        f"{'ours s':>7} {'torch s':>7} {'GFLOP/step':>10} {'GFLOP/s':>8} {'of peak':>7}")
  rng = np.random.default_rng(0)
  tokens = args.batch * args.bptt
  for hidden in args.hidden:
    data = [(rng.integers(0, args.vocab, (args.batch, args.bptt)),
             rng.integers(0, args.vocab, (args.batch, args.bptt))) for _ in range(4)]
    t_ours, t_torch = time_both(hidden, args.vocab, args.nodes, args.batch, args.steps,
                                args.unroll, data)
    flops = step_flops(hidden, args.nodes, args.vocab, args.batch, args.bptt)
    rate = flops / t_ours / 1e9
    print(f"{hidden:>6} {tokens / t_ours:>10.0f} {tokens / t_torch:>11.0f} "
          f"{t_torch / t_ours:>8.2f} {t_ours:>7.3f} {t_torch:>7.3f} {flops / 1e9:>10.1f} "
          f"{rate:>8.1f} {rate / peak_gflops:>7.0%}", flush=True)


if __name__ == "__main__":
  main()
