"""Where a phase is in its split, for every data stream (text windows, image batches)."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Cursor:
  """The pass over the split and the window (or batch) within it."""

  pass_index: int = 0
  window: int = 0
