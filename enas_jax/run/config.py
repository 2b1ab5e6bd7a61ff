"""Whole-run configs: a config file's ConfigDict -> the checked, frozen dataclass of its space.

One search config class and one final-training config class per space, made from the sections
the space and its task declare (the space's `model` section, the task's `data`, `shared` and
`train` sections), so a field a space does not have is an unknown-field error. Controller
settings that only some spaces use (`SearchSpace.controller_fields`, and the task's) are
rejected, with the space that uses them named, when set for another space.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar, Literal, Mapping

from enas_jax.controller.policy import ControllerConfig
from enas_jax.io.checkpoints import CheckpointConfig
from enas_jax.io.configuration import INT32_END, from_section, require
from enas_jax.io.errors import UserError
from enas_jax.run.parallel import ParallelConfig
from enas_jax.spaces.registry import DEFAULT_SPACE, SPACES, get_space
from enas_jax.tasks import task_sections


@dataclasses.dataclass(frozen=True)
class SearchLoopConfig:
  """The `search` section (see configs/ptb_rnn.py for comments)."""

  epochs: int = 150
  shared_steps: int = 0
  controller_steps: int = 2000
  warmup_epochs: int = 0
  fair_every: int = 0
  derive_every: int = 1
  derive_samples: int = 100
  finetune_steps: int = 0
  final_candidates: int = 0
  screen_steps: int = 0
  log_every: int = 50
  on_divergence: Literal["skip", "rollback", "stop"] = "skip"
  rollback_lr_factor: float = 0.5
  max_rollbacks: int = 3

  def validate(self, section: str = "search") -> None:
    require(self, section, ">= 1", "epochs", "derive_every", "derive_samples", "log_every")
    require(self, section, ">= 0", "shared_steps", "controller_steps", "max_rollbacks",
            "warmup_epochs", "fair_every", "finetune_steps", "final_candidates",
            "screen_steps")
    if self.warmup_epochs >= self.epochs:
      raise UserError(f"Config field `{section}.warmup_epochs` ({self.warmup_epochs}) must be "
                      f"less than `{section}.epochs` ({self.epochs}): the controller would never "
                      f"learn. Lower it or raise the epochs.")
    if not 0 < self.rollback_lr_factor < 1:
      raise UserError(f"Config field `{section}.rollback_lr_factor` must be in (0, 1), got "
                      f"{self.rollback_lr_factor}.")


TRAIN_ALONE_SCHEDULES = ("linear", "constant", "averaged")


@dataclasses.dataclass(frozen=True)
class ReportConfig:
  """The `report` section: what `python -m enas_jax.report` measures (see configs/ptb_rnn.py)."""

  random_cells: int = 24
  collapse_fraction: float = 0.5
  train_alone: int = 0
  train_alone_steps: int = 200
  train_alone_schedule: str = "linear"  # or "constant", "averaged" (how training alone ends)
  seed: int = 0
  finetune_steps: int = -1  # -1: as the search scores its answer (`search.finetune_steps`)
  # The least value of each count (a rank correlation needs several cells); the command's flags
  # of the same names are checked against these too.
  MINIMUMS: ClassVar[dict[str, int]] = {"random_cells": 3, "train_alone": 0,
                                         "train_alone_steps": 1, "seed": 0,
                                         "finetune_steps": -1}

  @classmethod
  def in_range(cls, name: str, value: int) -> bool:
    """Whether `value` may be the count `name`: at least its minimum and, a seed aside, below
    2**31 (JAX's int32; 10^12 random cells ran for ever)."""
    return cls.MINIMUMS[name] <= value and (name == "seed" or value < INT32_END)

  @staticmethod
  def below(name: str) -> str:
    """The words of the upper bound `in_range` checks, if any."""
    return "" if name == "seed" else f" and below 2**31 ({INT32_END:,})"

  def validate(self, section: str = "report") -> None:
    for name, least in self.MINIMUMS.items():
      if not self.in_range(name, getattr(self, name)):
        raise UserError(f"Config field `{section}.{name}` must be at least {least}"
                        f"{self.below(name)}, got {getattr(self, name)}.")
    if not 0 < self.collapse_fraction < 1:
      raise UserError(f"Config field `{section}.collapse_fraction` must be in (0, 1), got "
                      f"{self.collapse_fraction}.")
    if self.train_alone_schedule not in TRAIN_ALONE_SCHEDULES:
      raise UserError(f"Config field `{section}.train_alone_schedule` is "
                      f"{self.train_alone_schedule!r}; it must be one of "
                      f"{', '.join(TRAIN_ALONE_SCHEDULES)} (\"linear\": the learning rate "
                      f"annealed to 0 over the steps; \"constant\": the search's first; "
                      f"\"averaged\": the search's first, the weights averaged over the second "
                      f"half of the steps).")


@dataclasses.dataclass(frozen=True)
class SearchConfig:
  """A whole search config; each space's subclass types `data`, `model` and `shared`."""

  space: str = DEFAULT_SPACE
  seed: int = 0
  deterministic: bool = False
  data: Any = None
  model: Any = None
  shared: Any = None
  controller: ControllerConfig = dataclasses.field(default_factory=ControllerConfig)
  search: SearchLoopConfig = dataclasses.field(default_factory=SearchLoopConfig)
  checkpoint: CheckpointConfig = dataclasses.field(default_factory=CheckpointConfig)
  parallel: ParallelConfig = dataclasses.field(default_factory=ParallelConfig)
  report: ReportConfig = dataclasses.field(default_factory=ReportConfig)

  def validate(self, section: str = "") -> None:
    require(self, "", "seed", "seed")
    check_controller_fields(self.space, self.controller)
    task_sections(get_space(self.space).task).check_search(self)


@dataclasses.dataclass(frozen=True)
class FinalConfig:
  """A whole final-training config; each space's subclass types `data`, `model`, `train` and
  adds its task's extra fields."""

  space: str = DEFAULT_SPACE
  seed: int = 0
  deterministic: bool = False
  arch: str = ""
  data: Any = None
  model: Any = None
  train: Any = None
  checkpoint: CheckpointConfig = dataclasses.field(default_factory=CheckpointConfig)

  def validate(self, section: str = "") -> None:
    require(self, "", "seed", "seed")
    if not self.arch:
      raise UserError(f"Config field `arch` is empty: give the architecture to train, e.g. "
                      f"--config.arch=workdirs/NAME (a {self.space} search's workdir), its "
                      f"best_arch.json, or the authors' {self.space} string"
                      f"{task_sections(get_space(self.space).task).arch_hint}.")


def _section(cls: type) -> tuple[type, dataclasses.Field]:
  return cls, dataclasses.field(default_factory=cls)


@functools.cache
def search_config_class(space_name: str) -> type[SearchConfig]:
  """The search config class of a space: its model section, its task's data and shared ones."""
  space = get_space(space_name)
  sections = task_sections(space.task)
  return dataclasses.make_dataclass(
      f"{space_name.capitalize()}SearchConfig",
      [("space", Literal[space_name], space_name),  # type: ignore[valid-type]
       ("data", *_section(sections.data)), ("model", *_section(space.model_config)),
       ("shared", *_section(sections.shared))],
      bases=(SearchConfig,), frozen=True)


@functools.cache
def final_config_class(space_name: str) -> type[FinalConfig]:
  """The final-training config class of a space (its task may add fields after `arch`)."""
  space = get_space(space_name)
  sections = task_sections(space.task)
  extra = [(name, typ, dataclasses.field(default=default))
           for name, typ, default in sections.final_fields]
  base = dataclasses.make_dataclass(f"{space_name.capitalize()}FinalBase", extra,
                                    bases=(FinalConfig,), frozen=True) if extra else FinalConfig
  return dataclasses.make_dataclass(
      f"{space_name.capitalize()}FinalConfig",
      [("space", Literal[space_name], space_name),  # type: ignore[valid-type]
       ("data", *_section(sections.data)), ("model", *_section(space.model_config)),
       ("train", *_section(sections.train))],
      bases=(base,), frozen=True)


def space_name_of(config: Mapping[str, Any]) -> str:
  """The config's `space` field (the recurrent space when absent), checked."""
  if not hasattr(config, "get"):  # a damaged config.json: was an AttributeError traceback
    raise UserError(f"A config must be a group of sections and fields, got {config!r}.")
  name = config.get("space", DEFAULT_SPACE)
  get_space(name)
  return name


def search_config(config: Mapping[str, Any]) -> SearchConfig:
  """The ConfigDict of a search config file -> its space's checked, frozen config."""
  return from_section(search_config_class(space_name_of(config)), "", config)


def final_config(config: Mapping[str, Any]) -> FinalConfig:
  """The ConfigDict of a final-training config file -> its space's checked, frozen config."""
  name = space_name_of(config)
  refusal = task_sections(get_space(name).task).no_final_training
  if refusal:
    raise UserError(f"The {name} space has no final training: {refusal}")
  return from_section(final_config_class(name), "", config)


def _controller_fields(space_name: str) -> set[str]:
  """The controller settings a space uses beyond the common ones (its own and its task's)."""
  space = get_space(space_name)
  return set(space.controller_fields) | set(task_sections(space.task).controller_fields)


def check_controller_fields(space_name: str, cfg: ControllerConfig) -> None:
  """A controller setting used only by other spaces (or another task) must keep its default."""
  users = {name: [s for s in SPACES if name in _controller_fields(s)]
           for s in SPACES for name in _controller_fields(s)}
  defaults = ControllerConfig()
  for name, spaces in sorted(users.items()):
    if space_name not in spaces and getattr(cfg, name) != getattr(defaults, name):
      raise UserError(
          f"Config field `controller.{name}` is set to {getattr(cfg, name)!r}, but only the "
          f"{' and '.join(spaces)} space(s) use it; the {space_name} space would ignore it. "
          f"Remove it from the config file or the --config.controller.{name} override.")
