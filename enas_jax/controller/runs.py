"""Runs of consecutive nodes whose decisions look alike (the controller scans over each run),
and the traced window of rows a pointer scores."""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from enas_jax.spaces.decisions import Decision


def segments(decisions: tuple[Decision, ...]) -> list[tuple[int, int, int]]:
  """(first decision, decisions per node, nodes) for each run of consecutive nodes whose
  decisions have the same kinds, sizes and fixed settings (pointers' sizes may differ: padded);
  nodes with skip bits stay single."""
  nodes: list[list[int]] = []
  for i, d in enumerate(decisions):
    if nodes and decisions[nodes[-1][0]].node == d.node:
      nodes[-1].append(i)
    else:
      nodes.append([i])

  def signature(ids: list[int]) -> tuple:
    if any(decisions[i].kind == "skip" for i in ids):
      return ("single", ids[0])
    return tuple((decisions[i].kind, None if decisions[i].kind == "pointer"
                  else decisions[i].num_choices, decisions[i].feed_anchor, decisions[i].prior)
                 for i in ids)

  segments: list[tuple[int, int, int]] = []
  for before, ids in zip([None] + nodes, nodes):
    if before is not None and signature(before) == signature(ids):
      first_i, block, blocks = segments[-1]
      segments[-1] = (first_i, block, blocks + 1)
    else:
      segments.append((ids[0], len(ids), 1))
  return segments


def window(x_NxK: jax.Array, first: Any, width: int) -> jax.Array:
  """Rows first..first+width-1 of x (zeros past its end); `first` may be traced."""
  if isinstance(first, int):
    return x_NxK[first:first + width]
  pad = jnp.zeros((width,) + x_NxK.shape[1:], x_NxK.dtype)
  return jax.lax.dynamic_slice_in_dim(jnp.concatenate([x_NxK, pad]), first, width)
