"""NaN/Inf never reaches the weights: steps that keep the old state when the new one is not
finite, and count it, so the host can apply the divergence policy at its next record."""
from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from enas_jax.io.checkpoints import tree_finite


def guarded(step: Any, loss_name: str) -> Any:
  """`step(state, *args, key) -> (state, metrics)` made to keep the old state (its counter
  advanced) when the loss or anything in the new state (weights, optimizer state, carried hidden
  state, baseline) is not finite. The returned function takes `(state, *args, key, sums)`, folds
  the step counter into `key`, and adds the metrics to `sums`; `ok_steps` counts finite steps."""

  def guarded(state, *args):
    *step_args, key, sums = args
    new, m = step(state, *step_args, jax.random.fold_in(key, state.step))
    ok = jnp.isfinite(m[loss_name]) & tree_finite(new)
    kept = state.replace(step=state.step + 1)
    # One conditional on the whole state, not an elementwise select per leaf: with `lax.switch`
    # inside the step (the CNN spaces), per-leaf selects made XLA's CPU compile 16x slower.
    new = jax.lax.cond(ok, lambda: new, lambda: kept)
    m = {k: jnp.where(ok, v, jnp.zeros_like(v)) for k, v in m.items()}
    m.update(ok_steps=ok.astype(jnp.float32), steps=jnp.ones((), jnp.float32))
    return new, jax.tree_util.tree_map(jnp.add, sums, m)

  return guarded


def sums_to_record(sums: dict[str, jax.Array]) -> dict[str, float]:
  """Means over the finite steps of `guarded`'s sums, NaN where there were none (no step to
  average: a 0 would read as a perfect loss); perplexity as exp(mean NLL) when there is an NLL
  (not a mean of per-step perplexities); `steps` and `skipped_steps` counted."""
  values = {k: float(v) for k, v in sums.items()}
  ok, steps = values.pop("ok_steps"), values.pop("steps")
  record = {k: v / ok if ok else math.nan for k, v in values.items() if k != "ppl"}
  if "nll" in record:
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging run's mean NLL: inf
      record["ppl"] = float(np.exp(record["nll"]))
  record.update(steps=steps, skipped_steps=steps - ok)
  return record


def every_step_skipped(record: dict[str, float]) -> bool:
  """Whether `sums_to_record`'s record counts steps and every one of them was skipped (so the
  state it covers did not change but for the step counter)."""
  return record["steps"] > 0 and record["skipped_steps"] == record["steps"]
