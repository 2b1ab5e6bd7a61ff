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


def report_section() -> ml_collections.ConfigDict:
  """The `report` section of every search config (enas_jax.run.config.ReportConfig): what
  `python -m enas_jax.report --workdir=DIR` measures after (or during) the search."""
  report = ml_collections.ConfigDict()
  report.random_cells = 24  # uniformly sampled cells scored on the whole validation split
  report.collapse_fraction = 0.5  # "collapsed": entropy below this fraction of its start
  report.train_alone = 0  # K: train the top-K and K random cells alone (0: skip; --train_alone)
  report.train_alone_steps = 200  # training steps per cell trained alone
  report.train_alone_schedule = "linear"  # its lr: "linear" from the search's first to 0
  # ("constant": the first throughout; "averaged": the first, the weights averaged over the
  # second half, as NT-ASGD); annealed, 200 steps rank cells more as full training
  # does (tau 0.77 against 0.62 on the planted benchmark, 0.64 against 0.60 on PTB: science.md
  # section 10)
  report.seed = 0  # draws the random cells (the same cells on every report of a workdir)
  report.finetune_steps = -1  # K: score every cell after K shared steps on it alone (few-shot;
  # 0: the shared weights as they are; -1: as the search picked its answer, search.finetune_steps)
  return report
