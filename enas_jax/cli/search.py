r"""`python -m enas_jax.search`: an ENAS search from a config file.

  python -m enas_jax.search --config=configs/quickstart.py
  python -m enas_jax.search --config=configs/ptb_rnn.py --workdir=workdirs/ptb \
      --config.data.dir=/data/ptb --config.shared.lr=10
  python -m enas_jax.search --config=configs/cifar10_macro.py:cpu
  python -m enas_jax.search --config=configs/cifar10_micro.py:cpu

The config's `space` field picks the search space (spaces/registry.py); the loop is
`enas_jax.run.search` for every space. Flags only here.
"""
from __future__ import annotations

import sys
from typing import Sequence

from absl import flags

from enas_jax.cli import common as cli
from enas_jax.io import memory
from enas_jax.run import outputs
from enas_jax.run.config import search_config
from enas_jax.run.search import run_search

_CONFIG = cli.define_config_file(
    "config", "configs/quickstart.py",
    "Search config file, optionally with a preset (configs/ptb_rnn.py:cpu); override any field "
    "with --config.<section>.<field>=value.")
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Directory for config.json, metrics, derived cells and the summary "
    "(default: workdirs/<config name>).")
_PROGRESS = cli.define_progress_flags()
_CACHE = cli.define_compilation_cache_flag()
_MEMORY = cli.define_keep_freed_memory_flag()
_AHEAD = flags.DEFINE_boolean(
    "compile_ahead", True, "Compile the controller phase's programs and the whole-split "
    "evaluation in a background thread during the first shared phase instead of at their first "
    "calls (run/ahead.py): the same programs and results, less waiting.")


def main(argv: Sequence[str]) -> None:
  cli.reject_positional(argv, "the search")
  cli.check_jax_modes()
  cli.use_compilation_cache(_CACHE.value)
  cli.use_kept_memory(_MEMORY.value)
  memory.load_lapack()  # before the run's arrays: see its docstring
  cfg = search_config(cli.load_config(_CONFIG))
  cli.refuse_unread_overrides(cfg)
  cli.use_deterministic_gpu_ops(cfg.deterministic)
  workdir = _WORKDIR.value or cli.default_workdir(flags.FLAGS["config"])
  summary = run_search(cfg, workdir, sys.stdout, _PROGRESS(), _AHEAD.value)
  print("\n".join(outputs.result_lines(summary, workdir, cfg.model)))
  print(f"\noutputs in {workdir}: summary.json, best_arch.json/.txt, archs/, metrics.jsonl, tb/")


if __name__ == "__main__":
  cli.run(main, resumes=True)
