r"""Where our shared recurrent step's time goes, op by op: a `jax.profiler` trace of a few steps
on the CPU, summed per XLA operation over XLA's worker threads (CPU time, not wall time).

  python experiments/bench/profile_step.py --hidden=1000 --steps=3 [--close] [--top=25]
      [--matmul_dtype=bfloat16]

Prints the step's wall time, its kernel time and page faults, then the operations that took the
most CPU time per step, with how often each ran per step (35 for one inside the time loop):
`ynn_fusion`/`dot` are matrix products, `*_fusion` XLA's fused elementwise passes, `copy`,
`broadcast` and `stack` pure data movement. The trace is left in --trace_dir for Perfetto.
"""
from __future__ import annotations

import argparse
import collections
import os
import resource
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import device_trace  # noqa: E402
from ours_step import PAPER_RATES, Ours, jax_batch  # noqa: E402
from enas_jax.io import memory  # noqa: E402
from enas_jax.ops.products import MATMUL_DTYPES  # noqa: E402


def op_times(trace_dir: str) -> tuple[collections.Counter, collections.Counter]:
  """{op name: microseconds} and {op name: calls} over XLA's worker threads in the trace."""
  micros, calls = collections.Counter(), collections.Counter()
  for e in device_trace.device_work(trace_dir)[1]:
    micros[e["name"]] += e.get("dur", 0)
    calls[e["name"]] += 1
  return micros, calls


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--hidden", type=int, default=1000)
  parser.add_argument("--steps", type=int, default=3, help="steps traced (after 2 untimed)")
  parser.add_argument("--close", action="store_true",
                      help="ENAS-pytorch's regularisation (node-0 DropConnect, L2 on used weights)")
  parser.add_argument("--keep_freed_memory", type=int, default=0,
                      help="1: as the commands' opt-in --keep_freed_memory")
  parser.add_argument("--matmul_dtype", default="float32", choices=MATMUL_DTYPES,
                      help="bfloat16: the products' operands rounded (model.matmul_dtype)")
  parser.add_argument("--top", type=int, default=25)
  parser.add_argument("--trace_dir", default="/tmp/enas_jax_profile")
  args = parser.parse_args()
  kept = memory.keep_freed_memory(bool(args.keep_freed_memory))
  options = dict(l2=5e-8, dropconnect_on="node0", l2_on="used") if args.close else {}
  ours = Ours(args.hidden, 10000, 12, 64, PAPER_RATES, matmul_dtype=args.matmul_dtype, **options)
  rng = np.random.default_rng(0)
  batch = jax_batch(rng.integers(0, 10000, (64, 35)), rng.integers(0, 10000, (64, 35)))
  for i in range(2):
    ours.run(batch, i)
  before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
  jax.profiler.start_trace(args.trace_dir, create_perfetto_trace=True)
  for i in range(args.steps):
    ours.run(batch, i)
  jax.profiler.stop_trace()
  wall, after = (time.perf_counter() - started) / args.steps, resource.getrusage(
      resource.RUSAGE_SELF)
  micros, calls = op_times(args.trace_dir)
  n = args.steps
  print(f"# hidden {args.hidden}, {'close' if args.close else 'paper'} regularisation, "
        f"{args.matmul_dtype} products, freed memory {'kept' if kept else 'returned'}; jax "
        f"{jax.__version__}, {os.cpu_count()} cores")
  print(f"# wall {wall:.3f} s/step (traced); kernel {(after.ru_stime - before.ru_stime) / n:.3f}"
        f" s/step; page faults {(after.ru_minflt - before.ru_minflt) / n:.0f}/step; XLA ops "
        f"{sum(micros.values()) / n / 1e6:.3f} CPU s/step")
  for op, us in micros.most_common(args.top):
    print(f"{us / n / 1e3:9.1f} ms  x{calls[op] / n:5.1f}  {op}")


if __name__ == "__main__":
  main()
