r"""Compile time of a search, what compiling ahead hides, and what the persistent compilation
cache saves on the next run.

  python experiments/bench/compile_time.py                       # the quickstart, 2 epochs
  python experiments/bench/compile_time.py --config=cifar10_micro:cpu --epochs=2

Four runs of `python -m enas_jax.search` in fresh processes and fresh workdirs: without the
cache (`--compilation_cache=off`), as the search runs by default and with `--nocompile_ahead`
(every program compiled at its first call, none in the background during the first shared
phase: `enas_jax/run/ahead.py`); then twice with one new, empty cache directory (the first fills
it, the second reads it). Each run's epochs are timed by the search itself (metrics.jsonl's
`epoch` records); the first epoch pays for compiling every phase and the second for none, so
`epoch 1 - epoch 2` is the time that run waited on compilation. Also printed: the whole
command's wall time, and `XLA s`, the seconds of XLA compilation in the whole process (JAX's
own log of each compilation, summed; compiling ahead moves this work, it does not remove it).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import machine_info  # this folder: sys.path[0] when run as a script


def one_run(config: str, epochs: int, workdir: str, cache: str, ahead: bool = True
            ) -> dict[str, float]:
  env = {k: v for k, v in os.environ.items()
         if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE"))}
  env["JAX_LOG_COMPILES"] = "1"
  started = time.time()
  done = subprocess.run([sys.executable, "-m", "enas_jax.search", f"--config={config}",
                         f"--config.search.epochs={epochs}", f"--workdir={workdir}",
                         f"--compilation_cache={cache}", "--progress=off",
                         f"--{'' if ahead else 'no'}compile_ahead"], check=True, env=env,
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  wall = time.time() - started
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    seconds = [r["seconds"] for r in map(json.loads, f) if r["phase"] == "epoch"]
  return {"wall": wall, "epoch1": seconds[0], "epoch2": seconds[1],
          "compile": seconds[0] - seconds[1], "xla": xla_seconds(done.stderr)}


def xla_seconds(log: str) -> float:
  """The seconds of XLA compilation in JAX's log (`jax_log_compiles`), summed."""
  return sum(float(m) for m in re.findall(r"Finished XLA compilation of .* in ([0-9.e-]+) sec",
                                          log))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="quickstart")
  parser.add_argument("--epochs", type=int, default=2)
  args = parser.parse_args()
  print(f"# machine: {machine_info.describe()}; config {args.config}, {args.epochs} epochs")
  print(f"{'run':<36} {'wall s':>7} {'epoch 1 s':>10} {'epoch 2 s':>10} {'compile s':>10} "
        f"{'XLA s':>6}")
  with tempfile.TemporaryDirectory() as tmp:
    cache = os.path.join(tmp, "cache")
    for i, (name, setting, ahead) in enumerate((
        ("no cache", "off", True), ("no cache, --nocompile_ahead", "off", False),
        ("cache, first run (fills it)", cache, True),
        ("cache, second run (reads it)", cache, True))):
      r = one_run(args.config, args.epochs, os.path.join(tmp, f"run{i}"), setting, ahead)
      print(f"{name:<36} {r['wall']:7.1f} {r['epoch1']:10.1f} {r['epoch2']:10.1f} "
            f"{r['compile']:10.1f} {r['xla']:6.1f}", flush=True)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(cache) for f in fs)
    print(f"# cache: {size / 2 ** 20:.1f} MiB")


if __name__ == "__main__":
  main()
