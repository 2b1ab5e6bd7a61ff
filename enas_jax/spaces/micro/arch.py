"""Architectures of the ENAS micro search space (a normal and a reduction cell).

A cell has two inputs (nodes 0 and 1: the outputs of the two previous cells) and B computed nodes
(2 .. B+1). Node 2 + b reads two earlier nodes, applies one operation to each and adds the two
results. A cell is an int32 array `[B, 4]`, row b = `[input 1, op 1, input 2, op 2]` with
inputs in 0 .. b+1 and op ids into `OPS` (the authors' ids). The cell's output combines every node
no other node reads (its "loose ends"). `MicroArch(normal_Bx4, reduce_Bx4)` holds both cells; as
traced arrays they drive the shared-weights network without recompiling.

The authors' micro string (`to_authors_string`/`from_authors_string`): the normal cell then the
reduction cell, each as its B rows flattened, 8B integers in all.

The controller's decisions (`decisions`) follow the authors' micro controller: per cell, two
anchor steps for the cell inputs; per node, the two inputs (pointers by attention over the cell's
earlier nodes), then the two operations, then an anchor step; the reduction cell continues from
the normal cell's LSTM state. `from_decisions` maps that order back to the rows.
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from enas_jax.io.errors import UserError
from enas_jax.spaces import arch_file
from enas_jax.spaces.decisions import Decision

SPACE_NAME = "micro"
# Operation ids, in the order of the authors' micro strings.
OPS: tuple[str, ...] = ("sep3x3", "sep5x5", "avgpool3x3", "maxpool3x3", "identity")
NUM_OPS = len(OPS)
CELLS = ("normal", "reduce")
# The authors' controller: learned op-head bias starts at 10 for the separable convolutions, and
# the normal cell's op logits get a fixed +-0.25 after squashing.
OP_BIAS_INIT = (10.0, 10.0) + (0.0,) * (NUM_OPS - 2)
OP_PRIOR = (0.25, 0.25) + (-0.25,) * (NUM_OPS - 2)


class MicroArch(NamedTuple):
  """The two cells, each int32 `[B, 4]` rows of (input 1, op 1, input 2, op 2)."""

  normal_Bx4: np.ndarray | jax.Array
  reduce_Bx4: np.ndarray | jax.Array

  @property
  def num_nodes(self) -> int:
    return int(np.shape(self.normal_Bx4)[0])


def validate_cell(cell: Any, name: str, num_nodes: int | None = None,
                  where: str = "architecture") -> None:
  """Raises a UserError naming the cell, node and field at fault."""
  cell = np.asarray(cell)
  if cell.ndim != 2 or cell.shape[1] != 4 or cell.shape[0] < 1:
    raise UserError(f"In the {where}, the {name} cell must be rows of [input 1, op 1, input 2, "
                    f"op 2]; got an array of shape {cell.shape}.")
  if num_nodes is not None and cell.shape[0] != num_nodes:
    raise UserError(f"In the {where}, the {name} cell has {cell.shape[0]} nodes but the search "
                    f"space has {num_nodes} (field `model.num_nodes`). Use an architecture with "
                    f"{num_nodes} nodes per cell or change the field.")
  for b in range(cell.shape[0]):
    for slot in (0, 1):
      inp, op = int(cell[b, 2 * slot]), int(cell[b, 2 * slot + 1])
      if not 0 <= inp < b + 2:
        raise UserError(f"In the {where}, {name} cell node {b + 2} reads node {inp} (input "
                        f"{slot + 1}); node {b + 2} may only read nodes 0..{b + 1} (0 and 1 are "
                        f"the cell's inputs).")
      if not 0 <= op < NUM_OPS:
        raise UserError(f"In the {where}, {name} cell node {b + 2} has operation id {op} (op "
                        f"{slot + 1}); ids are 0..{NUM_OPS - 1} ({', '.join(OPS)}).")


def validate(arch: MicroArch, num_nodes: int | None = None, where: str = "architecture") -> None:
  if np.shape(arch.normal_Bx4) != np.shape(arch.reduce_Bx4):
    raise UserError(f"In the {where}, the normal and reduction cells have different numbers of "
                    f"nodes ({np.shape(arch.normal_Bx4)} vs {np.shape(arch.reduce_Bx4)}).")
  for name, cell in zip(CELLS, arch):
    validate_cell(cell, name, num_nodes, where)


def random_cell(key: jax.Array, num_nodes: int) -> jax.Array:
  """Uniform inputs and operations (traceable)."""
  k_in, k_op = jax.random.split(key)
  limit_Bx1 = jnp.arange(2, num_nodes + 2)[:, None]
  inputs = jnp.floor(jax.random.uniform(k_in, (num_nodes, 2)) * limit_Bx1).astype(jnp.int32)
  ops = jax.random.randint(k_op, (num_nodes, 2), 0, NUM_OPS, dtype=jnp.int32)
  return jnp.stack([inputs[:, 0], ops[:, 0], inputs[:, 1], ops[:, 1]], axis=1)


def random_arch(key: jax.Array, num_nodes: int) -> MicroArch:
  k_n, k_r = jax.random.split(key)
  return MicroArch(random_cell(k_n, num_nodes), random_cell(k_r, num_nodes))


def loose_ends(cell: Any) -> np.ndarray:
  """bool [B+2]: the nodes no node of the cell reads (the cell's output), host side."""
  cell = np.asarray(cell)
  used = np.zeros((cell.shape[0] + 2,), bool)
  used[cell[:, 0]] = True
  used[cell[:, 2]] = True
  return ~used


def loose_ends_traced(cell_Bx4: jax.Array) -> jax.Array:
  """float32 [B+2]: 1 for the nodes no node of the cell reads (traceable)."""
  n = cell_Bx4.shape[0] + 2
  used = (jax.nn.one_hot(cell_Bx4[:, 0], n) + jax.nn.one_hot(cell_Bx4[:, 2], n)).sum(0)
  return (used == 0).astype(jnp.float32)


def decisions(num_nodes: int) -> tuple[Decision, ...]:
  """The controller's order (see the module docstring); node ids are global across both cells."""
  out: list[Decision] = []
  for c, cell in enumerate(CELLS):
    base = c * (num_nodes + 2)
    prior = OP_PRIOR if cell == "normal" else ()
    out.extend(Decision(f"{cell}.input{i}", 1, "anchor", base + i) for i in range(2))
    for b in range(num_nodes):
      node = base + 2 + b
      for i in (1, 2):
        out.append(Decision(f"{cell}.node{b + 2}.input{i}", b + 2, "pointer", node, first=base,
                            feed_anchor=True))
      for i in (1, 2):
        out.append(Decision(f"{cell}.node{b + 2}.op{i}", NUM_OPS, "op", node, prior=prior,
                            bias_init=OP_BIAS_INIT))
      out.append(Decision(f"{cell}.node{b + 2}.state", 1, "anchor", node))
  return tuple(out)


def num_decisions(num_nodes: int) -> int:
  return 2 * (2 + 5 * num_nodes)


def _positions(num_nodes: int) -> np.ndarray:
  """int32 [2, B, 4]: where each cell entry sits in the decision list."""
  pos = np.zeros((2, num_nodes, 4), np.int32)
  for c in range(2):
    base = c * (2 + 5 * num_nodes) + 2
    for b in range(num_nodes):
      i = base + 5 * b
      pos[c, b] = [i, i + 2, i + 1, i + 3]  # input 1, op 1, input 2, op 2
  return pos


def from_decisions(values_D: jax.Array | np.ndarray) -> MicroArch:
  """The controller's decision values -> the architecture (traceable)."""
  d = int(np.shape(values_D)[0])
  num_nodes = (d // 2 - 2) // 5
  if num_nodes < 1 or num_decisions(num_nodes) != d:
    raise ValueError(f"{d} decision values do not describe a micro architecture")
  xp = jnp if isinstance(values_D, jax.Array) else np
  cells = xp.asarray(values_D).astype(xp.int32)[_positions(num_nodes)]
  return MicroArch(cells[0], cells[1])


def to_decisions(arch: MicroArch) -> np.ndarray:
  """The inverse of `from_decisions` (host side; anchors are 0)."""
  b = arch.num_nodes
  out = np.zeros((num_decisions(b),), np.int32)
  out[_positions(b)] = np.stack([np.asarray(arch.normal_Bx4), np.asarray(arch.reduce_Bx4)])
  return out


def to_authors_string(arch: MicroArch) -> str:
  validate(arch)
  values = np.concatenate([np.asarray(arch.normal_Bx4).ravel(),
                           np.asarray(arch.reduce_Bx4).ravel()])
  return " ".join(str(int(v)) for v in values)


def from_authors_string(text: str, num_nodes: int | None = None,
                        where: str = "micro architecture string") -> MicroArch:
  """Reads the authors' micro string (see the module docstring); errors name the node."""
  tokens = text.replace(",", " ").split()
  try:
    values = [arch_file.integer(t) for t in tokens]
  except ValueError:
    raise UserError(f"The {where} {text!r} must be whitespace-separated integers: the normal "
                    f"cell then the reduction cell, each node as [input 1, op 1, input 2, op 2]."
                    ) from None
  if not values or len(values) % 8:
    raise UserError(f"The {where} has {len(values)} integers; a micro architecture of B nodes "
                    f"per cell has 8B (40 for B = 5): the normal cell then the reduction cell, "
                    f"each node as [input 1, op 1, input 2, op 2].")
  cells = np.asarray(values, np.int32).reshape(2, -1, 4)
  arch = MicroArch(cells[0], cells[1])
  validate(arch, num_nodes, where)
  return arch


def _cell_json(cell: Any) -> list[dict[str, Any]]:
  cell = np.asarray(cell)
  return [{"node": b + 2, "inputs": [int(cell[b, 0]), int(cell[b, 2])],
           "ops": [OPS[int(cell[b, 1])], OPS[int(cell[b, 3])]]} for b in range(cell.shape[0])]


def to_json(arch: MicroArch) -> dict[str, Any]:
  validate(arch)
  return {"space": SPACE_NAME, "num_nodes": arch.num_nodes,
          "normal": _cell_json(arch.normal_Bx4), "reduce": _cell_json(arch.reduce_Bx4),
          "outputs": {name: [int(j) for j in np.nonzero(loose_ends(cell))[0]]
                      for name, cell in zip(CELLS, arch)}}


def _cell_from_json(nodes: Any, name: str, where: str) -> np.ndarray:
  if not isinstance(nodes, list) or not nodes:
    raise UserError(f"The {where} needs a non-empty `{name}` list of {{node, inputs, ops}}.")
  rows = []
  for b, node in enumerate(nodes):
    ok = (isinstance(node, Mapping) and isinstance(node.get("inputs"), list)
          and isinstance(node.get("ops"), list) and len(node["inputs"]) == 2
          and len(node["ops"]) == 2 and all(isinstance(i, int) for i in node["inputs"])
          and all(op in OPS for op in node["ops"]))
    if not ok:
      raise UserError(f"In the {where}, {name} node {b + 2} must be an object with two integer "
                      f"`inputs` and two `ops` from {', '.join(OPS)}; got {node!r}.")
    rows.append([node["inputs"][0], OPS.index(node["ops"][0]), node["inputs"][1],
                 OPS.index(node["ops"][1])])
  return np.asarray(rows, np.int32)


def from_json(data: Mapping[str, Any], where: str = "architecture JSON") -> MicroArch:
  arch_file.check_space_field(data, SPACE_NAME, "a micro-space architecture", where)
  arch = MicroArch(_cell_from_json(data.get("normal"), "normal", where),
                   _cell_from_json(data.get("reduce"), "reduce", where))
  validate(arch, where=where)
  return arch


def load_arch(spec: str, num_nodes: int | None = None) -> MicroArch:
  """A search workdir (its best_arch.json), a JSON file, or the authors' string."""
  return arch_file.load_arch(spec, "micro", num_nodes, from_authors_string, from_json, validate)
