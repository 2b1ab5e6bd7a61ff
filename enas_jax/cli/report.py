r"""`python -m enas_jax.report`: can I trust this search's answer? A report of a finished or a
running search of any space, written to WORKDIR/report/ (index.html, one self-contained page,
and report.md with its images beside it), and a short verdict printed.

  python -m enas_jax.report --workdir=workdirs/quickstart
  python -m enas_jax.report --workdir=workdirs/ptb_rnn --random_cells=50 --train_alone=5
  python -m enas_jax.report --workdir=workdirs/quickstart --train_alone=5 --finetune_steps=80

Health checks, each a measured figure with a reading and what to do when it fails: controller
collapse (from the logged entropy), the answer against random cells under the same shared
weights, the stability of the shared-weight score between two halves of the validation split,
and optionally (--train_alone=K) the top-K and K random cells trained alone briefly (each
figure kept in WORKDIR/report/trained_alone.json as it is done: a report stopped there by Ctrl-C
or SIGTERM, or run again, trains only the cells it has no figure for). Every
shared-weight figure is taken as the search picked its answer: from the weights as they are, or
after `search.finetune_steps` steps of them on the cell alone (`--finetune_steps` to choose). The
figures come from the search's newest checkpoint, read without writing to the workdir; nothing
is written outside WORKDIR/report/. Defaults come from the search config's `report` section.
"""
from __future__ import annotations

from typing import Sequence

from absl import flags

from enas_jax.cli import common as cli
from enas_jax.io.errors import UserError
from enas_jax.run.config import TRAIN_ALONE_SCHEDULES, ReportConfig

_WORKDIR = flags.DEFINE_string("workdir", None, "A search's workdir (finished or running).")
_RANDOM_CELLS = flags.DEFINE_integer(
    "random_cells", None, "Random cells scored on the whole validation split and its halves "
    "(default: the search config's report.random_cells).")
_TRAIN_ALONE = flags.DEFINE_integer(
    "train_alone", None, "K: train the top-K and K random cells and the answer alone briefly "
    "and rank-correlate (default: report.train_alone; 0 skips).")
_TRAIN_ALONE_STEPS = flags.DEFINE_integer(
    "train_alone_steps", None, "Training steps per cell trained alone (default: "
    "report.train_alone_steps).")
_TRAIN_ALONE_SCHEDULE = flags.DEFINE_enum(
    "train_alone_schedule", None, list(TRAIN_ALONE_SCHEDULES), "The learning rate while "
    "training alone: linear (from the search's first to 0), constant, or averaged (constant, "
    "the weights averaged over the second half of the steps) (default: "
    "report.train_alone_schedule).")
_FINETUNE_STEPS = flags.DEFINE_integer(
    "finetune_steps", None, "K: score every cell after K shared steps on it alone (few-shot "
    "scoring; 0: the weights as they are; default: report.finetune_steps, whose -1 scores as "
    "the search picked its answer, search.finetune_steps).")
_CACHE = cli.define_compilation_cache_flag()
_MEMORY = cli.define_keep_freed_memory_flag()
_SEED = flags.DEFINE_integer("seed", None, "Draws the random cells (default: report.seed).")


def overrides() -> dict[str, int | str]:
  """The flags given, as `report` section fields, checked (the schedule by its enum flag)."""
  counts = {"random_cells": _RANDOM_CELLS.value, "train_alone": _TRAIN_ALONE.value,
            "train_alone_steps": _TRAIN_ALONE_STEPS.value, "seed": _SEED.value,
            "finetune_steps": _FINETUNE_STEPS.value}
  counts = {k: v for k, v in counts.items() if v is not None}
  for name, value in counts.items():
    least = ReportConfig.MINIMUMS[name]
    if not ReportConfig.in_range(name, value):
      raise UserError(f"--{name}={value} is out of range: it must be at least {least}"
                      f"{ReportConfig.below(name)}. Pass --{name}={least} or more (or leave it "
                      f"out for the search config's report.{name}).")
  schedule = _TRAIN_ALONE_SCHEDULE.value
  return {**counts, **({"train_alone_schedule": schedule} if schedule else {})}


def main(argv: Sequence[str]) -> None:
  cli.reject_positional(argv, "python -m enas_jax.report")
  cli.check_jax_modes()
  cli.use_compilation_cache(_CACHE.value)
  cli.use_kept_memory(_MEMORY.value)
  if not _WORKDIR.value:
    raise UserError("Give the search's workdir: python -m enas_jax.report --workdir=DIR "
                    "[--random_cells=N] [--train_alone=K].")
  from enas_jax.report.build import build_report  # after the flags: JAX starts here
  report = build_report(_WORKDIR.value, overrides(), print)
  print(f"wrote {report.folder}/index.html and report.md")
  print(f"verdict: {report.verdict_word}. {report.verdict}")
  for check in report.checks:
    print(f"  [{check.status}] {check.title}: {check.figure}")


if __name__ == "__main__":
  cli.run(main)
