"""Tasks: what a search space's networks are trained and scored on (`base.SearchTask`,
`base.FinalTask`): language modelling (`language`), image classification (`images`) and table lookup
(`table`: NAS-Bench-201).

`task_sections` gives the config sections a task brings; `search_task` and `final_task` build
the task a run of a space needs. The table below maps a task's name (a space's `task`
attribute) to its package; search spaces are named only in `spaces/registry.py`.
"""
from __future__ import annotations

from typing import Any

from enas_jax.spaces.base import SearchSpace
from enas_jax.tasks import images, language, table
from enas_jax.tasks.sections import TaskSections

_TASKS = {"language": language, "images": images, "table": table}


def task_sections(name: str) -> TaskSections:
  """The config sections and checks of the task called `name`."""
  return _TASKS[name].SECTIONS


def search_task(space: SearchSpace, cfg: Any) -> Any:
  """The search task of `space` for the search config `cfg` (loads and checks the data)."""
  return _TASKS[space.task].search.SearchTaskImpl(space, cfg)


def final_task(space: SearchSpace, cfg: Any, say: Any) -> Any:
  """The final-training task of `space` for the config `cfg` (loads data and architecture)."""
  return _TASKS[space.task].final.FinalTaskImpl(space, cfg, say)
