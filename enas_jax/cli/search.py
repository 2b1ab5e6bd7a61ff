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

import os
import sys
from typing import Any, Sequence

from absl import flags

from enas_jax.cli import common as cli
from enas_jax.run.config import search_config
from enas_jax.run.search import run_search
from enas_jax.spaces.registry import get_space

_CONFIG = cli.define_config_file(
    "config", "configs/quickstart.py",
    "Search config file, optionally with a preset (configs/ptb_rnn.py:cpu); override any field "
    "with --config.<section>.<field>=value.")
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Directory for config.json, metrics, derived cells and the summary "
    "(default: workdirs/<config name>).")
_PROGRESS = cli.define_progress_flags()
_CACHE = cli.define_compilation_cache_flag()


def result_lines(summary: dict[str, Any], workdir: str, model_cfg: Any = None) -> list[str]:
  """The search's answer: the authors' string, one line per node or layer, its figure under
  the shared weights, and on the planted corpus the teacher's figures."""
  space = get_space(summary["space"])
  arch = space.from_json(summary["architecture"])
  lines = ["", f"found architecture ({space.name} space): {summary['authors']}",
           f"  (the authors' format; also {os.path.join(workdir, 'best_arch.json')})"]
  lines += [f"  {line}" for line in space.describe(arch, model_cfg)]
  weights = (f"the shared weights after {summary['finetune_steps']} steps on it alone"
             if summary.get("finetune_steps") else "the shared weights")
  for key, name, digits in (("valid_ppl_shared", "perplexity", 2),
                            ("valid_acc_shared", "accuracy", 4)):
    if key in summary:
      lines.append(f"its validation {name} under {weights}: {summary[key]:.{digits}f}")
  if "valid_acc_table" in summary:
    lines.append(f"its validation accuracy in the {summary['dataset']} table (mean over its "
                 f"seeds): {100 * summary['valid_acc_table']:.2f}%, rank "
                 f"{summary['table_rank']:,} of {summary['table_cells']:,}; the best cell scores "
                 f"{100 * summary['best_possible_valid_acc']:.2f}% "
                 f"({summary['best_possible']})")
    cost = summary["simulated_cost"]
    lines.append(f"queries: {cost['queries']}, standing for {cost['simulated_seconds'] / 3600:.1f} "
                 f"simulated GPU hours of training")
  corpus = summary.get("corpus", {})
  if "teacher_ppl_valid" in corpus:
    lines.append(f"planted teacher cell: {corpus['teacher_arch']}; the teacher's optimal "
                 f"validation perplexity: {corpus['teacher_ppl_valid']:.2f} (unigram: "
                 f"{corpus['unigram_ppl_valid']:.2f})")
    if "planted_arch_valid_ppl_shared" in summary:
      how = (f"scored the same way ({summary['finetune_steps']} steps on it alone)"
             if summary.get("finetune_steps") else "under the same shared weights")
      lines.append(f"the planted cell {how}: {summary['planted_arch_valid_ppl_shared']:.2f}")
  return lines


def main(argv: Sequence[str]) -> None:
  cli.reject_positional(argv, "the search")
  cli.use_compilation_cache(_CACHE.value)
  cfg = search_config(cli.load_config(_CONFIG))
  cli.use_deterministic_gpu_ops(cfg.deterministic)
  workdir = _WORKDIR.value or cli.default_workdir(flags.FLAGS["config"])
  summary = run_search(cfg, workdir, sys.stdout, _PROGRESS())
  print("\n".join(result_lines(summary, workdir, cfg.model)))
  print(f"\noutputs in {workdir}: summary.json, best_arch.json/.txt, archs/, metrics.jsonl, tb/")


if __name__ == "__main__":
  cli.run(main)
