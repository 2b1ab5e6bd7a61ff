"""Data parallelism over every device of the run with `jax.sharding` (one host or several).

A one-axis mesh ("data") over `jax.devices()`: each batch is split along its batch axis across the
devices; weights, optimiser and controller states, the PRNG key and the metric sums are
replicated. The jitted phase functions are the same as on one device: XLA partitions them from
the shardings of their inputs (the gradient all-reduce included), and the sampled architecture,
drawn inside the step from the replicated controller and key, is the same on every device, so
`lax.switch` still selects one branch. Every call gets its inputs placed the same way
(`place_replicated`, `place_batch`), so each step function still compiles once.

Several hosts: set `parallel.distributed=True` and start the same command on every host with the
coordinator's address, the process count and each host's id (see the README; detected on TPU
pods, Slurm and Open MPI); `jax.distributed.initialize` then makes `jax.devices()` span all
hosts. Every host reads the same data in the same order (data order is a pure function
of the seed), and `place_batch` hands each device its slice of the global batch.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from enas_jax.io.errors import UserError

AXIS = "data"


@dataclasses.dataclass(frozen=True)
class ParallelConfig:
  """The `parallel` section (see configs/ptb_rnn.py for comments)."""

  data_parallel: bool = False
  distributed: bool = False
  coordinator_address: str = ""
  num_processes: int = 0
  process_id: int = -1


class DataParallel:
  """The mesh and the placement of a run's arrays on it."""

  def __init__(self, cfg: ParallelConfig, batch_sizes: Mapping[str, int]):
    if cfg.distributed:  # empty fields: detected (TPU pods, Slurm, Open MPI)
      jax.distributed.initialize(cfg.coordinator_address or None, cfg.num_processes or None,
                                 cfg.process_id if cfg.process_id >= 0 else None)
    devices = jax.devices()
    for field, size in batch_sizes.items():
      if size % len(devices):
        raise UserError(f"Config field `{field}` is {size}, which does not split over the "
                        f"{len(devices)} devices of the run (`parallel.data_parallel=True`). Use "
                        f"a multiple of {len(devices)} or turn data parallelism off.")
    self.mesh = Mesh(np.asarray(devices), (AXIS,))
    self.replicated = NamedSharding(self.mesh, PartitionSpec())
    self.split = NamedSharding(self.mesh, PartitionSpec(AXIS))

  @property
  def num_devices(self) -> int:
    return self.mesh.size

  def place_replicated(self, tree: Any) -> Any:
    """Every leaf on every device (a no-op for leaves already placed so)."""
    return jax.tree_util.tree_map(lambda x: _put(x, self.replicated), tree)

  def place_batch(self, batch: Mapping[str, Any], split_keys: Iterable[str]) -> dict[str, Any]:
    """The entries named in `split_keys` split along their first (batch) axis; the rest
    replicated."""
    split_keys = set(split_keys)
    return {k: _put(v, self.split if k in split_keys else self.replicated)
            for k, v in batch.items()}


def _put(x: Any, sharding: NamedSharding) -> jax.Array:
  if isinstance(x, jax.Array) and x.sharding == sharding:
    return x
  if jax.process_count() == 1:
    return jax.device_put(x, sharding)
  if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
    return jax.random.wrap_key_data(_put(jax.random.key_data(x), sharding),
                                    impl=jax.random.key_impl(x))
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    return jax.device_put(x, sharding)
  host = np.asarray(x)  # every host holds the same global value: each device takes its slice
  return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])
