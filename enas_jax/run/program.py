"""The compiled search program: the controller and the jitted phase functions of any (space,
task), each compiled once for the whole search.

- shared step: sample an architecture from the controller inside the step and train the shared
  weights on it (the task's step): no host round-trip per step;
- controller step and derive step: `controller.steps` with the task's score.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from enas_jax.controller import policy as ctl
from enas_jax.controller import steps as controller_steps
from enas_jax.ops import guards
from enas_jax.spaces.base import SearchSpace
from enas_jax.tasks.base import SearchTask
from enas_jax.types import ControllerStep, DeriveStep, SharedStep


@dataclasses.dataclass(frozen=True)
class SearchProgram:
  """The controller, its optimizer and the jitted phase functions."""

  controller: ctl.Controller
  ctrl_optimizer: optax.GradientTransformation
  shared_step: SharedStep
  controller_step: ControllerStep
  derive_step: DeriveStep
  warmup_shared_step: SharedStep | None  # the shared step with uniform sampling (warm-up)
  shared_metric_shapes: Callable[..., Any]  # shared_step's arguments less sums -> sums' shapes
  controller_metric_shapes: Callable[..., Any]  # likewise for controller_step


def metric_shapes(step: Callable[..., Any]) -> Callable[..., Any]:
  """A function of `step`'s arguments (less the sums) giving its guarded metric sums' shapes."""
  def shapes(*args):
    metrics = jax.eval_shape(step, *args)[1]
    f32 = jax.ShapeDtypeStruct((), jnp.float32)
    return {**metrics, "ok_steps": f32, "steps": f32}
  return shapes


def sampled_train_step(controller: ctl.Controller, from_decisions: Callable[[Any], Any],
                       train_step: Callable[..., Any]) -> Callable[..., Any]:
  """The pure shared step `(state, ctrl_params, batch, key) -> (state, metrics)`: samples an
  architecture from the controller (key folded with 0) and trains on it (key folded with 1)."""
  def shared_step(state, ctrl_params, batch, key):
    values = ctl.sample(controller, ctrl_params, jax.random.fold_in(key, 0)).values
    return train_step(state, batch, from_decisions(values), jax.random.fold_in(key, 1))
  return shared_step


def build_program(space: SearchSpace, task: SearchTask, model_cfg: Any,
                  ctrl_cfg: ctl.ControllerConfig, derive_samples: int,
                  warmup: bool = False) -> SearchProgram:
  """`warmup`: also compile the shared step that samples uniformly (the uniform controller
  takes the same parameters and ignores them), for the search's warm-up epochs."""
  controller = ctl.Controller(space.decisions(model_cfg), ctrl_cfg)
  ctrl_opt = controller_steps.make_controller_optimizer(ctrl_cfg)
  shared_step = sampled_train_step(controller, space.from_decisions, task.train_step)
  warmup_step = None
  if warmup:
    uniform = ctl.Controller(space.decisions(model_cfg),
                             dataclasses.replace(ctrl_cfg, kind="random"))
    warmup_step = jax.jit(guards.guarded(
        sampled_train_step(uniform, space.from_decisions, task.train_step), "loss"),
        donate_argnums=(0, 4))
  score_S = task.score()
  controller_step = controller_steps.make_controller_step(controller, ctrl_cfg, ctrl_opt, score_S)
  derive_step = controller_steps.make_derive_step(controller, score_S, derive_samples)
  return SearchProgram(
      controller=controller, ctrl_optimizer=ctrl_opt,
      shared_step=jax.jit(guards.guarded(shared_step, "loss"), donate_argnums=(0, 4)),
      controller_step=jax.jit(guards.guarded(controller_step, "controller_loss"),
                              donate_argnums=(0, 5)),
      derive_step=jax.jit(derive_step),
      warmup_shared_step=warmup_step,
      shared_metric_shapes=metric_shapes(shared_step),
      controller_metric_shapes=metric_shapes(controller_step))
