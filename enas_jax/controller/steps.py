"""The controller's side of any search, as pure functions.

A search space's loop supplies `score_S(params, batch_stats, batch, values_SxD) -> (reward_S,
figures)`: the reward of each sampled architecture on one validation batch under the shared
weights (computed with `lax.map`, one architecture at a time, so `lax.switch` branches stay real
branches instead of a vmapped select of all of them) and named per-sample figures to log
(perplexity, accuracy, skip rate).

- `update(ctrl_state, values_SxD, reward_S, figures, key)`: one REINFORCE step on sampled
  architectures and their rewards (plus the entropy bonus, and the skip-rate KL penalty of
  spaces with skip bits), scoring the sampled values again for the gradient;
- `controller_step(ctrl_state, params, batch_stats, batch, key)`: sample, `score_S`, update, as
  one function (the search compiles the three as separate programs: `run.program`).
"""
from __future__ import annotations

from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import optax

from enas_jax.controller import policy as ctl
from enas_jax.controller import reinforce

from enas_jax.types import ScoreFn


class ControllerState(flax.struct.PyTreeNode):
  """Controller parameters, Adam state and the moving-average reward baseline."""

  params: Any
  opt_state: optax.OptState
  baseline: jax.Array
  baseline_ready: jax.Array  # False until the first update sets the baseline to its reward
  step: jax.Array


def make_controller_optimizer(cfg: ctl.ControllerConfig) -> optax.GradientTransformation:
  adam = optax.adam(cfg.lr)
  return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), adam) if cfg.grad_clip > 0 else adam


def init_controller_state(controller: ctl.Controller, optimizer: optax.GradientTransformation,
                          key: jax.Array) -> ControllerState:
  params = ctl.init_controller(controller, key)
  return ControllerState(params=params, opt_state=optimizer.init(params),
                         baseline=jnp.zeros(()), baseline_ready=jnp.zeros((), bool),
                         step=jnp.zeros((), jnp.int32))


def make_controller_update(controller: ctl.Controller, cfg: ctl.ControllerConfig,
                           ctrl_optimizer: optax.GradientTransformation) -> Callable[..., Any]:
  """The pure `update(state, values_SxD, reward_S, figures, key) -> (state, metrics)`: one
  REINFORCE step on sampled architectures and their rewards (plus the entropy bonus, and the
  skip-rate KL penalty of spaces with skip bits). `key` is unused (the guard's signature)."""

  def update(state: ControllerState, values_SxD: jax.Array, reward_S: jax.Array,
             figures: dict[str, jax.Array], key: jax.Array):
    del key
    entropy_weight = ctl.entropy_weight_at(cfg, state.step)

    def loss_fn(p):
      sample = ctl.score_many(controller, p, values_SxD, state.step)
      rewarded_S = (jax.lax.stop_gradient(reward_S)
                    + entropy_weight * jax.lax.stop_gradient(sample.entropy))
      mean_reward = jnp.mean(rewarded_S)
      adv_mean, new_baseline = reinforce.advantage_and_baseline(
          mean_reward, state.baseline, state.baseline_ready, cfg.baseline_decay)
      adv_S = rewarded_S - (mean_reward - adv_mean)  # each sample against the same baseline
      skip_kl = jnp.mean(sample.skip_kl)
      loss = reinforce.policy_loss(sample.log_prob, adv_S) + cfg.skip_weight * skip_kl
      return loss, (new_baseline, adv_S, rewarded_S, sample.entropy, skip_kl)

    (loss, (baseline, adv_S, rewarded_S, ent_S, skip_kl)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state.params)
    if cfg.kind == "random":  # the uniform baseline never learns
      grads = jax.tree_util.tree_map(jnp.zeros_like, grads)
    updates, opt_state = ctrl_optimizer.update(grads, state.opt_state, state.params)
    params_new = optax.apply_updates(state.params, updates)
    new_state = state.replace(params=params_new, opt_state=opt_state, baseline=baseline,
                              baseline_ready=jnp.ones((), bool), step=state.step + 1)
    metrics = {"controller_loss": loss, "reward": jnp.mean(rewarded_S), "baseline": baseline,
               "advantage": jnp.mean(adv_S), "entropy": jnp.mean(ent_S),
               "entropy_weight": entropy_weight,
               **{name: jnp.mean(v) for name, v in figures.items()}}
    if any(d.kind == "skip" for d in controller.decisions):
      metrics["skip_kl"] = skip_kl
    return new_state, metrics

  return update


def make_controller_step(controller: ctl.Controller, cfg: ctl.ControllerConfig,
                         ctrl_optimizer: optax.GradientTransformation,
                         score_S: ScoreFn) -> Callable[..., Any]:
  """The pure `controller_step(state, params, batch_stats, batch, key) -> (state, metrics)`:
  sample `num_samples` architectures, reward them, update. The search runs the three parts as
  separate programs (`run.program`), with the same values."""
  update = make_controller_update(controller, cfg, ctrl_optimizer)

  def controller_step(state: ControllerState, params: Any, batch_stats: Any, batch: Any,
                      key: jax.Array):
    values_SxD = ctl.sample_many(controller, state.params, key, cfg.num_samples,
                                 state.step).values
    reward_S, figures = score_S(params, batch_stats, batch, values_SxD)
    return update(state, values_SxD, reward_S, figures, key)

  return controller_step
