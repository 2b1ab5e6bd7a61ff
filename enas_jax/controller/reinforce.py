"""REINFORCE for the controller: reward, moving-average baseline, policy-gradient loss.

All pure functions of arrays, following ENAS: the entropy bonus is added to the reward,
advantage = reward - baseline (the baseline before this update), the baseline then moves as
b <- decay * b + (1 - decay) * reward, and the loss is -log_prob * advantage (advantage held
constant). The first update initialises the baseline to its reward (ENAS-pytorch does the same).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def reward_from_ppl(ppl: jax.Array, c: float, kind: str = "inverse_ppl") -> jax.Array:
  """c / ppl, or c / ppl**2 for kind "inverse_ppl_squared"."""
  if kind == "inverse_ppl":
    return c / ppl
  if kind == "inverse_ppl_squared":
    return c / jnp.square(ppl)
  raise ValueError(f"unknown reward kind {kind!r}")


def advantage_and_baseline(reward: jax.Array, baseline: jax.Array, initialized: jax.Array,
                           decay: float) -> tuple[jax.Array, jax.Array]:
  """(advantage, new baseline) for the mean reward of one update."""
  old = jnp.where(initialized, baseline, reward)
  return reward - old, decay * old + (1.0 - decay) * reward


def policy_loss(log_prob_S: jax.Array, advantage_S: jax.Array) -> jax.Array:
  """Mean over samples of -log_prob * advantage, no gradient through the advantage."""
  return -jnp.mean(log_prob_S * jax.lax.stop_gradient(advantage_S))
