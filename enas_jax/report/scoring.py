"""The report's measurements under a search's newest checkpoint, read without writing to its
workdir: the candidate cells (`run/answer.py`) re-scored, N cells drawn uniformly scored on the
whole validation split and on its two halves (under the shared weights, or after a few steps of
them on each cell alone: `report.finetune_steps`), and (optionally) cells trained alone briefly.

The run is rebuilt from the workdir's config.json on one process (a multi-host or data-parallel
search is read the same way: its checkpoints hold host copies), its data loaded as the search
loaded it; nothing is written to the workdir (`Runner` touches no file until `execute`) but the
figures of cells trained alone, kept in WORKDIR/report/ as each is done (`alone_cache`).
"""
from __future__ import annotations

import dataclasses
import io
import math
import os
from typing import Any, Callable, Iterable, Iterator

import jax
import numpy as np

from enas_jax.io import checkpoints as ckpt_lib
from enas_jax.io.errors import Stopped, UserError
from enas_jax.io.metrics import Progress
from enas_jax.io.signals import StopSignals
from enas_jax.ops.initialize import initialize
from enas_jax.ops.params import set_learning_rate
from enas_jax.report import alone_cache, reading
from enas_jax.run import answer as answer_lib
from enas_jax.run import config as run_config
from enas_jax.run.search import SearchRun
from enas_jax.run.state import SearchState

# Streams folded into the report's key (`report.seed`).
_RANDOM_CELLS, _TRAIN_ALONE = 0, 1


@dataclasses.dataclass
class Cell:
  """One cell's figures: on the whole validation split and on its two halves under the shared
  weights (or the table), and trained alone (None unless it was)."""

  role: str  # "answer", "candidate" (another of `answer.candidates`) or "random"
  authors: str
  arch: Any
  whole: float
  halves: tuple[float, float]
  alone: float | None = None


@dataclasses.dataclass
class Measurements:
  """What the report measured, and where the search stood when it did."""

  space: Any
  model_cfg: Any
  metric: str  # "ppl" or "acc"
  lower_is_better: bool
  figure_source: str  # "shared" or "table"
  checkpoint_step: int
  epochs_done: int
  epochs_planned: int
  shared_steps: int
  planned_shared_steps: int
  planned_controller_steps: int
  answer: Cell
  candidates: list[Cell]  # every candidate re-scored (`answer.candidates`; the answer among them)
  random: list[Cell]
  finetune_steps: int = 0  # every shared-weight figure taken after this many steps on the cell
  alone_steps: int = 0
  alone_schedule: str = "constant"  # the learning rate while training alone (`report`'s)
  alone: list[Cell] = dataclasses.field(default_factory=list)  # cells trained alone
  notes: list[str] = dataclasses.field(default_factory=list)


def search_run(config: dict[str, Any], workdir: str) -> SearchRun:
  """The search of `config` (config.json's content) rebuilt on this one process, unexecuted."""
  config = {**config, "parallel": {}}  # read on one process, whatever the search ran on
  cfg = run_config.search_config(config)
  return SearchRun(cfg, workdir, io.StringIO(), Progress(enabled=False))


def newest_state(run: SearchRun) -> tuple[SearchState, int]:
  """The search's newest readable checkpoint, or a UserError when it has none yet."""
  directory = os.path.join(run.workdir, "checkpoints")
  found = ckpt_lib.read_latest(directory, run.state_shapes(), SearchState.position_problem)
  if found is None and os.path.isdir(directory):
    steps = sorted(int(n) for n in os.listdir(directory) if n.isdigit())
    if steps:
      raise UserError(f"None of {run.workdir}'s checkpoints ({', '.join(map(str, steps))}) "
                      f"could be read: damaged, or being written. Run the search again with the "
                      f"same --workdir (it moves an unreadable checkpoint aside and resumes from "
                      f"the one before, or from the start), then the report.")
  if found is None:
    raise UserError(f"{run.workdir} has no checkpoint yet: the search saves its first at the "
                    f"end of epoch 1 (or after `checkpoint.every_steps` steps). Run the report "
                    f"again after that.")
  arrays, meta, step = found
  run.check_same_data(meta, "The report would score the search's cells on data it never saw")
  return SearchState.from_saved(arrays, meta["position"]), step


def measure(config: dict[str, Any], workdir: str, options: run_config.ReportConfig,
            say: Callable[[str], None]) -> Measurements:
  """Every figure the report shows that is not already in the workdir's logs."""
  run = search_run(config, workdir)
  space, task, cfg = run.space, run.task, run.cfg
  state, step = newest_state(run)
  say(f"read checkpoint {step} (epoch {state.epoch} of {cfg.search.epochs} done)")
  finetune = finetune_steps(run, options)
  score = scorer(run, state, finetune)

  candidates = [Cell("candidate", authors, arch, *score(arch))
                 for authors, arch in answer_lib.candidates(run, state).items()]
  if not candidates:
    raise UserError(f"{workdir}'s newest checkpoint ({step}) has no derived cell yet: the "
                    f"search derives one every `search.derive_every` epochs. Run the report "
                    f"after the first derive.")
  pick = min if task.lower_is_better else max
  answer = pick(candidates, key=lambda c: c.whole)
  answer.role = "answer"
  say(f"re-scored {len(candidates)} candidate cell(s); scoring {options.random_cells} random "
      f"cells on the whole validation split and its halves"
      + (f", each after {finetune} steps on it alone" if finetune else ""))

  key = jax.random.fold_in(jax.random.key(options.seed), _RANDOM_CELLS)
  random = []
  for i in range(options.random_cells):
    arch = jax.tree_util.tree_map(np.asarray, space.random_arch(jax.random.fold_in(key, i),
                                                                cfg.model))
    random.append(Cell("random", space.to_authors_string(arch), arch, *score(arch)))

  fresh = SearchState(model=None, ctrl=None, sums={}, epoch_sums={})
  per_epoch = task.shared_phase_length(fresh)
  out = Measurements(
      space=space, model_cfg=cfg.model, metric=task.metric,
      lower_is_better=task.lower_is_better, figure_source=task.figure_source,
      checkpoint_step=step, epochs_done=state.epoch, epochs_planned=cfg.search.epochs,
      shared_steps=state.shared_steps, planned_shared_steps=per_epoch * cfg.search.epochs,
      planned_controller_steps=cfg.search.controller_steps * cfg.search.epochs,
      answer=answer, candidates=candidates, random=random, finetune_steps=finetune)
  if options.train_alone:
    if not per_epoch:
      out.notes.append("Training alone does not apply: this search's figures come from a "
                       "benchmark's table, already those of cells trained alone.")
    else:
      cache = alone_cache.AloneCache(reading.report_folder(workdir), config, say)
      train_alone(run, out, options, cache, say)
  return out


def finetune_steps(run: SearchRun, options: run_config.ReportConfig) -> int:
  """The shared steps each cell gets alone before it is scored: the report's own
  `finetune_steps`, or (-1) the search's, so that the report picks the answer as it did."""
  steps = options.finetune_steps
  if steps < 0:
    steps = run.cfg.search.finetune_steps
  if steps and run.task.figure_source != "shared":
    raise UserError(f"report.finetune_steps (--finetune_steps) is {steps}, but this search's "
                    f"figures come from a benchmark's table: there are no shared weights to "
                    f"train. Leave it out or pass --finetune_steps=0.")
  return steps


def scorer(run: SearchRun, state: SearchState, finetune: int
           ) -> Callable[[Any], tuple[float, tuple[float, float]]]:
  """arch -> (its figure on the whole validation split, on its two halves), under the state's
  shared weights, or after `finetune` steps of them on the cell alone (`SearchRun.finetuned`:
  the same batches and keys for every cell; the state's weights are left as they are)."""
  def score(arch: Any) -> tuple[float, tuple[float, float]]:
    model = run.finetuned(state.model, arch, finetune) if finetune else state.model
    return (run.task.evaluate(model, arch),
            tuple(run.task.evaluate_parts(model, arch, 2)))  # type: ignore[return-value]
  return score


def alone_choice(random: list[Cell], k: int, lower_is_better: bool) -> list[Cell]:
  """The top-`k` random cells by their shared-weight figure, then `k` more in drawing order."""
  order = answer_lib.best_first([c.whole for c in random], lower_is_better)
  top = order[:k]
  rest = [i for i in range(len(random)) if i not in top][:k]
  return [random[i] for i in top + rest]


def alone_start(run: SearchRun, seed: int) -> tuple[Any, jax.Array]:
  """The fresh state every cell trained alone starts from, and the key its steps fold
  (`report.seed`'s training-alone stream)."""
  key = jax.random.fold_in(jax.random.key(seed), _TRAIN_ALONE)
  return initialize(run.task.init_model, jax.random.fold_in(key, 0)), key


def trained_alone(run: SearchRun, step: Callable[..., Any], fresh: Any, arch: Any, steps: int,
                  schedule: str, key: jax.Array) -> float:
  """`arch`'s figure on the whole validation split after `steps` steps (`step`: the task's
  training step, jitted) of the search's training stream on it alone from the state `fresh`,
  step i's key `key` folded with i + 1. `schedule`: "linear" anneals the learning rate from the
  search's first (epoch 0) value to 0 over the steps; "constant" keeps `fresh`'s; "averaged"
  keeps it and scores the mean of the weights after each of the last `steps - steps // 2` steps
  (averaged SGD from the middle, as the final training's NT-ASGD averages). A cell whose
  weights went non-finite (NaN figure) gets the worst figure, +inf perplexity (or -inf for a
  higher-is-better figure), so that it ranks last, not as a tie."""
  holder = SearchState(model=fresh, ctrl=None, sums={}, epoch_sums={})
  arch = jax.tree_util.tree_map(lambda x: np.asarray(x, np.int32), arch)
  lr0 = run.cfg.shared.lr_at_epoch(0)
  mean, averaged = None, 0
  for i, batch in enumerate(run.task.shared_batches(holder, steps)):
    if schedule == "linear":
      lr = lr0 * (1.0 - i / steps)
      holder.model = holder.model.replace(opt_state=set_learning_rate(holder.model.opt_state, lr))
    holder.model, _ = step(holder.model, batch, arch, jax.random.fold_in(key, i + 1))
    if schedule == "averaged" and i >= steps // 2:
      averaged += 1
      mean = holder.model.params if mean is None else _running_mean(
          mean, holder.model.params, np.float32(1.0 / averaged))
  figure = run.task.evaluate(holder.model if mean is None else holder.model.replace(params=mean),
                             arch)
  if math.isnan(figure):  # the weights went non-finite: the cell diverged, the worst figure
    return math.inf if run.task.lower_is_better else -math.inf
  return figure


@jax.jit
def _running_mean(mean: Any, new: Any, weight: jax.Array) -> Any:
  """mean + weight * (new - mean), leaf by leaf (weight 1/n: the mean of n values)."""
  return jax.tree_util.tree_map(lambda m, x: m + weight * (x - m), mean, new)


def each_trained_alone(run: SearchRun, archs: Iterable[Any], steps: int, schedule: str,
                       seed: int) -> Iterator[float]:
  """Each of `archs` trained alone as the report trains it with `report.seed=seed`, its figure
  yielded as it is done: from one fresh state (`alone_start`), `trained_alone`'s steps; one
  compilation for every cell."""
  fresh, key = alone_start(run, seed)
  step = jax.jit(run.task.train_step)  # the cell is an argument: compiled once for every cell
  for arch in archs:
    yield trained_alone(run, step, fresh, arch, steps, schedule, key)


def cells_trained_alone(run: SearchRun, archs: list[Any], steps: int, schedule: str,
                        seed: int) -> list[float]:
  """`each_trained_alone`'s figures as a list."""
  return list(each_trained_alone(run, archs, steps, schedule, seed))


def train_alone(run: SearchRun, out: Measurements, options: run_config.ReportConfig,
                cache: alone_cache.AloneCache, say: Callable[[str], None]) -> None:
  """Trains the chosen cells and the answer alone: fresh shared-network weights (one key for
  every cell), the search's optimizer and training stream, `options.train_alone_steps` steps on
  the cell alone (the learning rate annealed as `options.train_alone_schedule` says); then its
  figure on the whole validation split. Each figure is kept in `cache` as it is done, and a
  figure already there is reused; a stop signal (SIGTERM, SIGINT, ...: `io.signals`) stops the
  command after the cell in progress (`Stopped`), the cells done kept."""
  steps, schedule = options.train_alone_steps, options.train_alone_schedule
  cells = alone_choice(out.random, options.train_alone, out.lower_is_better) + [out.answer]
  keys = [cache.key(run.space.to_json(c.arch), steps, schedule, options.seed) for c in cells]
  todo = [i for i, key in enumerate(keys) if cache.get(key) is None]
  kept = len(cells) - len(todo)
  say(f"training {len(cells)} cells alone, {steps} steps each ({schedule} learning rate)"
      + (f"; {kept} kept from an earlier report in {cache.path}" if kept else ""))
  with StopSignals() as signals:
    signals.then = "stopping after the cell in progress (the cells trained so far are kept)"
    figures = each_trained_alone(run, [cells[i].arch for i in todo], steps, schedule,
                                 options.seed)
    for done, (i, figure) in enumerate(zip(todo, figures), start=1):
      cache.put(keys[i], figure, cells[i].authors)
      if signals.received is not None:
        left = len(todo) - done
        rest = f"train the other {left} and write" if left else "write"
        raise Stopped(f"stopped by {signals.name} while training cells alone: {kept + done} "
                      f"of {len(cells)} trained and kept in {cache.path}; run the same command "
                      f"to {rest} the report.", 128 + signals.received)
  for cell, key in zip(cells, keys):
    cell.alone = cache.get(key)
  out.alone_steps, out.alone_schedule, out.alone = steps, schedule, cells
