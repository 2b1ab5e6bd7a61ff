"""Table lookup: search spaces whose cells are scored by reading a benchmark's table of trained
cells (NAS-Bench-201), not by training shared weights. `lookup` holds the table's arrays and the
query, `search` the search task, `strategies` the query-budgeted search strategies (ENAS's
controller, random search, regularized evolution); `final` refuses final training."""
from __future__ import annotations

from typing import Any

from enas_jax.io.errors import UserError
from enas_jax.tasks.sections import TaskSections
from enas_jax.tasks.table import final, search  # noqa: F401 (tasks/__init__ reads them)
from enas_jax.tasks.table.lookup import NoSharedWeights, NoTraining, TableDataConfig


def _check_search(cfg: Any) -> None:
  if cfg.search.shared_steps:
    raise UserError(f"Config field `search.shared_steps` is {cfg.search.shared_steps}; a table "
                    f"search has no shared weights to train. Leave it at 0.")
  if cfg.search.finetune_steps:
    raise UserError(f"Config field `search.finetune_steps` is {cfg.search.finetune_steps}; a "
                    f"table search reads each cell's figure from the table and has no shared "
                    f"weights to train before scoring. Leave it at 0.")
  if cfg.search.screen_steps:
    raise UserError(f"Config field `search.screen_steps` is {cfg.search.screen_steps}; a table "
                    f"search's cells are looked up, not trained, so there is no training alone "
                    f"to screen its answer with. Leave it at 0.")
  if cfg.search.final_candidates:
    raise UserError(f"Config field `search.final_candidates` is "
                    f"{cfg.search.final_candidates}; a table search's queries are its budget "
                    f"and its answer is the best cell it looked up. Leave it at 0.")
  if cfg.parallel.data_parallel or cfg.parallel.distributed:
    raise UserError("Config fields `parallel.data_parallel` / `parallel.distributed` are set, "
                    "but a table search has no batches to split: each query is a lookup. Leave "
                    "them False.")


SECTIONS = TaskSections(data=TableDataConfig, shared=NoSharedWeights, train=NoTraining,
                        arch_hint=", e.g. NAS-Bench-201's string", check_search=_check_search,
                        no_final_training=final.REASON)
