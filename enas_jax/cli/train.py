r"""`python -m enas_jax.train`: train one architecture from scratch.

  python -m enas_jax.train --config=configs/ptb_final.py --config.arch=workdirs/ptb \
      --config.data.dir=/data/ptb --workdir=workdirs/ptb_final
  python -m enas_jax.train --config=configs/cifar10_macro_final.py \
      --config.arch=workdirs/cifar10_macro --config.data.data_dir=/data/tfds
For a recurrent cell --config.arch accepts a search workdir, our JSON, ENAS-pytorch's dag.json,
the authors' string ('0 0 1 1 2 ...'), the corrected ENAS LM code's 'enas_lm:0 2 1 0 ...', or
'lstm'; for a macro network or micro cells a search workdir, our JSON or the authors' string.

The config's `space` field picks the search space; the loop is `enas_jax.run.final` for every
space. Flags only here. Running the same command again resumes.
"""
from __future__ import annotations

import sys
from typing import Sequence

from absl import flags

from enas_jax.cli import common as cli
from enas_jax.run.config import final_config
from enas_jax.run.final import run_training

_CONFIG = cli.define_config_file(
    "config", "configs/ptb_final.py",
    "Final-training config file, optionally with a preset (configs/ptb_final.py:cpu); override "
    "any field with --config.<section>.<field>=value.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and the "
                               "summary (default: workdirs/train_<config name>).")
_PROGRESS = cli.define_progress_flags()
_CACHE = cli.define_compilation_cache_flag()
_MEMORY = cli.define_keep_freed_memory_flag()


def main(argv: Sequence[str]) -> None:
  cli.reject_positional(argv, "training")
  cli.check_jax_modes()
  cli.use_compilation_cache(_CACHE.value)
  cli.use_kept_memory(_MEMORY.value)
  cfg = final_config(cli.load_config(_CONFIG))
  cli.refuse_unread_overrides(cfg)
  cli.use_deterministic_gpu_ops(cfg.deterministic)
  workdir = _WORKDIR.value or cli.default_workdir(flags.FLAGS["config"], prefix="train_")
  summary = run_training(cfg, workdir, sys.stdout, _PROGRESS())
  if "test_ppl" in summary:
    print(f"\n{summary['model']}: test perplexity {summary['test_ppl']:.2f}, validation "
          f"{summary['valid_ppl']:.2f}, {summary['params']:,} parameters; outputs in {workdir}")
  else:
    print(f"\n{summary['model']}: test accuracy {summary['test_acc']:.4f} (error "
          f"{100 * summary['test_error']:.2f}%), {summary['params']:,} parameters; outputs in "
          f"{workdir}")


if __name__ == "__main__":
  cli.run(main, resumes=True)
