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
      "anchor" is no choice (num_choices 1, value always 0): a controller step that only gives
      `node` a state for later pointers to attend to (the micro space's cell inputs, and each
      node's state after its operations, as in the authors' micro controller).
    node: the node or layer the decision belongs to (pointers point at nodes before it). Node
      ids are global across the whole decision list.
    target: for "skip" decisions, the earlier node the bit refers to.
    first: for "pointer" decisions, the node id of choice 0 (choice i is node `first + i`), so a
      space with several cells can number each cell's nodes from 0.
    feed_anchor: for "pointer" decisions, the next controller step reads the chosen node's state
      (the authors' micro controller) instead of an embedding of the choice.
    prior: for "op" decisions, a fixed offset added to the squashed logits (the authors' micro
      normal cell: +0.25 for the separable convolutions, -0.25 for the rest); empty for none.
    bias_init: for "op" decisions, the initial bias of the learned scoring head (shared by every
      op decision with as many choices; the authors' micro controller starts at 10 for the
      separable convolutions); empty for zeros.
  """

  name: str
  num_choices: int
  kind: Literal["op", "pointer", "skip", "anchor"]
  node: int
  target: int = -1
  first: int = 0
  feed_anchor: bool = False
  prior: tuple[float, ...] = ()
  bias_init: tuple[float, ...] = ()
