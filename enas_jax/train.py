r"""`python -m enas_jax.train`: train one recurrent cell (or the LSTM baseline) from scratch.

  python -m enas_jax.train --config=configs/ptb_final.py --config.arch=workdirs/ptb \
      --config.data.dir=/data/ptb --workdir=workdirs/ptb_final
  --config.arch accepts a search workdir, our JSON, ENAS-pytorch's dag.json, the authors'
  string ('0 0 1 1 2 ...'), the corrected ENAS LM code's 'enas_lm:0 2 1 0 ...', or 'lstm'.

Flags only: the loop lives in `enas_jax.loops.lm_train`. Running the same command again resumes.
"""
from __future__ import annotations

import sys
from typing import Sequence

from absl import flags

from enas_jax import cli
from enas_jax.loops import lm_train
from enas_jax.metrics import Progress

_CONFIG = cli.define_config_file(
    "config", "configs/ptb_final.py",
    "Final-training config file, optionally with a preset (configs/ptb_final.py:cpu); override "
    "any field with --config.<section>.<field>=value.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and the "
                               "summary (default: workdirs/train_<config name>).")
_PROGRESS = flags.DEFINE_enum("progress", "auto", ["auto", "on", "off"],
                              "Progress bar: auto shows it only when stderr is a terminal.")


def main(argv: Sequence[str]) -> None:
  cli.reject_positional(argv, "training")
  cli.quiet_logging_unless_asked()
  cfg = lm_train.config_from_dict(cli.load_config(_CONFIG))
  cli.use_deterministic_gpu_ops(cfg.deterministic)
  workdir = _WORKDIR.value or cli.default_workdir(flags.FLAGS["config"], prefix="train_")
  enabled = {"auto": None, "on": True, "off": False}[_PROGRESS.value]
  summary = lm_train.run_training(cfg, workdir, sys.stdout, Progress(enabled=enabled))
  print(f"\n{summary['model']}: test perplexity {summary['test_ppl']:.2f}, validation "
        f"{summary['valid_ppl']:.2f}, {summary['params']:,} parameters; outputs in {workdir}")


if __name__ == "__main__":
  cli.run(main)
