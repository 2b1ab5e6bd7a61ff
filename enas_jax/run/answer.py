"""The candidates a search picks its answer from: every epoch's derived architecture and, with
`search.final_candidates=K`, the K best distinct architectures of one more derive from the
final controller (drawn with its own key stream, ranked by the derive's own batch score), so
that the finish's score (plain, or few-shot: `search.finetune_steps`) chooses among more of the
controller's cells than one per epoch. Used by the search's finish and by the report."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import jax
import numpy as np

if TYPE_CHECKING:
  from enas_jax.run.search import SearchRun
  from enas_jax.run.state import SearchState

FINAL_STREAM = 6  # the base key's stream for the final derive (after search.py's six)


def candidates(run: SearchRun, state: SearchState) -> dict[str, Any]:
  """{authors' string: architecture}: the derived ones in epoch order, then the final ones."""
  space = run.space
  out = {entry["authors"]: space.from_json(entry["arch"]) for entry in state.history}
  for authors, arch in final_candidates(run, state).items():
    out.setdefault(authors, arch)
  return out


def final_candidates(run: SearchRun, state: SearchState) -> dict[str, Any]:
  """The `search.final_candidates` best distinct architectures of a derive from the final
  controller and weights (none when the field is 0), best first."""
  count = run.cfg.search.final_candidates
  if not count:
    return {}
  key = jax.random.fold_in(run.base_key, FINAL_STREAM)
  values_SxD, _, figures = run.program.derive_step(*run.placed(
      run.task.derive_batch(state.epoch), state.ctrl, state.model.params,
      state.model.batch_stats, key, after=1))
  score_S = figures[f"valid_{run.task.metric}"]  # NumPy arrays, as derive returns them
  order = ranked(score_S, run.task.lower_is_better)
  out: dict[str, Any] = {}
  for i in order:
    arch = run.space.from_decisions(values_SxD[i])
    out.setdefault(run.space.to_authors_string(arch), arch)
    if len(out) == count:
      break
  return out


def unscored_note(scores: dict[str, float], figure: str, finetune_steps: int) -> str | None:
  """The line the finish prints when some candidates' `figure` (the answer's rescoring, by
  authors' string) is not finite, or None: they rank last, and if every one is, the answer is
  picked blind and summary.json's figure is not finite either."""
  bad = [a for a, v in scores.items() if not math.isfinite(v)]
  if not bad:
    return None
  after = (f"after search.finetune_steps={finetune_steps} steps on each alone (lower it or "
           "shared.lr)" if finetune_steps else "under the final shared weights (their outputs "
           "overflow)")
  if len(bad) < len(scores):
    return (f"note: {len(bad)} of {len(scores)} candidates' {figure} is not finite {after}; "
            f"they rank last")
  return (f"warning: every candidate's {figure} is not finite {after}: the answer is the first "
          f"candidate, not chosen by any figure; train candidates alone to choose")


def ranked(scores: Sequence[float] | np.ndarray, lower_is_better: bool) -> np.ndarray:
  """The indices of `scores`, best first, as an int64 array; ties keep their order (the first of
  equal scores wins, as `argmin` has it), and a NaN score (a figure that could not be computed:
  non-finite weights after few-shot steps, an overflow) ranks last, never first. A derive's
  millions of scores take 24 bytes each here (keys, their negation, the order)."""
  keys = np.asarray(scores, np.float64)
  return np.argsort(keys if lower_is_better else -keys, kind="stable")  # NaN sorts last


def best_first(scores: Sequence[float] | np.ndarray, lower_is_better: bool) -> list[int]:
  """`ranked`, as a list."""
  return ranked(scores, lower_is_better).tolist()
