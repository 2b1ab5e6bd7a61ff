"""Final training of a table task: there is none (the table holds trained cells)."""
from __future__ import annotations

from typing import Any

from enas_jax.io.errors import UserError
from enas_jax.spaces.base import SearchSpace


REASON = ("its cells are not trained here, since NAS-Bench-201's table already holds each cell's "
          "200-epoch figures. `python -m enas_jax.show CELL` prints a cell (NAS-Bench-201's "
          "string, or a search's workdir); NAS-Bench-201's own code (D-X-Y/AutoDL-Projects) "
          "trains one.")


class FinalTaskImpl:
  """Refuses with the reason: the table's figures are already those of trained cells."""

  resumable_changes: tuple[str, ...] = ()
  data_location: tuple[str, ...] = ()

  def __init__(self, space: SearchSpace, cfg: Any, say: Any):
    raise UserError(f"The {space.name} space has no final training: {REASON}")
