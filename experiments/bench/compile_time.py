r"""Compile time of a search, and what the persistent compilation cache saves on the next run.

  python experiments/bench/compile_time.py                       # the quickstart, 2 epochs
  python experiments/bench/compile_time.py --config=cifar10_micro:cpu --epochs=2

Three runs of `python -m enas_jax.search` in fresh processes and fresh workdirs: without the
cache (`--compilation_cache=off`), then twice with one new, empty cache directory (the first fills
it, the second reads it). Each run's epochs are timed by the search itself (metrics.jsonl's
`epoch` records); the first epoch pays for compiling every phase and the second for none, so
`epoch 1 - epoch 2` is the compile time of that run. Also printed: the whole command's wall time.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import jax


def one_run(config: str, epochs: int, workdir: str, cache: str) -> dict[str, float]:
  env = {k: v for k, v in os.environ.items()
         if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE"))}
  started = time.time()
  subprocess.run([sys.executable, "-m", "enas_jax.search", f"--config={config}",
                  f"--config.search.epochs={epochs}", f"--workdir={workdir}",
                  f"--compilation_cache={cache}", "--progress=off"], check=True, env=env,
                 stdout=subprocess.DEVNULL)
  wall = time.time() - started
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    seconds = [r["seconds"] for r in map(json.loads, f) if r["phase"] == "epoch"]
  return {"wall": wall, "epoch1": seconds[0], "epoch2": seconds[1],
          "compile": seconds[0] - seconds[1]}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="quickstart")
  parser.add_argument("--epochs", type=int, default=2)
  args = parser.parse_args()
  print(f"# machine: {platform.machine()}, {os.cpu_count()} cores; jax {jax.__version__} on "
        f"{jax.default_backend()}; config {args.config}, {args.epochs} epochs")
  print(f"{'run':<28} {'wall s':>7} {'epoch 1 s':>10} {'epoch 2 s':>10} {'compile s':>10}")
  with tempfile.TemporaryDirectory() as tmp:
    cache = os.path.join(tmp, "cache")
    for name, setting in (("no cache", "off"), ("cache, first run (fills it)", cache),
                          ("cache, second run (reads it)", cache)):
      r = one_run(args.config, args.epochs, os.path.join(tmp, name.replace(" ", "_")), setting)
      print(f"{name:<28} {r['wall']:7.1f} {r['epoch1']:10.1f} {r['epoch2']:10.1f} "
            f"{r['compile']:10.1f}", flush=True)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(cache) for f in fs)
    print(f"# cache: {size / 2 ** 20:.1f} MiB")


if __name__ == "__main__":
  main()
