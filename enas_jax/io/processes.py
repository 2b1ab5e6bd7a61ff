"""Which process of a multi-host run writes files, and the few host-side agreements between
processes. On one host (every single-process run) these are trivial: process 0 writes, and a
value agreed on is the value itself."""
from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

from enas_jax.io.errors import UserError


def check_backend() -> None:
  """A UserError naming JAX_PLATFORMS and the fix when JAX cannot start the backend it is asked
  for (`JAX_PLATFORMS=cuda` where JAX's CUDA build is not installed or sees no GPU: an
  AssertionError or RuntimeError traceback inside JAX at the first array). After
  `parallel.start_processes` in a multi-host run."""
  try:
    jax.devices()
  except (RuntimeError, AssertionError) as err:
    asked = os.environ.get("JAX_PLATFORMS", "")
    why = " ".join(str(err).split())[:300] or f"no installed backend is one of {asked!r}"
    raise UserError(
        f"JAX cannot start its backend (JAX_PLATFORMS={asked!r}): {why}. For a GPU, install "
        f"JAX's CUDA build in this environment (pip install -U \"jax[cuda12]\") and check that "
        f"nvidia-smi lists the GPU; to run on the CPU, set JAX_PLATFORMS=cpu or unset it."
    ) from None


def is_primary() -> bool:
  """Whether this process writes the run's files (process 0; the only one on one host)."""
  return jax.process_index() == 0


def gather(value: int) -> list[int]:
  """Every process's `value`, in process order (`[value]` on one host)."""
  if jax.process_count() == 1:
    return [value]
  return [int(v) for v in multihost_utils.process_allgather(np.int64(value))]


def agree_max(value: int) -> int:
  """The largest of every process's `value` (`value` itself on one host): a host-side decision
  all processes must take together, such as stopping after a signal only some received."""
  return max(gather(value))


def sync(name: str) -> None:
  """Waits until every process reaches this point (no-op on one host)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


def host_copy(x: Any) -> np.ndarray:
  """`x`'s whole value as a NumPy array on this host, also for an array spread over several
  processes' devices (every process must call this for the same arrays, in the same order)."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    if x.is_fully_replicated:
      return np.asarray(x.addressable_data(0))
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(x)
