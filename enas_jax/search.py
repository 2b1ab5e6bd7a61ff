r"""`python -m enas_jax.search`: an ENAS search from a config file.

  python -m enas_jax.search --config=configs/quickstart.py
  python -m enas_jax.search --config=configs/ptb_rnn.py --workdir=workdirs/ptb \
      --config.data.dir=/data/ptb --config.shared.lr=10
  python -m enas_jax.search --config=configs/cifar10_macro.py:cpu
  python -m enas_jax.search --config=configs/cifar10_micro.py:cpu

The config's `space` field picks the loop: rnn (the default) `enas_jax.loops.rnn_search`, macro
and micro `enas_jax.loops.cnn_search`. Flags only here.
"""
from __future__ import annotations

import os
import sys
from typing import Sequence

from absl import flags

from enas_jax import cli
from enas_jax.loops import cnn_search, rnn_search
from enas_jax.metrics import Progress

LOOPS = {"rnn": rnn_search, "macro": cnn_search, "micro": cnn_search}

_CONFIG = cli.define_config_file(
    "config", "configs/quickstart.py",
    "Search config file, optionally with a preset (configs/ptb_rnn.py:cpu); override any field "
    "with --config.<section>.<field>=value.")
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Directory for config.json, metrics, derived cells and the summary "
    "(default: workdirs/<config name>).")
_PROGRESS = flags.DEFINE_enum(
    "progress", "auto", ["auto", "on", "off"],
    "Progress bar: auto shows it only when stderr is a terminal.")


def print_network(summary: dict, workdir: str) -> None:
  print(f"\nfound network: {summary['authors']}\n  (authors' macro format; also "
        f"{os.path.join(workdir, 'best_arch.json')})")
  for layer in summary["architecture"]["layers"]:
    skips = ", ".join(map(str, layer["skips"])) or "-"
    print(f"  layer {layer['layer']:2d}: {layer['op']:11s} skips from: {skips}")
  print(f"its validation accuracy under the shared weights: {summary['valid_acc_shared']:.4f}")


def print_cells(summary: dict, workdir: str) -> None:
  print(f"\nfound cells: {summary['authors']}\n  (authors' micro format: normal cell, then "
        f"reduction cell; also {os.path.join(workdir, 'best_arch.json')})")
  arch = summary["architecture"]
  for cell in ("normal", "reduce"):
    print(f"  {cell} cell (nodes 0, 1: the two previous cells):")
    for node in arch[cell]:
      (a, b), (op_a, op_b) = node["inputs"], node["ops"]
      print(f"    node {node['node']}: {op_a}(node {a}) + {op_b}(node {b})")
    print(f"    output (the loose ends): nodes {', '.join(map(str, arch['outputs'][cell]))}")
  print(f"their validation accuracy under the shared weights: {summary['valid_acc_shared']:.4f}")


def print_result(summary: dict, workdir: str) -> None:
  print(f"\nfound cell: {summary['authors']}   (authors' format; also "
        f"{os.path.join(workdir, 'best_arch.json')})")
  for node in summary["architecture"]["nodes"]:
    source = "x_t, h_(t-1)" if node["prev"] is None else f"node {node['prev']}"
    print(f"  node {node['node']:2d} <- {source:12s} {node['activation']}")
  print(f"its validation perplexity under the shared weights: {summary['valid_ppl_shared']:.2f}")
  corpus = summary["corpus"]
  if "teacher_ppl_valid" in corpus:
    print(f"planted teacher cell: {corpus['teacher_arch']}; the teacher's optimal validation "
          f"perplexity: {corpus['teacher_ppl_valid']:.2f} (unigram: "
          f"{corpus['unigram_ppl_valid']:.2f})")
    if "planted_arch_valid_ppl_shared" in summary:
      print(f"the planted cell under the same shared weights: "
            f"{summary['planted_arch_valid_ppl_shared']:.2f}")


def main(argv: Sequence[str]) -> None:
  cli.reject_positional(argv, "the search")
  cli.quiet_logging_unless_asked()
  config = cli.load_config(_CONFIG)
  space, loop = cli.loop_for_space(config, LOOPS)
  cfg = loop.config_from_dict(config)
  cli.use_deterministic_gpu_ops(cfg.deterministic)
  workdir = _WORKDIR.value or cli.default_workdir(flags.FLAGS["config"])
  enabled = {"auto": None, "on": True, "off": False}[_PROGRESS.value]
  summary = loop.run_search(cfg, workdir, sys.stdout, Progress(enabled=enabled))
  {"macro": print_network, "micro": print_cells}.get(space, print_result)(summary, workdir)
  print(f"\noutputs in {workdir}: summary.json, best_arch.json/.txt, archs/, metrics.jsonl, tb/")


if __name__ == "__main__":
  cli.run(main)
