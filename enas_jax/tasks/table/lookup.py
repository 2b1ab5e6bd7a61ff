"""Scoring a cell by looking it up: NAS-Bench-201's table as jit-ready arrays.

A query of a cell reads the validation accuracy of one of its trained seeds, the seed drawn from
a uniform number `u` in [0, 1) (NAS-Bench-201's protocol: each query sees one training run, so a
strategy meets the benchmark's seed noise); its cost is the cell's training time. The cell's
figure (`mean_acc`) is its accuracy averaged over seeds.
"""
from __future__ import annotations

import dataclasses
from typing import Literal

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from enas_jax.data.nasbench201 import PLACE_VALUES_E, Table, seed_index


@dataclasses.dataclass(frozen=True)
class TableDataConfig:
  """The `data` section of a table search (see configs/nasbench201.py for comments)."""

  dataset: Literal["cifar10", "cifar100", "imagenet16-120"] = "cifar10"

  def validate(self, section: str = "data") -> None:
    del section


@dataclasses.dataclass(frozen=True)
class NoSharedWeights:
  """The `shared` section of a table search: empty, there are no shared weights to train."""

  def validate(self, section: str = "shared") -> None:
    del section


@dataclasses.dataclass(frozen=True)
class NoTraining:
  """The `train` section: empty, a table's cells are never trained here."""

  def validate(self, section: str = "train") -> None:
    del section  # the final-training task refuses, with the reason (tasks/table/final.py)


class DeviceTable(flax.struct.PyTreeNode):
  """The table's columns on the device, for lookups inside jitted steps.

  Attributes:
    acc_KxS: accuracy as a fraction (NaN past a cell's seeds); seeds_K, time_K as in `Table`.
  """

  acc_KxS: jax.Array
  seeds_K: jax.Array
  time_K: jax.Array

  @classmethod
  def of(cls, table: Table) -> "DeviceTable":
    return cls(jnp.asarray(table.acc_KxS / 100.0), jnp.asarray(table.seeds_K),
               jnp.asarray(table.train_time_K))


def index_of(ops_SxE: jax.Array) -> jax.Array:
  """Row of each cell (traceable): its six operation ids read as a base-5 number."""
  return jnp.sum(ops_SxE.astype(jnp.int32) * jnp.asarray(PLACE_VALUES_E, jnp.int32), axis=-1)


def query(table: DeviceTable, ops_SxE: jax.Array, u_S: jax.Array
          ) -> tuple[jax.Array, jax.Array]:
  """(accuracy of one drawn seed, training seconds) of each cell (traceable)."""
  k_S = index_of(ops_SxE)
  seed_S = seed_index(u_S, table.seeds_K[k_S], jnp)
  return table.acc_KxS[k_S, seed_S], table.time_K[k_S]


def seed_draws(seed: int, stream: int, index: int, n: int) -> np.ndarray:
  """`n` uniform numbers in [0, 1) for query batch `index` of `stream`: a pure function of the
  run's seed, so a resumed run draws the same seeds (on the host: no device round trip)."""
  return np.random.default_rng([seed, stream, index]).random(n).astype(np.float32)
