"""A table as a search task: NAS-Bench-201's cells scored by lookup (the nasbench201 space).

There are no shared weights, so the shared phase is empty; the controller phase is ENAS's
(REINFORCE with the moving-average baseline), each sampled cell rewarded with the accuracy (as a
fraction) of one of its training seeds, drawn per query from the run's seed (`lookup.query`). A
"validation batch" here is those draws. Derive: the best of `search.derive_samples` sampled
cells by their drawn accuracy; its figure is the table's mean over seeds. Every query's cost is
the cell's training time in the table; the run's total is in the summary (`simulated_cost`).
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from enas_jax.data.nasbench201 import Table, cell_index, cell_ops, load_table
from enas_jax.io.errors import UserError
from enas_jax.spaces.base import SearchSpace
from enas_jax.tasks.table.lookup import DeviceTable, query, seed_draws
from enas_jax.types import Batch, Metrics, ScoreFn

RESUMABLE_CHANGES = ("search.epochs", "search.log_every", "checkpoint.", "deterministic",
                     "parallel.", "report.")
_REWARD_STREAM, _DERIVE_STREAM = 0, 1  # seed-draw streams


class NoWeights(flax.struct.PyTreeNode):
  """The search state's model for a table: no weights (a step counter keeps it an array)."""

  params: Any
  batch_stats: Any
  step: jax.Array


class SearchTaskImpl:
  """NAS-Bench-201's table of one dataset, queried by the controller."""

  metric = "acc"
  lower_is_better = False
  split_keys = ("u",)
  sample_keys = ("u",)  # one seed draw per scored cell
  resumable_changes = RESUMABLE_CHANGES
  data_location = ()  # the table is named (`data.dataset`), not found at a path
  figure_source = "table"  # a cell's figure: the table's mean over its seeds
  cost_figure = "train_time"  # seconds of training a query stands for
  cells_per_step = 1  # one architecture a shared step

  def __init__(self, space: SearchSpace, cfg: Any):
    self.space, self.cfg = space, cfg
    self.table: Table = load_table(cfg.data.dataset)
    self.device_table = DeviceTable.of(self.table)

  def data_fingerprint(self) -> str:
    return self.table.fingerprint()

  def init_model(self, key: jax.Array) -> NoWeights:
    del key
    return NoWeights(params={}, batch_stats={}, step=jnp.zeros((), jnp.int32))

  def train_step(self, state: NoWeights, batch: Batch, arch: Any, key: jax.Array
                 ) -> tuple[NoWeights, Metrics]:
    """Never run (the shared phase is empty); defines the shared phase's metric shapes."""
    return state, {"loss": jnp.zeros(())}

  def score(self) -> ScoreFn:
    """Each sampled cell's drawn accuracy (the reward) and its training time."""
    table = self.device_table

    def score_S(params: Any, batch_stats: Any, batch: Batch, values_SxD: jax.Array
                ) -> tuple[jax.Array, Metrics]:
      del params, batch_stats
      acc_S, time_S = query(table, values_SxD, batch["u"])
      return acc_S, {"valid_acc": acc_S, "train_time": time_S}

    return score_S

  def example_batches(self) -> tuple[Batch, Batch]:
    n = self.cfg.controller.num_samples
    return {"u": np.zeros((1,), np.float32)}, {"u": np.zeros((n,), np.float32)}

  def shared_phase_length(self, state: Any) -> int:
    return 0

  def shared_batches(self, state: Any, n: int) -> Iterator[Batch]:
    return iter(())

  def reward_batches(self, state: Any, n: int) -> Iterator[Batch]:
    """The seed draws of the next `n` controller steps (counted by the state's cursor)."""
    size = self.cfg.controller.num_samples
    for _ in range(n):
      cursor = state.valid_cursor
      yield {"u": seed_draws(self.cfg.seed, _REWARD_STREAM, cursor.window, size)}
      cursor.window += 1

  def derive_batch(self, epoch: int) -> Batch:
    return {"u": seed_draws(self.cfg.seed, _DERIVE_STREAM, epoch, self.cfg.search.derive_samples)}

  def evaluate(self, model: Any, arch: Any) -> float:
    """The cell's validation accuracy averaged over its seeds, as a fraction."""
    return float(self.table.mean_acc_K[cell_index(np.asarray(arch.ops_E))] / 100.0)

  def screen_limit(self) -> None:
    """None: a table's cells are looked up, not trained (`SearchTask`)."""
    return None

  def compile_evaluate(self, model: Any) -> None:
    """Nothing to compile: `evaluate` looks the cell up on the host."""

  def evaluate_parts(self, model: Any, arch: Any, parts: int) -> list[float]:
    """The cell's accuracy from each of `parts` disjoint groups of its training seeds (the
    table's figure is their mean; 2 parts: the first seed, the mean of the others)."""
    k = cell_index(np.asarray(arch.ops_E))
    seeds = int(self.table.seeds_K[k])
    if seeds < parts:
      raise UserError(f"NAS-Bench-201's cell {k} has {seeds} seed(s), fewer than the {parts} "
                      f"parts the report compares.")
    groups = np.array_split(np.arange(seeds), parts)
    return [float(np.mean(self.table.acc_KxS[k, g]) / 100.0) for g in groups]

  def describe(self, model: Any, workdir: str) -> str:
    best = self.table.best_index
    return (f"search: NAS-Bench-201's {self.table.name} table ({len(self.table.seeds_K):,} "
            f"cells; the best scores {self.table.mean_acc_K[best]:.2f}%), controller "
            f"{self.cfg.controller.kind}, {self.cfg.controller.num_samples} cell(s) per update; "
            f"workdir {workdir}")

  def progress_figures(self, phase: str, record: dict[str, float]) -> dict[str, float]:
    return {"reward": record.get("reward", 0.0), "acc": record.get("valid_acc", 0.0)}

  def epoch_figures(self, shared: dict[str, float], control: dict[str, float],
                    derived: dict[str, Any] | None) -> str:
    line = ""
    if control["steps"]:
      line += f"  reward {control['reward']:.4f}  entropy {control['entropy']:.2f}"
    if derived:
      line += f"  derived {100 * derived['valid_acc']:.2f}%"
    return line

  def summary_extras(self, evaluate: Callable[[Any], float], answer: Any) -> dict[str, Any]:
    """The dataset, the answer's rank among all cells and its regret, the best possible cell."""
    k, best = cell_index(np.asarray(answer.ops_E)), self.table.best_index
    mean = self.table.mean_acc_K
    return {"dataset": self.table.name, "table_rank": self.table.rank(k),
            "table_cells": int(len(mean)), "regret_acc": float((mean[best] - mean[k]) / 100),
            "best_possible_valid_acc": float(mean[best] / 100),
            "best_possible": self.space.to_authors_string(
                self.space.from_decisions(cell_ops(best)))}
