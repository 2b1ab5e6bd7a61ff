"""The report's cells trained alone, kept as each is done in WORKDIR/report/trained_alone.json:
a report stopped (Ctrl-C, SIGTERM, a preempted job) after hours of training cells alone keeps
the ones it finished, and the same command, or a later report of the same search, reuses every
figure whose training would be the same instead of training that cell again.

A figure is kept under a hash of everything its training depends on: the search's config
(config.json without its `report` and `parallel` sections, which training alone does not read),
the cell, the steps, the learning-rate schedule and `report.seed`, and the JAX version and
backend that computed it (another JAX can round differently). Training alone starts from fresh
weights, never from the search's checkpoint, so the figure of a cell does not change as the
search goes on. Each write replaces the file atomically, merged with what another report of
the same workdir wrote meanwhile (under a lock); a file that cannot be read is not
trusted: a warning, its cells trained again, the file rewritten. Delete the file to train every
cell again (after changing enas_jax's own code, say).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from typing import Any, Callable

import jax

from enas_jax.io.workdir import from_jsonable, write_json

FILE = "trained_alone.json"
LOCK = ".trained_alone.lock"  # held while the file is read and rewritten
_FORMAT = 1  # bumped when what a figure means changes


def context(config: dict[str, Any]) -> dict[str, Any]:
  """What of a search's config.json (and the software) a cell's training alone depends on."""
  kept = {k: v for k, v in config.items() if k not in ("report", "parallel")}
  return {"config": kept, "jax": jax.__version__, "backend": jax.default_backend(),
          "format": _FORMAT}


class AloneCache:
  """The figures of cells trained alone, by `key`, in `folder`/trained_alone.json."""

  def __init__(self, folder: str, config: dict[str, Any], say: Callable[[str], None]):
    self.path = os.path.join(folder, FILE)
    self._context = context(config)
    self._entries = self._read(say)

  def _read(self, say: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    if not os.path.isfile(self.path):
      return {}
    try:
      with open(self.path) as f:
        data = json.load(f)
      entries = data["entries"]
      if not isinstance(entries, dict):
        raise TypeError("entries is not an object")
      return entries
    except (OSError, ValueError, KeyError, TypeError) as err:
      say(f"warning: {self.path} cannot be read ({err}): its cells are trained again and the "
          f"file rewritten")
      return {}

  def key(self, arch_json: Any, steps: int, schedule: str, seed: int) -> str:
    """The hash a cell's figure is kept under (`arch_json`: the space's JSON of the cell)."""
    what = {**self._context, "arch": arch_json, "steps": steps, "schedule": schedule,
            "seed": seed}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()

  def get(self, key: str) -> float | None:
    """The kept figure (inf or nan as written), or None."""
    entry = self._entries.get(key)
    if not isinstance(entry, dict) or "figure" not in entry:
      return None
    figure = from_jsonable(entry["figure"])
    return float(figure) if isinstance(figure, (int, float)) else None

  def put(self, key: str, figure: float, authors: str) -> None:
    """Keeps `figure` and rewrites the file at once (atomically), with the figures another
    report of the same workdir has written since (two reports at once keep both's cells)."""
    self._entries[key] = {"figure": figure, "authors": authors}
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    with open(os.path.join(os.path.dirname(self.path), LOCK), "a") as lock:
      with contextlib.suppress(OSError):  # a filesystem without locks: merged all the same
        fcntl.flock(lock, fcntl.LOCK_EX)  # released as the file closes
      self._entries = {**self._read(lambda text: None), **self._entries}
      write_json(self.path, {"format": _FORMAT, "entries": self._entries})

  def __len__(self) -> int:
    return len(self._entries)
