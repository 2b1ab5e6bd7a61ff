"""What a task adds to a run's config: its sections and its checks."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable


@dataclasses.dataclass(frozen=True)
class TaskSections:
  """Attributes:
    data: the `data` section's dataclass.
    shared: the `shared` section's (how a search trains the shared weights).
    train: the `train` section's (final training).
    final_fields: extra top-level fields of a final-training config: (name, type, default).
    controller_fields: controller settings only this task uses (its reward).
    arch_hint: appended to the empty-`arch` error of final training.
    check_search: further checks of a whole search config (raises UserError).
    no_final_training: when set, the task has no final training and this is why (the train
      command's error).
  """

  data: type
  shared: type
  train: type
  final_fields: tuple[tuple[str, type, Any], ...] = ()
  controller_fields: tuple[str, ...] = ()
  arch_hint: str = ""
  check_search: Callable[[Any], None] = lambda cfg: None
  no_final_training: str = ""
