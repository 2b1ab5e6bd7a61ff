"""Cells of NAS-Bench-201 (Dong & Yang, ICLR 2020) and their formats.

A cell has four nodes: node 0 is the cell's input, node 3 its output, and node j is the sum of
one operation applied to each earlier node. Its six edges, in the order of NAS-Bench-201's string
(1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2), each carry one of five operations (`OPS`, NAS-Bench-201's
order); 5**6 = 15,625 cells. `Cell201(ops_E)`: int32[6] operation ids in that edge order, host
arrays or traced under `jit`.

NAS-Bench-201's string (`to_authors_string`, `from_authors_string`) lists each node's incoming
edges as `op~source`, nodes separated by `+`:
`|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|` (the ResNet
cell). The controller decides the six operations in edge order (`decisions`).
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from enas_jax.io.errors import UserError
from enas_jax.spaces import arch_file
from enas_jax.spaces.decisions import Decision

SPACE_NAME = "nasbench201"
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NUM_OPS = len(OPS)
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from)
NUM_EDGES = len(EDGES)
EXAMPLE = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"


class Cell201(NamedTuple):
  """A NAS-Bench-201 cell: the operation id of each edge, in `EDGES` order."""

  ops_E: np.ndarray | jax.Array


def decisions(size: int | None = None) -> tuple[Decision, ...]:
  """One operation per edge, in edge order (`size` is unused: the cell has a fixed shape)."""
  del size
  return tuple(Decision(f"node{to}.from{src}.op", NUM_OPS, "op", to) for to, src in EDGES)


def from_decisions(values_D: jax.Array | np.ndarray) -> Cell201:
  if int(np.shape(values_D)[0]) != NUM_EDGES:
    raise ValueError(f"{np.shape(values_D)[0]} decision values do not describe a NAS-Bench-201 "
                     f"cell (it has {NUM_EDGES} edges)")
  xp = jnp if isinstance(values_D, jax.Array) else np
  return Cell201(xp.asarray(values_D).astype(xp.int32))


def to_decisions(cell: Cell201) -> np.ndarray:
  """The inverse of `from_decisions` (host side)."""
  return np.asarray(cell.ops_E, np.int32)


def random_arch(key: jax.Array, size: int | None = None) -> Cell201:
  """A uniformly sampled cell (traceable)."""
  del size
  return Cell201(jax.random.randint(key, (NUM_EDGES,), 0, NUM_OPS, dtype=jnp.int32))


def validate(arch: Cell201, size: int | None = None, where: str = "architecture") -> None:
  """Six operation ids in 0..4; a UserError naming the edge at fault."""
  del size
  ops = np.asarray(arch.ops_E)
  if ops.shape != (NUM_EDGES,):
    raise UserError(f"The {where} has {ops.size} edge operations; a NAS-Bench-201 cell has "
                    f"{NUM_EDGES} (edges {', '.join(f'{t}<-{s}' for t, s in EDGES)}).")
  for (to, src), op in zip(EDGES, ops.tolist()):
    if not 0 <= op < NUM_OPS:
      raise UserError(f"In the {where}, edge {to}<-{src} has operation id {op}; ids are 0..4 "
                      f"({', '.join(OPS)}).")


def to_authors_string(arch: Cell201) -> str:
  """NAS-Bench-201's string of the cell."""
  validate(arch)
  ops = np.asarray(arch.ops_E).tolist()
  nodes: dict[int, list[str]] = {}
  for (to, src), op in zip(EDGES, ops):
    nodes.setdefault(to, []).append(f"{OPS[op]}~{src}")
  return "+".join("|" + "|".join(nodes[to]) + "|" for to in sorted(nodes))


def from_authors_string(text: str, size: int | None = None,
                        where: str = "NAS-Bench-201 string") -> Cell201:
  """Reads NAS-Bench-201's string; errors name the node and the edge."""
  del size
  nodes = text.strip().split("+")
  if len(nodes) != 3 or not all(n.startswith("|") and n.endswith("|") and len(n) > 1
                                for n in nodes):
    raise UserError(f"The {where} {text!r} is not NAS-Bench-201's format: three nodes joined by "
                    f"'+', each '|op~source|...|', e.g. {EXAMPLE!r}.")
  ops = []
  for to, node in enumerate(nodes, start=1):
    edges = node[1:-1].split("|")
    if len(edges) != to:
      raise UserError(f"In the {where}, node {to} has {len(edges)} incoming edges "
                      f"({node!r}); it needs {to} (from nodes 0..{to - 1}, in order).")
    for src, edge in enumerate(edges):
      op, _, source = edge.partition("~")
      if op not in OPS or source != str(src):
        raise UserError(f"In the {where}, edge {src} of node {to} is {edge!r}; it must be "
                        f"'<op>~{src}' with <op> one of {', '.join(OPS)}.")
      ops.append(OPS.index(op))
  return Cell201(np.asarray(ops, np.int32))


def to_json(arch: Cell201) -> dict[str, Any]:
  validate(arch)
  return {"space": SPACE_NAME,
          "edges": [{"to": to, "from": src, "op": OPS[int(op)]}
                    for (to, src), op in zip(EDGES, np.asarray(arch.ops_E).tolist())]}


def from_json(data: Mapping[str, Any], where: str = "architecture JSON") -> Cell201:
  arch_file.check_space_field(data, SPACE_NAME, "a NAS-Bench-201 cell", where)
  edges = data.get("edges")
  if not isinstance(edges, list) or len(edges) != NUM_EDGES:
    raise UserError(f"The {where} needs an `edges` list of {NUM_EDGES} {{to, from, op}} objects "
                    f"(edges {', '.join(f'{t}<-{s}' for t, s in EDGES)}).")
  found = {}
  for edge in edges:
    ok = (isinstance(edge, Mapping) and (edge.get("to"), edge.get("from")) in EDGES
          and edge.get("op") in OPS)
    if not ok:
      raise UserError(f"In the {where}, the edge {edge!r} must name `to` and `from` nodes of a "
                      f"NAS-Bench-201 edge and an `op` from {', '.join(OPS)}.")
    found[(edge["to"], edge["from"])] = OPS.index(edge["op"])
  if len(found) != NUM_EDGES:
    missing = [f"{t}<-{s}" for t, s in EDGES if (t, s) not in found]
    raise UserError(f"The {where} repeats an edge and lacks {', '.join(missing)}.")
  return Cell201(np.asarray([found[e] for e in EDGES], np.int32))


def load_arch(spec: str, size: int | None = None) -> Cell201:
  """A search workdir (its best_arch.json), a JSON file, or NAS-Bench-201's string."""
  return arch_file.load_arch(spec, "NAS-Bench-201", size, from_authors_string, from_json,
                             validate)
