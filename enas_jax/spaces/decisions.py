"""The decision list through which a controller sees any search space."""
from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class Decision:
  """One categorical choice the controller makes.

  Attributes:
    name: readable name, e.g. "node3.prev".
    num_choices: how many values the choice can take (0..num_choices-1).
    kind: "op" picks from a fixed list of operations; "pointer" picks an earlier node or layer,
      which a controller may score by attention over its own earlier states; "skip" is one bit
      (num_choices 2): whether `node` also reads the earlier node `target`. The skip bits of a
      node are consecutive and the controller samples them from one state, as in the paper.
    node: the node or layer the decision belongs to (pointers point at nodes before it).
    target: for "skip" decisions, the earlier node the bit refers to.
  """

  name: str
  num_choices: int
  kind: Literal["op", "pointer", "skip"]
  node: int
  target: int = -1
