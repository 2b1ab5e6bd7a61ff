"""Data parallelism over every device of the run with `jax.sharding` (one host or several).

A one-axis mesh ("data") over `jax.devices()`: each batch is split along its batch axis across the
devices; weights, optimiser and controller states, the PRNG key and the metric sums are
replicated. The jitted phase functions are the same as on one device: XLA partitions them from
the shardings of their inputs (the gradient all-reduce included), and the sampled architecture,
drawn from the replicated controller and key and passed replicated, is the same on every device,
so `lax.switch` still selects one branch. Every call gets its inputs placed the same way
(`place_replicated`, `place_batch`), so each step function still compiles once.

Several hosts: set `parallel.distributed=True` and start the same command on every host with the
coordinator's address, the process count and each host's id (see the README; detected on TPU
pods, Slurm and Open MPI). `start_processes`, the first thing a run does, calls
`jax.distributed.initialize`, which makes `jax.devices()` span all hosts. Every host reads the
same data in the same order (data order is a pure function of the seed) and feeds only its own
devices' slice of each global batch (`place_batch`: `jax.make_array_from_callback` asks each
process for its addressable shards only). Every process runs the same loop and takes part in
every collective (steps, checkpoint saves); only process 0 writes the workdir's files
(`io.processes.is_primary`), and checkpoints go through orbax's multi-process saving into the one
shared workdir. Host-side decisions that could differ between processes (a stop signal reaching
one of them) are agreed on (`io.processes.agree_max`) before acting on them, and a failure on one
process (its own user error, a traceback) is posted to the others, which stop too
(`io.processes.watch_peers`).
"""
from __future__ import annotations

import dataclasses
import json
import socket
import time
import zlib
from typing import Any, Callable, Iterable, Mapping

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from enas_jax.io import processes
from enas_jax.io.configuration import require
from enas_jax.io.errors import UserError

AXIS = "data"
# Fields that differ between the processes of one run and between a run and its resumption.
PER_PROCESS_FIELDS = ("parallel.coordinator_address", "parallel.process_id")


@dataclasses.dataclass(frozen=True)
class ParallelConfig:
  """The `parallel` section (see configs/ptb_rnn.py for comments)."""

  data_parallel: bool = False
  distributed: bool = False
  coordinator_address: str = ""
  num_processes: int = 0
  process_id: int = -1
  timeout_s: int = 300

  def validate(self, section: str = "parallel") -> None:
    require(self, section, ">= 0", "num_processes")
    require(self, section, ">= 1", "timeout_s")
    if self.process_id < -1:
      raise UserError(f"Config field `{section}.process_id` is {self.process_id}; give this "
                      f"process's id, 0 to num_processes - 1, or -1 to detect it.")
    if self.num_processes and self.process_id >= self.num_processes:
      raise UserError(f"Config field `{section}.process_id` is {self.process_id}, but "
                      f"`{section}.num_processes` is {self.num_processes}: ids run from 0 to "
                      f"{self.num_processes - 1}.")
    if self.distributed and not self.data_parallel:
      raise UserError(f"Config field `{section}.distributed` is True but "
                      f"`{section}.data_parallel` is False: several processes share a run only "
                      f"by splitting its batches. Add --config.{section}.data_parallel=True.")


def start_processes(cfg: ParallelConfig) -> None:
  """Joins the run's processes (`parallel.distributed`; a no-op otherwise or when already
  joined). Must come before anything else touches JAX: the backend then spans every host.

  A coordinator address that cannot work (its port taken on process 0, nothing listening there
  for the others within `parallel.timeout_s`) is a UserError before JAX is asked: JAX ends the
  process with a C++ abort when its own connection times out. A process that never joins still
  ends that way, after `parallel.timeout_s`. Then JAX's backend must start
  (`io.processes.check_backend`)."""
  if cfg.distributed and not jax.distributed.is_initialized():
    _join(cfg)
    processes.watch_peers()
  processes.check_backend()


def _join(cfg: ParallelConfig) -> None:
  if cfg.coordinator_address:
    _probe_coordinator(cfg)
  # JAX's preemption service would install its own SIGTERM handler, which only notes the signal:
  # one reaching a process between here and the run's loop was swallowed and the run went on to
  # its end. The run's own handlers stop every process together (`io.processes.agree_max`).
  jax.config.update("jax_enable_preemption_service", False)
  try:  # empty fields: detected (TPU pods, Slurm, Open MPI)
    jax.distributed.initialize(cfg.coordinator_address or None, cfg.num_processes or None,
                               cfg.process_id if cfg.process_id >= 0 else None,
                               initialization_timeout=cfg.timeout_s)
  except (RuntimeError, ValueError) as err:
    raise UserError(
        f"Could not join the multi-host run (parallel.distributed=True, coordinator "
        f"{cfg.coordinator_address or '(detect)'}, {cfg.num_processes or '(detect)'} processes, "
        f"process id {cfg.process_id if cfg.process_id >= 0 else '(detect)'}): "
        f"{' '.join(str(err).split())[:300]}. {_HOW_TO_START}") from None


_HOW_TO_START = ("Start the same command on every host with "
                 "--config.parallel.coordinator_address=HOST:PORT of process 0 (reachable from all "
                 "hosts), --config.parallel.num_processes and each host's own "
                 "--config.parallel.process_id, or leave them empty where the cluster sets them "
                 "(TPU pods, Slurm, Open MPI).")


def _probe_coordinator(cfg: ParallelConfig) -> None:
  """Process 0: the coordinator's port is free here; the others: something listens there."""
  host, _, port = cfg.coordinator_address.rpartition(":")
  if not host or not port.isdigit():
    raise UserError(f"Config field `parallel.coordinator_address` is "
                    f"{cfg.coordinator_address!r}; give HOST:PORT of process 0, e.g. "
                    f"10.0.0.1:12345.")
  if cfg.process_id == 0:
    with socket.socket() as s:
      try:
        s.bind(("", int(port)))
      except OSError as err:
        raise UserError(f"Process 0 coordinates the run on port {port} "
                        f"(parallel.coordinator_address={cfg.coordinator_address}), but that "
                        f"port cannot be opened here ({err.strerror}). Pick a free port and give "
                        f"the same address to every process.") from None
    return
  deadline = time.monotonic() + cfg.timeout_s
  while True:
    try:
      socket.create_connection((host.strip("[]"), int(port)), timeout=1.0).close()
      return
    except OSError as err:
      if time.monotonic() >= deadline:
        raise UserError(
            f"No coordinator answered at {cfg.coordinator_address} "
            f"(parallel.coordinator_address) within {cfg.timeout_s} s ({err.strerror or err}). "
            f"Start process 0 with the same address, check the host name and port and that "
            f"this host can reach it, or raise --config.parallel.timeout_s.") from None
      time.sleep(0.5)


def check_same_config(config: Mapping[str, Any]) -> None:
  """Raises a UserError on every process unless all processes run the same config (`config`:
  the run's config as a dict; the per-process fields aside)."""
  shared = {section: ({k: v for k, v in fields.items()
                       if f"{section}.{k}" not in PER_PROCESS_FIELDS}
                      if isinstance(fields, Mapping) else fields)
            for section, fields in config.items()}
  differ = _differing(json.dumps(shared, sort_keys=True))
  if differ:
    raise UserError(
        f"The processes of this multi-host run were started with different configs: process(es) "
        f"{', '.join(map(str, differ))} differ from process 0. Start the same command, with the "
        f"same config file and overrides, on every host; only "
        f"--config.parallel.process_id (and the coordinator's address as each host reaches it) "
        f"may differ.")


def _differing(text: str) -> list[int]:
  """The processes whose `text` differs from process 0's (compared by checksum)."""
  digests = processes.gather(zlib.crc32(text.encode()))
  return [i for i, digest in enumerate(digests) if digest != digests[0]]


def check_same_data(fingerprint: Callable[[], str]) -> None:
  """Raises a UserError on every process of a multi-host run unless all read the same data
  (`fingerprint`: the run's data fingerprint, computed only when there are several processes):
  a host whose copy of a corpus or an image folder differs would train on other data."""
  if jax.process_count() == 1:
    return
  differ = _differing(fingerprint())
  if differ:
    raise UserError(
        f"The processes of this multi-host run read different data under the same config: "
        f"process(es) {', '.join(map(str, differ))} differ from process 0. Give every host the "
        f"same copy of the files the config's `data` section names.")


class DataParallel:
  """The mesh and the placement of a run's arrays on it."""

  def __init__(self, cfg: ParallelConfig, batch_sizes: Mapping[str, int]):
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

  def abstract(self, tree: Any, split: bool = False) -> Any:
    """`tree`'s leaves as shapes with the sharding placing them gives (`split`: along the batch
    axis), to trace ahead of the calls: the calls then reuse those traces."""
    sharding = self.split if split else self.replicated
    return jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding), tree)

  def abstract_batch(self, batch: Mapping[str, Any], split_keys: Iterable[str]
                     ) -> dict[str, Any]:
    """`place_batch`'s result as shapes (`abstract`)."""
    split_keys = set(split_keys)
    return {k: self.abstract(v, k in split_keys) for k, v in batch.items()}

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
