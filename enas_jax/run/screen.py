"""The answer's screen (`search.screen_steps`): before the search names its answer, the
candidates, best-scored first, are each trained alone from fresh weights for a few steps with the
search's own shared step, and one whose training cross-entropy over the last half of those steps
is above a uniform guess's (the task's `screen_limit`: log of the vocabulary or class count), or
whose steps were not all finite, is passed over for the next.

Why (experiments/results/science.md, section 19): cells the shared weights score as ordinary can
explode when trained alone at the search's learning rate (on Penn Treebank, cells with a ReLU or
identity node 0 at learning rate 20) and some never recover: a user would spend a final training
on an answer that ends at unigram level or worse. The explosion shows in the first steps.

The screen's weights, data and keys are a function of the run's key and the step only (the
training split's first batches from its start, the screen's own key stream), so every candidate
gets the same ones and a resumed search screens as the uninterrupted one did.
"""
from __future__ import annotations

import math
import types
from typing import TYPE_CHECKING, Any, Callable

import jax
import numpy as np

from enas_jax.data.cursor import Cursor
from enas_jax.ops import guards
from enas_jax.ops.params import set_learning_rate
from enas_jax.ops.shapes import zeros
from enas_jax.run.state import SHARED

if TYPE_CHECKING:
  from enas_jax.run.search import SearchRun


def screen(run: SearchRun, arch: Any, key: jax.Array) -> dict[str, Any]:
  """`arch` trained alone for `search.screen_steps` shared steps from weights initialised from
  `key` folded with 0 (the steps' keys: `key` folded with 1, then the step): {"train_ppl":
  exp(mean of the task's screen metric over the last half of the steps), "skipped_steps":
  steps that were not finite, "passed": none skipped and not above a uniform guess's}."""
  steps = run.cfg.search.screen_steps
  name, limit = run.task.screen_limit()
  model = run.model_init(jax.random.fold_in(key, 0))  # the program the search started with
  model = model.replace(opt_state=set_learning_rate(model.opt_state, run.cfg.shared.lr_at_epoch(0)))
  # the search's step, compiled once: with `shared.cells_per_step` C > 1 the same cell C times
  values = np.broadcast_to(run.space.to_decisions(arch), run.program.shared_values)
  walk = types.SimpleNamespace(model=model, train_cursor=Cursor())  # shared_batches' view
  step_key = jax.random.fold_in(key, 1)
  shapes = run.shapes[SHARED]
  sums = zeros(shapes)
  for i, batch in enumerate(run.task.shared_batches(walk, steps)):
    if i == steps // 2:  # the figure is the last half's: the first steps start from a guess
      sums = zeros(shapes)
    args = run.placed(batch, walk.model, values, step_key, sums)
    walk.model, sums = run.program.shared_step(*args)
  record = guards.sums_to_record(sums)
  figure = record[name] if record["steps"] > record["skipped_steps"] else math.inf
  skipped = int(record["skipped_steps"])
  return {"train_ppl": _exp(figure), "skipped_steps": skipped,
          "passed": bool(skipped == 0 and figure <= limit)}


def pick(run: SearchRun, order: list[str], archs: dict[str, Any], key: jax.Array,
         after_each: Callable[[], None] = lambda: None) -> tuple[str, dict[str, Any] | None]:
  """The first of `order` (authors' strings, best-scored first; a stable sort keeps ties as
  `min` and `max` break them) that passes the screen, or the first when none does; and the
  screen's summary entry (each candidate screened, in order). Without a screen
  (`search.screen_steps` 0): the first, and None. `after_each` is called after each candidate's
  screen (the search's stop check)."""
  if not run.cfg.search.screen_steps:
    return order[0], None
  screened = []
  for authors in order:
    screened.append({"authors": authors, **screen(run, archs[authors], key)})
    after_each()
    if screened[-1]["passed"]:
      break
  passed = screened[-1]["passed"]
  return (screened[-1]["authors"] if passed else order[0]), {
      "steps": run.cfg.search.screen_steps, "limit_ppl": _exp(run.task.screen_limit()[1]),
      "candidates": screened, "all_failed": not passed}


def _exp(x: float) -> float:
  return math.exp(min(x, 700.0))  # a float, not an overflow, for an exploded figure
