"""The task seam: what differs between language modelling and image classification, behind one
interface, so that the search loop (`run/search.py`) and the final-training loop
(`run/final.py`) are each written once.

A task owns the data streams, the shared-weights training step, the score that rewards a sampled
architecture (and its direction), the whole-split evaluation, and the names of its figures. The
search space gives it the networks (`SearchSpace.shared_network`, `fixed_network`).
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Protocol

import jax

from enas_jax.types import Batch, Metrics, ScoreFn


class SearchTask(Protocol):
  """A task as the search loop sees it.

  Attributes:
    metric: the short name of the figure a derived architecture is judged by ("ppl", "acc");
      records use `valid_<metric>`, `batch_<metric>`.
    lower_is_better: whether a lower figure is better (perplexity) or a higher one (accuracy).
    split_keys: batch entries whose first axis is the batch axis (split over devices).
    sample_keys: batch entries with one row per scored architecture (a table's seed draws): a
      derive that scores its architectures a few at a time gives each its rows.
    resumable_changes: config-field prefixes that may change on resume.
    data_location: config fields that only say where the data is (a corpus or an image folder
      moved): they may change on resume too, the data's fingerprint checking its content.
    figure_source: where an architecture's whole-split figure comes from: "shared" (the shared
      weights) or "table" (a benchmark's table); the summary names it `valid_<metric>_<source>`.
    cost_figure: the per-architecture figure of `score` that is the simulated cost (seconds) of
      scoring one architecture ("" when scoring costs what the run itself takes). The search
      totals it with the number of scored architectures (`SearchState.totals`).
    cells_per_step: architectures each shared step trains (`train_step`'s `arch` then stacked
      on a leading axis, the batch's rows split among them); 1: the paper's one a step.
  """

  metric: str
  lower_is_better: bool
  split_keys: tuple[str, ...]
  sample_keys: tuple[str, ...]
  resumable_changes: tuple[str, ...]
  data_location: tuple[str, ...]
  figure_source: str
  cost_figure: str
  cells_per_step: int

  def data_fingerprint(self) -> str:
    """The hash of the data it trains and scores on (`data.fingerprint`): a checkpoint keeps
    it, and a resume on other data is refused."""

  def init_model(self, key: jax.Array) -> Any:
    """The shared weights' fresh training state (traceable)."""

  def train_step(self, state: Any, batch: Batch, arch: Any, key: jax.Array
                 ) -> tuple[Any, Metrics]:
    """One shared-weights step on `arch` (pure; jitted by the caller)."""

  def score(self) -> ScoreFn:
    """The pure reward of each sampled architecture on one validation batch."""

  def example_batches(self) -> tuple[Batch, Batch]:
    """One shared-phase batch and one reward batch (shapes only matter)."""

  def shared_phase_length(self, state: Any) -> int:
    """Shared steps in the epoch starting now (0: the task has no shared weights)."""

  def shared_batches(self, state: Any, n: int) -> Iterator[Batch]:
    """The next `n` training batches; may adjust `state.model` before each (reset a carry)."""

  def reward_batches(self, state: Any, n: int) -> Iterator[Batch]:
    """The next `n` validation batches for controller rewards."""

  def derive_batch(self, epoch: int) -> Batch:
    """The validation batch that scores the derive samples of `epoch`."""

  def evaluate(self, model: Any, arch: Any) -> float:
    """The figure of `arch` on the whole validation split under the shared weights."""

  def screen_limit(self) -> tuple[str, float] | None:
    """(the shared step's metric that is its mean cross-entropy, that metric's value for a
    uniform guess over the classes: log of their number), which the answer's screen compares
    (`run/screen.py`); None for a task whose answers are not trained."""

  def compile_evaluate(self, model: Any) -> None:
    """Compiles `evaluate`'s programs for `model` (shapes, as `ops.shapes.abstract` gives them)
    without running them, so that the first `evaluate` reuses them (the search compiles them in
    the background, `run/ahead.py`); nothing to do for a task without programs."""

  def evaluate_parts(self, model: Any, arch: Any, parts: int) -> list[float]:
    """The figure of `arch` on each of `parts` disjoint parts of the validation split (or of
    whatever the figure averages over), for the report's check that the score is stable."""

  def describe(self, model: Any, workdir: str) -> str:
    """What the fresh search is about (one line or two)."""

  def progress_figures(self, phase: str, record: dict[str, float]) -> dict[str, float]:
    """The few figures the progress bar shows."""

  def epoch_figures(self, shared: dict[str, float], control: dict[str, float],
                    derived: dict[str, Any] | None) -> str:
    """The epoch line's figures."""

  def summary_extras(self, evaluate: Callable[[Any], float], answer: Any) -> dict[str, Any]:
    """Task facts for summary.json (corpus, dataset, the planted cell's figure; a table's rank
    of the search's `answer`)."""


class FinalTask(Protocol):
  """A task as the final-training loop sees it: one architecture trained from scratch."""

  resumable_changes: tuple[str, ...]
  data_location: tuple[str, ...]  # as `SearchTask`'s

  def data_fingerprint(self) -> str:
    """As `SearchTask.data_fingerprint`."""

  def init_model(self) -> Any:
    """The fresh training state (traceable)."""

  def metric_shapes(self) -> Metrics:
    """Shapes of the guarded step's metric sums."""

  def step(self, model: Any, batch: Batch, key: jax.Array, sums: Metrics) -> tuple[Any, Metrics]:
    """The jitted, guarded training step."""

  def steps_per_epoch(self, epoch: int) -> int: ...

  def start_epoch(self, state: Any) -> float:
    """Prepares `state` for its epoch (reset a carry, set the learning rate); returns the lr."""

  def batches(self, state: Any, n: int) -> Iterator[Batch]:
    """The next `n` training batches of the epoch."""

  def progress_figures(self, record: dict[str, float]) -> dict[str, float]: ...

  def end_epoch(self, state: Any, train: dict[str, float]) -> tuple[dict[str, Any], str]:
    """(figures recorded for the epoch, the epoch line's figures); may update `state`. `train`:
    the epoch's training record (`guards.sums_to_record` of its sums)."""

  def divergence(self, state: Any, figures: dict[str, Any]) -> str | None:
    """The task's own reason to stop after the epoch `end_epoch` just scored (its figures), one
    sentence, or None (the loop itself stops on an epoch whose every step was skipped)."""

  def advice(self, epoch: int) -> str:
    """What to change when steps are skipped (the warning) or the run stops (its paragraph), a
    noun phrase with the current values ("a lower --config.train.lr (now 20.0) or ..."), sized
    for `epoch` (0-based, the epoch the trouble was in)."""

  def describe(self, state: Any, workdir: str) -> str: ...

  def finish(self, state: Any) -> tuple[dict[str, Any], dict[str, float], str]:
    """(summary, final record, final line)."""
