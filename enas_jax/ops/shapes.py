"""Arrays as shapes, for compiling a program ahead of its first call."""
from __future__ import annotations

from typing import Any

import jax
import numpy as np


def abstract(tree: Any) -> Any:
  """`tree`'s arrays as `jax.ShapeDtypeStruct`s, those committed to a placement with it (a
  program lowered for these shapes is the one a call with the arrays themselves compiles);
  shapes stay as they are, NumPy arrays and scalars become their shapes."""
  def one(x: Any) -> Any:
    if isinstance(x, jax.ShapeDtypeStruct):
      return x
    if isinstance(x, jax.Array):
      return jax.ShapeDtypeStruct(x.shape, x.dtype, weak_type=x.aval.weak_type,
                                  sharding=x.sharding if x.committed else None)
    x = np.asarray(x)
    return jax.ShapeDtypeStruct(x.shape, x.dtype)
  return jax.tree_util.tree_map(one, tree)


def zeros(shapes: Any) -> Any:
  """Zero arrays of `shapes` (a tree of `jax.ShapeDtypeStruct`s): a phase's fresh metric sums."""
  return jax.tree_util.tree_map(lambda s: jax.numpy.zeros(s.shape, s.dtype), shapes)


def int32_shapes(tree: Any) -> Any:
  """`tree`'s shapes as int32 (an architecture as the evaluations convert it)."""
  return jax.tree_util.tree_map(lambda s: jax.ShapeDtypeStruct(np.shape(s), np.int32), tree)
