"""The search's derive phase (c): sample and score `search.derive_samples` architectures with
the controller phase's programs, evaluate the best on the whole validation split, and record,
write and draw it; and the simulated cost of scored architectures (the table task's)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from enas_jax.io import memory as memory_lib
from enas_jax.run import ahead, answer, outputs
from enas_jax.run.program import HOST_ROWS, derive_row_bytes

# Per derive sample besides its row: `answer.ranked`'s float64 keys, their negation and the
# int64 order (24 bytes), and the median's copy of the scores (at most 8).
SCRATCH_BYTES = 32

if TYPE_CHECKING:
  from enas_jax.run.search import SearchRun
  from enas_jax.run.state import SearchState
  from enas_jax.tasks.base import SearchTask


def derive(run: SearchRun, state: SearchState, reward: float | None, key: jax.Array
           ) -> dict[str, Any]:
  """Derives, records, writes and draws this epoch's architecture (`reward`: the epoch's mean
  controller reward, None without controller steps; `key`: the epoch's derive key); returns its
  history entry."""
  task, space = run.task, run.space
  m = task.metric
  values_SxD, _, figures = run.program.derive_step(*run.placed(
      task.derive_batch(state.epoch), state.ctrl, state.model.params, state.model.batch_stats,
      key, after=1))
  values_SxD, score_S = np.asarray(values_SxD), np.asarray(figures[f"valid_{m}"])
  add_cost(task, state, len(score_S),
           float(np.mean(figures[task.cost_figure])) if task.cost_figure else 0)
  best = int(answer.ranked(score_S, task.lower_is_better)[0])
  arch = space.from_decisions(values_SxD[best])
  valid = task.evaluate(state.model, arch)
  entry = {"epoch": state.epoch, "authors": space.to_authors_string(arch),
           "arch": space.to_json(arch), f"batch_{m}": float(score_S[best]),
           f"batch_{m}_median": float(np.median(score_S)), f"valid_{m}": valid,
           "reward": reward}
  state.history.append(entry)
  title = outputs.picture_title(state.epoch, {"reward": reward, f"valid {m}": valid})
  written = run.write_arch(space, f"archs/epoch_{state.epoch:04d}", arch,
                           {"epoch": state.epoch, f"valid_{m}": valid, "reward": reward}, title)
  sampled = space.from_decisions(values_SxD[0])
  outputs.log_pictures(run.log, state.epoch, written,
                       space.to_dot(sampled, model_cfg=run.cfg.model))
  run.log.write("derive", state.epoch, {f"valid_{m}": valid, f"batch_{m}": entry[f"batch_{m}"],
                                        f"batch_{m}_median": entry[f"batch_{m}_median"],
                                        "arch": entry["authors"]})
  return entry


def add_cost(task: SearchTask, state: SearchState, queries: float, mean_cost: float) -> None:
  """Counts `queries` scored architectures costing `mean_cost` simulated seconds each (tasks
  with a `cost_figure` only). A NaN mean (every step of the phase skipped: no cost measured)
  adds the queries at no cost."""
  if task.cost_figure:
    mean_cost = mean_cost if math.isfinite(mean_cost) else 0.0
    totals = state.totals
    totals["queries"] = totals.get("queries", 0) + int(queries)
    totals["simulated_seconds"] = totals.get("simulated_seconds", 0.0) + queries * mean_cost


def check_memory(run: SearchRun, state: Any) -> None:
  """A UserError, before the search starts or resumes (`state`: its arrays' shapes, as
  attributes), when a derive cannot hold its samples' rows in the memory this process may
  still take: a row per sample (`search.derive_samples`) and twice the rows of a block in
  transit (`HOST_ROWS`, at least a chunk of `controller.num_samples`), each row its results
  (`derive_row_bytes`), its entries in the task's batch (a table's seed draws, made in float64
  first: three times their float32 size) and `SCRATCH_BYTES`."""
  cfg, task = run.cfg, run.task
  rows = cfg.search.derive_samples + 2 * max(HOST_ROWS, cfg.controller.num_samples)
  ctrl, params, stats, batch, key, _ = ahead.controller_shapes(  # placed as the loop's: one
      task, run.parallel, state, run.base_key)  # trace (`program.controller_metric_shapes`)
  per_row = derive_row_bytes(run.program.controller_step, ctrl, params, stats, batch, key)
  per_row += sum(3 * batch[k].dtype.itemsize * int(np.prod(batch[k].shape[1:]))
                 for k in task.sample_keys) + SCRATCH_BYTES
  memory_lib.check_host_room(
      rows * per_row, f"Deriving {cfg.search.derive_samples:,} architectures "
      f"(search.derive_samples) needs", f"to hold their rows of results ({per_row} bytes each)",
      "search.derive_samples")
