"""Architectures of the ENAS recurrent cell.

A cell of N nodes is two int32 arrays of length N:
- `prev_N[k]`: the node that node k reads (0 <= prev_N[k] < k for k >= 1); node 0 reads x_t and
  h_{t-1}, and `prev_N[0]` is -1 by convention.
- `act_N[k]`: node k's activation, an index into `ACTIVATIONS`.
The same pair, as traced arrays, drives the shared-weights forward pass without recompiling.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from enas_jax.io.errors import UserError
from enas_jax.spaces.decisions import Decision

# Activation ids, in the order of the authors' TensorFlow recurrent-cell strings.
ACTIVATIONS: tuple[str, ...] = ("tanh", "relu", "identity", "sigmoid")
NUM_ACTIVATIONS = len(ACTIVATIONS)


class RNNArch(NamedTuple):
  """A recurrent cell: `prev_N` (node 0's entry is -1) and `act_N`, both int32."""

  prev_N: np.ndarray | jax.Array
  act_N: np.ndarray | jax.Array

  @property
  def num_nodes(self) -> int:
    return int(np.shape(self.act_N)[0])


def make_arch(prev: Sequence[int], act: Sequence[int]) -> RNNArch:
  """Builds and validates an architecture from plain sequences (prev[0] may be given as -1)."""
  arch = RNNArch(np.asarray(prev, np.int32), np.asarray(act, np.int32))
  validate(arch)
  return arch


# A cell needs an edge to search: node 0 and a node after it (a one-node cell failed deep in
# the weights' code with "Need at least one array to stack").
MIN_NODES = 2
# The search's programs hold every (node, prev) edge, N (N - 1) / 2 of them, and compiling them
# grows faster than that: on 2 CPU cores (23 GiB) the tiny quickstart's search compiled in 26 s
# and 1.3 GiB at 12 nodes, 114 s and 3.7 GiB at 32, about 7 min and 11 GiB at 48; at 64 it was
# killed for memory (24 GiB) after 15 min, still compiling.
MAX_NODES = 48
CELL_SIZE_RULE = ("a cell of this space has 2 to 48 nodes (node 0, which reads x_t and "
                  "h_(t-1), and nodes after it, each with a chosen input and activation; past 48, "
                  "compiling the search's programs over the N (N - 1) / 2 edges took more than "
                  "15 minutes and 24 GiB)")


def check_node_count(num_nodes: int, field: str, cell: str = "") -> None:
  """A UserError naming config `field` unless `num_nodes` is in [MIN_NODES, MAX_NODES] (`cell`:
  words on the cell before the rule)."""
  if not MIN_NODES <= num_nodes <= MAX_NODES:
    raise UserError(f"Config field `{field}` is {num_nodes}; {cell}{CELL_SIZE_RULE}. Fix it in "
                    f"the config file or the --config.{field} override.")


def validate(arch: RNNArch, num_nodes: int | None = None, where: str = "architecture") -> None:
  """Raises a UserError naming the node at fault if `arch` is not a valid cell."""
  prev = np.asarray(arch.prev_N)
  act = np.asarray(arch.act_N)
  if prev.ndim != 1 or act.ndim != 1 or prev.shape != act.shape or prev.shape[0] < 1:
    raise UserError(
        f"The {where} must be two 1-D arrays (prev, activation) of the same length >= 1; got "
        f"shapes {prev.shape} and {act.shape}.")
  n = prev.shape[0]
  if n < MIN_NODES:
    raise UserError(f"The {where} has 1 node; {CELL_SIZE_RULE}.")
  if num_nodes is not None and n != num_nodes:
    raise UserError(
        f"The {where} has {n} nodes but the search space has {num_nodes} (field "
        f"`model.num_nodes`). Use an architecture of this search space or change the field.")
  if prev[0] != -1:
    raise UserError(f"In the {where}, node 0 reads x_t and h_(t-1); its prev must be -1, not "
                    f"{prev[0]}.")
  for k in range(1, n):
    if not 0 <= prev[k] < k:
      raise UserError(
          f"In the {where}, node {k} reads node {prev[k]}, but a node may only read an earlier "
          f"node (0..{k - 1}).")
  for k in range(n):
    if not 0 <= act[k] < NUM_ACTIVATIONS:
      raise UserError(
          f"In the {where}, node {k} has activation id {act[k]}; ids are 0..{NUM_ACTIVATIONS - 1} "
          f"({', '.join(ACTIVATIONS)}).")


def random_arch(key: jax.Array, num_nodes: int) -> RNNArch:
  """Samples a cell uniformly: each prev among earlier nodes, each activation among all.

  Works under `jit` and `vmap` (the result is traced int32 arrays).
  """
  k_prev, k_act = jax.random.split(key)
  upper_N = jnp.arange(num_nodes)  # node k chooses in [0, k)
  u_N = jax.random.uniform(k_prev, (num_nodes,))
  prev_N = jnp.floor(u_N * upper_N).astype(jnp.int32)
  prev_N = prev_N.at[0].set(-1)
  act_N = jax.random.randint(k_act, (num_nodes,), 0, NUM_ACTIVATIONS, dtype=jnp.int32)
  return RNNArch(prev_N, act_N)


def loose_ends_mask(prev_N: jax.Array | np.ndarray) -> jax.Array | np.ndarray:
  """float32[N]: 1 for nodes that no other node reads (the cell's default output); NumPy in,
  NumPy out (the host's records and pictures compile nothing)."""
  xp = jnp if isinstance(prev_N, jax.Array) else np
  prev_N = xp.asarray(prev_N)
  n = prev_N.shape[0]
  read_NxN = prev_N[1:, None] == xp.arange(n)[None, :]
  return 1.0 - xp.any(read_NxN, axis=0).astype(xp.float32)


def decisions(num_nodes: int) -> tuple[Decision, ...]:
  """The controller's decision sequence: node 0's activation, then (prev, activation) per node."""
  out = [Decision("node0.act", NUM_ACTIVATIONS, "op", 0)]
  for k in range(1, num_nodes):
    out.append(Decision(f"node{k}.prev", k, "pointer", k))
    out.append(Decision(f"node{k}.act", NUM_ACTIVATIONS, "op", k))
  return tuple(out)


def from_decisions(values_D: jax.Array | np.ndarray) -> RNNArch:
  """Maps the controller's decision values (in `decisions` order) to an architecture
  (traceable; NumPy in, NumPy out)."""
  xp = jnp if isinstance(values_D, jax.Array) else np
  values_D = xp.asarray(values_D)
  prev_N = xp.concatenate([xp.full((1,), -1, xp.int32), values_D[1::2].astype(xp.int32)])
  act_N = xp.concatenate([values_D[:1], values_D[2::2]]).astype(xp.int32)
  return RNNArch(prev_N, act_N)


def to_decisions(arch: RNNArch) -> np.ndarray:
  """The inverse of `from_decisions` (host side)."""
  prev_N, act_N = np.asarray(arch.prev_N), np.asarray(arch.act_N)
  values = np.zeros((2 * act_N.shape[0] - 1,), np.int32)
  values[0] = act_N[0]
  values[1::2] = prev_N[1:]
  values[2::2] = act_N[1:]
  return values
