"""Type aliases for the pure jitted functions, shared by every layer."""
from __future__ import annotations

from typing import Any, Callable, Mapping

import jax

Batch = Mapping[str, Any]  # named arrays of one batch (tokens and targets, images and labels)
Metrics = dict[str, jax.Array]  # named scalars of one step (or their sums)
# (params, batch_stats, batch, values_SxD) -> (reward_S, named per-sample figures)
ScoreFn = Callable[[Any, Any, Batch, jax.Array], tuple[jax.Array, Metrics]]

