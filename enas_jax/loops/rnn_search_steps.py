"""The recurrent-cell search's phases as pure functions (one `jax.jit` each).

- `shared_step(lm_state, ctrl_params, batch, key)`: samples an architecture from the controller
  and trains the shared weights on it: no host round-trip per step.
- `controller_step` and `derive_step`: `loops.controller_steps` with the reward `c / ppl` of each
  sampled cell on one validation window (zero initial state).
The architecture is sampled inside from the step's key (`fold_in` by the caller), so each phase
compiles once for the whole search.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from enas_jax import controller as ctl
from enas_jax import reinforce
from enas_jax.loops import controller_steps
from enas_jax.loops.lm_steps import Batch, LMState
from enas_jax.spaces.rnn.arch import from_decisions


def batch_perplexities(lm_eval_step: Callable[..., Any], params: Any, batch_stats: Any,
                       batch: Batch, values_SxD: jax.Array, hidden_dim: int) -> jax.Array:
  """Perplexity of each architecture on one batch (zero initial state), one at a time."""
  hidden = jnp.zeros((batch["inputs"].shape[0], hidden_dim), jnp.float32)

  def ppl_of(values_D):
    nll_sum, count, _ = lm_eval_step(params, batch_stats, batch, hidden, from_decisions(values_D))
    return jnp.exp(nll_sum / jnp.maximum(count, 1.0))

  return jax.lax.map(ppl_of, values_SxD)


def make_score(cfg: ctl.ControllerConfig, lm_eval_step: Callable[..., Any],
               hidden_dim: int) -> controller_steps.ScoreFn:
  """Reward `reward_c / ppl` (or its square) per sampled cell; figure `valid_ppl`."""

  def score_S(params, batch_stats, batch, values_SxD):
    ppl_S = batch_perplexities(lm_eval_step, params, batch_stats, batch, values_SxD, hidden_dim)
    return reinforce.reward_from_ppl(ppl_S, cfg.reward_c, cfg.reward), {"valid_ppl": ppl_S}

  return score_S


def make_search_steps(controller: ctl.Controller, cfg: ctl.ControllerConfig,
                      ctrl_optimizer: optax.GradientTransformation,
                      lm_train_step: Callable[..., Any], lm_eval_step: Callable[..., Any],
                      hidden_dim: int, derive_samples: int
                      ) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
  """Returns the pure (shared_step, controller_step, derive_step); `lm_*_step` come from
  `make_lm_steps`."""

  def shared_step(state: LMState, ctrl_params: Any, batch: Batch, key: jax.Array):
    values = ctl.sample(controller, ctrl_params, jax.random.fold_in(key, 0)).values
    return lm_train_step(state, batch, from_decisions(values), jax.random.fold_in(key, 1))

  score_S = make_score(cfg, lm_eval_step, hidden_dim)
  return (shared_step,
          controller_steps.make_controller_step(controller, cfg, ctrl_optimizer, score_S),
          controller_steps.make_derive_step(controller, score_S, derive_samples))
