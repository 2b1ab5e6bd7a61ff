"""The two phases of the recurrent-cell search as pure functions (one `jax.jit` each).

- `shared_step(lm_state, ctrl_params, batch, key)`: samples an architecture from the controller
  and trains the shared weights on it: no host round-trip per step.
- `controller_step(ctrl_state, params, batch_stats, batch, key)`: samples `num_samples`
  architectures, scores each on the validation batch under the shared weights (`lax.map`, so the
  cell's `lax.switch` branches stay real branches rather than a vmapped select of all of them),
  and takes one REINFORCE step.
- `derive_step(ctrl_params, params, batch_stats, batch, key)`: samples many architectures and
  scores each on one validation batch; the loop keeps the best.
The architecture is sampled inside from the step's key (`fold_in` by the caller), so each phase
compiles once for the whole search.
"""
from __future__ import annotations

from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import optax

from enas_jax import controller as ctl
from enas_jax import reinforce
from enas_jax.loops.lm_steps import Batch, LMState
from enas_jax.spaces.rnn.arch import from_decisions


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


def batch_perplexities(lm_eval_step: Callable[..., Any], params: Any, batch_stats: Any,
                       batch: Batch, values_SxD: jax.Array, hidden_dim: int) -> jax.Array:
  """Perplexity of each architecture on one batch (zero initial state), one at a time."""
  hidden = jnp.zeros((batch["inputs"].shape[0], hidden_dim), jnp.float32)

  def ppl_of(values_D):
    nll_sum, count, _ = lm_eval_step(params, batch_stats, batch, hidden, from_decisions(values_D))
    return jnp.exp(nll_sum / jnp.maximum(count, 1.0))

  return jax.lax.map(ppl_of, values_SxD)


def make_derive_step(controller: ctl.Controller, lm_eval_step: Callable[..., Any],
                     hidden_dim: int, num_samples: int) -> Callable[..., Any]:
  """Returns the pure `derive_step(ctrl_params, params, batch_stats, batch, key)
  -> (values_SxD, ppl_S)`: sample `num_samples` architectures and score each on the batch."""

  def derive_step(ctrl_params: Any, params: Any, batch_stats: Any, batch: Batch, key: jax.Array):
    values_SxD, _, _ = ctl.sample_many(controller, ctrl_params, key, num_samples)
    return values_SxD, batch_perplexities(lm_eval_step, params, batch_stats, batch, values_SxD,
                                          hidden_dim)

  return derive_step


def make_search_steps(controller: ctl.Controller, cfg: ctl.ControllerConfig,
                      ctrl_optimizer: optax.GradientTransformation,
                      lm_train_step: Callable[..., Any], lm_eval_step: Callable[..., Any],
                      hidden_dim: int) -> tuple[Callable[..., Any], Callable[..., Any]]:
  """Returns the pure (shared_step, controller_step); `lm_*_step` come from `make_lm_steps`."""

  def shared_step(state: LMState, ctrl_params: Any, batch: Batch, key: jax.Array):
    values, _, _ = ctl.sample(controller, ctrl_params, jax.random.fold_in(key, 0))
    state, metrics = lm_train_step(state, batch, from_decisions(values),
                                   jax.random.fold_in(key, 1))
    return state, metrics

  def controller_step(state: ControllerState, params: Any, batch_stats: Any, batch: Batch,
                      key: jax.Array):
    def loss_fn(p):
      values_SxD, logp_S, ent_S = ctl.sample_many(controller, p, key, cfg.num_samples)
      ppl_S = jax.lax.stop_gradient(
          batch_perplexities(lm_eval_step, params, batch_stats, batch, values_SxD, hidden_dim))
      reward_S = (reinforce.reward_from_ppl(ppl_S, cfg.reward_c, cfg.reward)
                  + cfg.entropy_weight * jax.lax.stop_gradient(ent_S))
      mean_reward = jnp.mean(reward_S)
      adv_mean, new_baseline = reinforce.advantage_and_baseline(
          mean_reward, state.baseline, state.baseline_ready, cfg.baseline_decay)
      adv_S = reward_S - (mean_reward - adv_mean)  # each sample against the same baseline
      loss = reinforce.policy_loss(logp_S, adv_S)
      return loss, (new_baseline, adv_S, reward_S, ppl_S, ent_S)

    (loss, (baseline, adv_S, reward_S, ppl_S, ent_S)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state.params)
    if cfg.kind == "random":  # the uniform baseline never learns
      grads = jax.tree_util.tree_map(jnp.zeros_like, grads)
    updates, opt_state = ctrl_optimizer.update(grads, state.opt_state, state.params)
    params_new = optax.apply_updates(state.params, updates)
    new_state = state.replace(params=params_new, opt_state=opt_state, baseline=baseline,
                              baseline_ready=jnp.ones((), bool), step=state.step + 1)
    metrics = {"controller_loss": loss, "reward": jnp.mean(reward_S), "baseline": baseline,
               "advantage": jnp.mean(adv_S), "valid_ppl": jnp.mean(ppl_S),
               "entropy": jnp.mean(ent_S)}
    return new_state, metrics

  return shared_step, controller_step
