"""Type aliases and protocols for the pure jitted functions, shared by every layer."""
from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol

import jax

Batch = Mapping[str, Any]  # named arrays of one batch (tokens and targets, images and labels)
Metrics = dict[str, jax.Array]  # named scalars of one step (or their sums)
# (params, batch_stats, batch, values_SxD) -> (reward_S, named per-sample figures)
ScoreFn = Callable[[Any, Any, Batch, jax.Array], tuple[jax.Array, Metrics]]


class SharedStep(Protocol):
  """`(model_state, ctrl_params, batch, key, sums) -> (model_state, sums)`, guarded and jitted."""

  def __call__(self, model: Any, ctrl_params: Any, batch: Batch, key: jax.Array, sums: Metrics
               ) -> tuple[Any, Metrics]: ...


class ControllerStep(Protocol):
  """`(ctrl_state, params, batch_stats, batch, key, sums) -> (ctrl_state, sums)`, jitted."""

  def __call__(self, ctrl: Any, params: Any, batch_stats: Any, batch: Batch, key: jax.Array,
               sums: Metrics) -> tuple[Any, Metrics]: ...


class DeriveStep(Protocol):
  """`(ctrl_params, params, batch_stats, batch, key) -> (values_SxD, reward_S, figures)`."""

  def __call__(self, ctrl_params: Any, params: Any, batch_stats: Any, batch: Batch,
               key: jax.Array) -> tuple[jax.Array, jax.Array, Metrics]: ...
