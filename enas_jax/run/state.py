"""The resumable run state: one base class that saves and restores itself.

A run state is a dataclass whose fields are either arrays (pytrees of weights, optimizer states,
baselines, metric sums: the fields named in `ARRAYS`) or the position in the loop (counters,
data cursors, histories: everything else, JSON). A checkpoint holds `arrays()` and `position()`;
`from_saved` rebuilds the state. PRNG keys are never saved: every key is
`fold_in(fold_in(key(seed), stream), step)`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar

import jax

from enas_jax.data.cursor import Cursor
from enas_jax.io.configuration import has_kind

S = TypeVar("S", bound="RunState")
# The JSON kind of each position field's type (by the annotation's name; others unchecked).
_KINDS = {"int": int, "str": str, "float": (int, float), "Cursor": dict, "list": list,
          "dict": dict}
_CURSOR_FIELDS = {f.name for f in dataclasses.fields(Cursor)}
# Phases of a search epoch, in order.
SHARED, CONTROLLER, DERIVE = "shared", "controller", "derive"


@dataclasses.dataclass
class RunState:
  """Base of every run state; subclasses declare fields and list the array ones in `ARRAYS`."""

  ARRAYS: ClassVar[tuple[str, ...]] = ()

  def arrays(self) -> dict[str, Any]:
    return {name: getattr(self, name) for name in self.ARRAYS}

  def position(self) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(self):
      if f.name not in self.ARRAYS:
        value = getattr(self, f.name)
        out[f.name] = dataclasses.asdict(value) if isinstance(value, Cursor) else value
    return out

  @classmethod
  def from_saved(cls: type[S], arrays: dict[str, Any], position: dict[str, Any]) -> S:
    values = dict(arrays)
    for f in dataclasses.fields(cls):
      if f.name not in cls.ARRAYS:
        if f.name not in position and f.default_factory is not dataclasses.MISSING:
          continue  # a field newer than the checkpoint: its default
        value = position[f.name]
        values[f.name] = Cursor(**value) if f.type in ("Cursor", Cursor) else value
    return cls(**values)

  @classmethod
  def position_problem(cls, position: Any) -> str | None:
    """What keeps `position` (a checkpoint's) from being this state's, in words, or None: a
    field missing that has no default factory, or a value of another kind than the field's.
    A checkpoint with such a position is treated as unreadable (it was a KeyError or TypeError
    traceback, from the resume or later in the loop)."""
    if not isinstance(position, dict):
      return "has a loop position that is not an object"
    for f in dataclasses.fields(cls):
      if f.name in cls.ARRAYS or (f.name not in position
                                  and f.default_factory is not dataclasses.MISSING):
        continue
      if f.name not in position:
        return f"has no {f.name} in its loop position"
      value, kind = position[f.name], _KINDS.get(str(f.type).split("[")[0])
      if kind is not None and not has_kind(value, kind):
        return f"has {f.name} = {value!r} in its loop position, not of type {f.type}"
      if kind is dict and f.type in ("Cursor", Cursor) and not (
          set(value) <= _CURSOR_FIELDS and all(type(v) is int for v in value.values())):
        return f"has {f.name} = {value!r} in its loop position, not a data cursor"
    return None

  @property
  def steps(self) -> int:
    """Optimizer steps taken so far."""
    raise NotImplementedError

  @property
  def save_index(self) -> int:
    """Strictly increasing over the run: a mid-epoch save and the epoch-end save never clash."""
    return self.steps + self.epoch


@dataclasses.dataclass
class SearchState(RunState):
  """What a search carries; arrays: the shared weights' training state, the controller's
  state and the per-phase metric sums."""

  ARRAYS: ClassVar[tuple[str, ...]] = ("model", "ctrl", "sums", "epoch_sums")

  model: Any
  ctrl: Any
  sums: dict[str, dict[str, jax.Array]]  # per phase: metric sums since the last record
  epoch_sums: dict[str, dict[str, jax.Array]]  # per phase: metric sums over the epoch
  epoch: int = 0  # epochs completed
  phase: str = SHARED  # the phase in progress
  phase_step: int = 0  # steps done in it
  phase_total: int = 0  # steps it will take (fixed when it starts)
  shared_steps: int = 0  # all shared steps so far
  controller_steps: int = 0  # all controller steps so far
  train_cursor: Cursor = dataclasses.field(default_factory=Cursor)
  valid_cursor: Cursor = dataclasses.field(default_factory=Cursor)
  history: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # derived, per epoch
  lr_factor: float = 1.0  # lowered by each divergence rollback
  rollbacks: int = 0
  # Architectures scored (`queries`) and their simulated cost (`simulated_seconds`), for tasks
  # whose scoring stands for training (a table: `SearchTask.cost_figure`); empty otherwise.
  totals: dict[str, float] = dataclasses.field(default_factory=dict)

  @classmethod
  def position_problem(cls, position: Any) -> str | None:
    """`RunState.position_problem`, and the phase one of the epoch's."""
    problem = super().position_problem(position)
    if problem is None and position["phase"] not in (SHARED, CONTROLLER, DERIVE):
      return f"has phase = {position['phase']!r}, not one of {SHARED}, {CONTROLLER}, {DERIVE}"
    return problem

  @property
  def steps(self) -> int:
    return self.shared_steps + self.controller_steps


@dataclasses.dataclass
class TrainState(RunState):
  """What a final training carries; arrays: the network's training state (weights, optimizer
  state, and whatever else the task keeps with them) and the metric sums."""

  ARRAYS: ClassVar[tuple[str, ...]] = ("model", "sums", "epoch_sums")

  model: Any
  sums: dict[str, jax.Array]  # since the last record
  epoch_sums: dict[str, jax.Array]  # over the epoch
  epoch: int = 0
  epoch_step: int = 0
  train_steps: int = 0
  cursor: Cursor = dataclasses.field(default_factory=Cursor)
  history: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # per epoch

  @property
  def steps(self) -> int:
    return self.train_steps
