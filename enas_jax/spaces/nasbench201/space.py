"""NAS-Bench-201's cell space behind the `SearchSpace` interface (`spaces/base.py`).

Its cells are not trained here: the `table` task looks each one up in NAS-Bench-201's table of
fully trained cells, so the space has no shared or fixed network.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from enas_jax.data import nasbench201 as table_lib
from enas_jax.io.errors import UserError
from enas_jax.spaces.base import ModuleSpace
from enas_jax.spaces.nasbench201 import arch as arch_lib
from enas_jax.spaces.nasbench201 import picture


@dataclasses.dataclass(frozen=True)
class CellTableConfig:
  """The `model` section: empty, since NAS-Bench-201 fixes the cell (4 nodes, 6 edges, 5
  operations) and the network around it (3 stages of 5 cells, 16/32/64 channels)."""

  def validate(self, section: str = "model") -> None:
    del section


class NasBench201Space(ModuleSpace):
  """NAS-Bench-201's 15,625 cells."""

  name = arch_lib.SPACE_NAME
  task = "table"
  model_config = CellTableConfig
  arch_lib = formats = arch_lib
  picture = picture
  size_field = ""

  def _size(self, model_cfg: Any | None) -> int | None:
    return None

  def size(self, model_cfg: Any) -> str:
    return "NAS-Bench-201 cell (4 nodes, 6 edges, 5 operations: 15,625 cells)"

  def known_figures(self, arch: arch_lib.Cell201) -> list[str]:
    """The cell's validation accuracy in each of NAS-Bench-201's tables, when installed."""
    lines = []
    for dataset in table_lib.DATASETS:
      try:
        table = table_lib.load_table(dataset)
      except UserError:  # the package is not installed: nothing is known
        return []
      k = table_lib.cell_index(np.asarray(arch.ops_E))
      runs = ", ".join(f"{a:.2f}" for a in table.acc_KxS[k, :table.seeds_K[k]])
      lines.append(f"NAS-Bench-201 {dataset}: validation accuracy {table.mean_acc_K[k]:.2f}% "
                   f"(seeds: {runs}), rank {table.rank(k):,} of {len(table.seeds_K):,}; the "
                   f"best cell {table.mean_acc_K[table.best_index]:.2f}%")
    return lines

  def shared_network(self, model_cfg: Any, data_shape: Any) -> Any:
    raise UserError("The nasbench201 space has no shared weights: its cells are looked up in "
                    "NAS-Bench-201's table.")

  def fixed_network(self, arch: arch_lib.Cell201, model_cfg: Any, data_shape: Any) -> Any:
    raise UserError("The nasbench201 space's cells are not trained here: NAS-Bench-201's table "
                    "already holds each cell's 200-epoch figures (`python -m enas_jax.show` "
                    "prints a cell's; NAS-Bench-201's own code trains one).")


SPACE = NasBench201Space()
