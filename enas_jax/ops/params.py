"""Arithmetic over parameter pytrees and optimizer states: how many parameters, their L2
penalty, and the learning rate held in an optimizer state."""
from __future__ import annotations

from typing import Any, Collection

import jax
import jax.numpy as jnp
import numpy as np
import optax


def count_params(params: Any, leave_out: Collection[str] = ()) -> int:
  """Number of scalars in `params`, less the top-level entries named in `leave_out` (the
  auxiliary head, which the papers' counts leave out)."""
  if leave_out:
    params = {k: v for k, v in params.items() if k not in leave_out}
  return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(params)))


def l2_penalty(params: Any) -> jax.Array:
  """Sum of squares of every leaf (the authors' `l2_reg * sum(w ** 2)`)."""
  return sum(jnp.sum(jnp.square(x)) for x in jax.tree_util.tree_leaves(params))


def set_learning_rate(opt_state: optax.OptState, lr: float) -> optax.OptState:
  """A copy of `opt_state` (of an `optax.inject_hyperparams` optimizer, alone or last in a
  chain) with its learning rate replaced: no recompilation."""
  def replace(inner):
    return inner._replace(hyperparams={**inner.hyperparams,
                                       "learning_rate": jnp.asarray(lr, jnp.float32)})
  if isinstance(opt_state, tuple) and not hasattr(opt_state, "hyperparams"):
    return (*opt_state[:-1], replace(opt_state[-1]))
  return replace(opt_state)
