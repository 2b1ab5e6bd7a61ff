"""What both final-training loops share: the workdir, checkpoints and resume.

A subclass (`lm_train.TrainRun`, `cnn_train.TrainRun`) supplies `fresh_state()`, `describe(state)`,
`run_epoch(state)`, `finish(state)`, its state class (with `arrays()`, `position()`,
`from_saved()`, `save_index`, `epoch`, `steps`) and `RESUMABLE_CHANGES`.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, TextIO

from enas_jax import checkpoints as ckpt_lib
from enas_jax import metrics as metrics_lib
from enas_jax import workdir as workdir_lib


class TrainRun:
  """One final training's bookkeeping around the subclass's epochs."""

  RESUMABLE_CHANGES: tuple[str, ...] = ()
  state_class: Any

  def __init__(self, cfg: Any, workdir: str, out: TextIO, progress: metrics_lib.Progress):
    self.cfg, self.workdir, self.out, self.progress = cfg, workdir, out, progress
    self.log: metrics_lib.MetricsLog | None = None
    self._checkpointer: ckpt_lib.Checkpointer | None = None

  @property
  def checkpointer(self) -> ckpt_lib.Checkpointer:
    """Opened on first use, after the subclass has checked its data and architecture."""
    if self._checkpointer is None:
      self._checkpointer = ckpt_lib.Checkpointer(os.path.join(self.workdir, "checkpoints"),
                                                 self.cfg.checkpoint.keep, self.say)
    return self._checkpointer

  def fresh_state(self) -> Any:
    raise NotImplementedError

  def describe(self, state: Any) -> None:
    raise NotImplementedError

  def run_epoch(self, state: Any) -> None:
    raise NotImplementedError

  def finish(self, state: Any) -> dict[str, Any]:
    raise NotImplementedError

  def say(self, text: str) -> None:
    self.progress.clear()
    self.out.write(text + "\n")
    self.out.flush()

  def save(self, state: Any) -> None:
    meta = {"position": state.position(), "metrics_bytes": self.log.tell(),
            "config": dataclasses.asdict(self.cfg)}
    arrays = state.arrays()
    self.checkpointer.save(state.save_index, arrays, meta,
                           must_be_finite={k: v for k, v in arrays.items() if "sums" not in k})

  def _check_saved_config(self, meta: dict[str, Any]) -> None:
    diffs = ckpt_lib.check_resumable(meta["config"], self.cfg, self.RESUMABLE_CHANGES,
                                     self.workdir, "training")
    if diffs:
      self.say(f"note: resuming with changed fields: {'; '.join(diffs)}")

  def start(self) -> Any:
    """The newest checkpoint's state (saying so), or a fresh one (described)."""
    import jax
    template = jax.eval_shape(lambda: self.fresh_state().arrays())
    found = self.checkpointer.restore_latest(template, self._check_saved_config)
    workdir_lib.truncate(os.path.join(self.workdir, "metrics.jsonl"),
                         found[1]["metrics_bytes"] if found else 0)
    self.log = metrics_lib.MetricsLog(self.workdir)
    if found is None:
      state = self.fresh_state()
      self.describe(state)
      return state
    arrays, meta, step = found
    state = self.state_class.from_saved(arrays, meta["position"])
    self.log.events.session_start(state.steps)
    self.say(f"resuming from checkpoint {step}: epoch {state.epoch + 1}, step "
             f"{state.epoch_step} of it")
    return state

  def execute(self) -> dict[str, Any]:
    state = self.start()
    workdir_lib.write_json(os.path.join(self.workdir, "config.json"), dataclasses.asdict(self.cfg))
    while state.epoch < self.cfg.train.epochs:
      self.run_epoch(state)
    return self.finish(state)
