"""Config files for `--config=configs/NAME.py[:preset]`, and the sections they share."""
import ml_collections


def parallel_section() -> ml_collections.ConfigDict:
  """The `parallel` section of every search config (enas_jax.run.parallel.ParallelConfig)."""
  parallel = ml_collections.ConfigDict()
  parallel.data_parallel = False  # split each batch over all devices (jax.devices())
  parallel.distributed = False  # multi-host: jax.distributed.initialize() at start
  parallel.coordinator_address = ""  # multi-host: host:port of process 0 ("": detect)
  parallel.num_processes = 0  # multi-host: number of processes (0: detect)
  parallel.process_id = -1  # multi-host: this process's id (-1: detect)
  parallel.timeout_s = 300  # multi-host: seconds to wait for the coordinator and every process
  return parallel
