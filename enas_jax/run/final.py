"""Final training of one architecture from scratch, written once for every task: epochs of
guarded training steps, records, checkpoints at each epoch's end and every
`checkpoint.every_steps` steps, the task's evaluation after each epoch, and resume bit for bit
(running the same command again continues from the newest checkpoint).
"""
from __future__ import annotations

import time
from typing import Any, TextIO

import jax
import jax.numpy as jnp

from enas_jax.io import metrics as metrics_lib
from enas_jax.io import processes
from enas_jax.ops import guards
from enas_jax.ops.initialize import initialize
from enas_jax.run.config import FinalConfig
from enas_jax.run.runner import Diverged, Runner
from enas_jax.run.state import TrainState
from enas_jax.spaces.registry import get_space
from enas_jax.tasks import final_task

__all__ = ["FinalRun", "run_training"]


class FinalRun(Runner):
  """One final training: the task (data, network, compiled step), the loop, the outputs."""

  def __init__(self, cfg: FinalConfig, workdir: str, out: TextIO,
               progress: metrics_lib.Progress):
    processes.check_backend()
    self.out, self.progress = out, progress  # the task may say notes while it loads
    self.space = get_space(cfg.space)
    self.task = final_task(self.space, cfg, self.say)
    super().__init__(cfg, workdir, out, progress, self.task.resumable_changes, "training")
    self.key = jax.random.key(cfg.seed)
    self._shapes: dict[str, Any] | None = None

  def zero_sums(self) -> dict[str, jax.Array]:
    if self._shapes is None:
      self._shapes = self.task.metric_shapes()
    return {k: jnp.zeros(s.shape, s.dtype) for k, s in self._shapes.items()}

  def fresh_state(self, compiled: bool = True) -> TrainState:
    return TrainState(model=initialize(self.task.init_model, compiled=compiled,
                                       check=self.check_init_memory),
                      sums=self.zero_sums(),
                      epoch_sums=self.zero_sums())

  def save(self, state: TrainState) -> None:
    super().save(state, must_be_finite={"model": state.model})

  def start(self) -> TrainState:
    """The newest checkpoint's state (saying so), or a fresh one (described)."""
    found = self.restore(TrainState)
    if found is None:
      self.open_log(None)
      state = self.fresh_state()
      self.say(self.task.describe(state, self.workdir))
      return state
    state, step, log_position = found
    self.open_log(log_position)
    self.say(f"resuming from checkpoint {step}: epoch {state.epoch + 1}, step "
             f"{state.epoch_step} of it")
    return state

  def execute(self) -> dict[str, Any]:
    # the workdir held; SIGTERM/SIGINT: save at the next step boundary, then stop
    with self.workdir_held(), self.stop_signals:
      return self._execute()

  def _execute(self) -> dict[str, Any]:
    state = self.start()
    self.write_config()
    while state.epoch < self.cfg.train.epochs:
      self.run_epoch(state)
    return self.finish(state)

  def run_epoch(self, state: TrainState) -> None:
    cfg, start = self.cfg, time.time()
    lr = self.task.start_epoch(state)
    n = self.task.steps_per_epoch(state.epoch)
    key = jax.random.fold_in(self.key, 1)
    for batch in self.task.batches(state, n - state.epoch_step):
      self.check_call_memory(self.task.step, (state.model, batch, key, state.sums), "step")
      state.model, state.sums = self.task.step(state.model, batch, key, state.sums)
      state.epoch_step += 1
      state.train_steps += 1
      if state.epoch_step % cfg.train.log_every == 0 or state.epoch_step == n:
        self.record(state, lr, n)
      every = cfg.checkpoint.every_steps
      if every and state.steps % every == 0 and state.epoch_step < n:
        self.save(state)
      if state.epoch_step < n:  # the epoch's last step is followed by its evaluation and save
        self.check_stop(state)
    train = guards.sums_to_record(state.epoch_sums)
    figures, text = self.task.end_epoch(state, train)
    state.epoch_sums = self.zero_sums()
    state.epoch += 1
    state.epoch_step = 0
    self.log.write("epoch", state.epoch, {**figures, "seconds": time.time() - start})
    self.save(state)
    self.say(f"epoch {state.epoch}/{cfg.train.epochs}  {text}  ({time.time() - start:.1f} s)")
    why = self.stop_reason(state, figures, train)
    if why:  # the epoch's record and checkpoint are written; no summary
      self.log.flush()
      raise Diverged(why)
    self.check_stop(state)

  def stop_reason(self, state: TrainState, figures: dict[str, Any],
                  train: dict[str, float]) -> str | None:
    """Why the run stops after the epoch it just finished (`train.stop_on_divergence`), or None:
    every training step of the epoch skipped (so the weights did not change in it), or the
    task's own reason (`FinalTask.divergence`: its figures). `train`: the epoch's record."""
    if not self.cfg.train.stop_on_divergence:
      return None
    if guards.every_step_skipped(train):
      what = (f"Every one of epoch {state.epoch}'s {int(train['steps'])} training steps had a "
              f"NaN/Inf loss or result and was skipped, so the weights did not change in it.")
    else:
      what = self.task.divergence(state, figures)
    if what is None:
      return None
    return (f"{what} The epoch's checkpoint is saved. Start again in a new workdir with "
            f"{self.task.advice(state.epoch - 1)}; --config.train.stop_on_divergence=False trains "
            f"on regardless.")

  def record(self, state: TrainState, lr: float, n: int) -> None:
    """Logs the sums since the last record, adds them to the epoch's, warns of skipped steps."""
    record = guards.sums_to_record(state.sums)
    record["lr"] = lr
    self.log.write("train", state.steps, record)
    state.epoch_sums = jax.tree_util.tree_map(jnp.add, state.epoch_sums, state.sums)
    state.sums = self.zero_sums()
    if record["skipped_steps"]:
      self.say(f"warning: {int(record['skipped_steps'])} step(s) up to step {state.steps} had a "
               f"NaN/Inf loss or result and were skipped; if it repeats, start again with "
               f"{self.task.advice(state.epoch)}.")
    self.progress.show(f"epoch {state.epoch + 1}", state.epoch_step, n,
                       self.task.progress_figures(record), force=True)

  def finish(self, state: TrainState) -> dict[str, Any]:
    # seconds (the test split's evaluation): a signal here lets it end, saved and summarised
    self.stop_signals.then = "the training is complete: writing its summary (seconds), then exiting"
    summary, record, line = self.task.finish(state)
    self.log.write("final", state.steps, record)
    self.close(summary)
    self.say(line)
    self.final_state = state
    return summary


def run_training(cfg: FinalConfig, workdir: str, out: TextIO,
                 progress: metrics_lib.Progress | None = None) -> dict[str, Any]:
  """Trains (or resumes training) the configured architecture; returns the summary."""
  return FinalRun(cfg, workdir, out, progress or metrics_lib.Progress()).execute()
