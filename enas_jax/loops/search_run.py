"""What every ENAS search loop shares: the run state, checkpoints, resume, divergence, the epoch.

Every epoch:
  (a) shared phase: `search.shared_steps` steps (0: one pass over the training split), each on
      the next training batch with a fresh architecture sampled inside the jitted step;
  (b) controller phase: `search.controller_steps` REINFORCE updates, each rewarded on the next
      validation batch;
  (c) derive (every `search.derive_every` epochs and at the end): sample `search.derive_samples`
      architectures, score each on one validation batch, evaluate the best on the whole
      validation split, and write it to the workdir.
At the end every derived architecture is re-scored on the whole validation split under the final
shared weights (scores from different epochs are not comparable: the weights kept training), and
the best is the search's answer.

A search space's loop (`rnn_search`, `cnn_search`) subclasses `SearchRun` and supplies the data,
the compiled program and the space-specific hooks (batches, scoring, formats, the summary).

Randomness: one base key per run (`seed`); separate streams for initialisation, shared steps,
controller steps and deriving, each folded with its step counter; data order a pure function of
(seed, pass). So the position in the loop (epoch, phase, step, data cursors) plus the arrays is the
whole state: a run resumed from a checkpoint continues bit for bit as if it had never stopped.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Callable, Iterator, Literal, TextIO

import jax
import jax.numpy as jnp

from enas_jax import checkpoints as ckpt_lib
from enas_jax import metrics as metrics_lib
from enas_jax import parallel as parallel_lib
from enas_jax import workdir as workdir_lib
from enas_jax.drawing import render
from enas_jax.data.lm_batches import Cursor
from enas_jax.errors import UserError
from enas_jax.loops import guards
from enas_jax.loops.controller_steps import ControllerState

# Streams folded into the run's base key.
INIT_MODEL, INIT_CONTROLLER, SHARED_STREAM, CONTROLLER_STREAM, DERIVE_STREAM = range(5)
SHARED, CONTROLLER, DERIVE = "shared", "controller", "derive"


@dataclasses.dataclass(frozen=True)
class SearchLoopConfig:
  """The `search` section (see configs/ptb_rnn.py for comments)."""

  epochs: int = 150
  shared_steps: int = 0
  controller_steps: int = 2000
  derive_every: int = 1
  derive_samples: int = 100
  log_every: int = 50
  on_divergence: Literal["skip", "rollback", "stop"] = "skip"
  rollback_lr_factor: float = 0.5
  max_rollbacks: int = 3

  def validate(self, section: str = "search") -> None:
    for name in ("epochs", "derive_every", "derive_samples", "log_every"):
      if getattr(self, name) < 1:
        raise UserError(f"Config field `{section}.{name}` must be at least 1, got "
                        f"{getattr(self, name)}.")
    for name in ("shared_steps", "controller_steps", "max_rollbacks"):
      if getattr(self, name) < 0:
        raise UserError(f"Config field `{section}.{name}` must be >= 0, got "
                        f"{getattr(self, name)}.")
    if not 0 < self.rollback_lr_factor < 1:
      raise UserError(f"Config field `{section}.rollback_lr_factor` must be in (0, 1), got "
                      f"{self.rollback_lr_factor}.")


@dataclasses.dataclass
class SearchState:
  """Everything the loop carries; `arrays()` and `position()` are what a checkpoint saves."""

  model: Any  # the shared weights' training state (params, batch_stats, optimizer state, ...)
  ctrl: ControllerState
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

  def arrays(self) -> dict[str, Any]:
    return {"model": self.model, "ctrl": self.ctrl, "sums": self.sums,
            "epoch_sums": self.epoch_sums}

  def position(self) -> dict[str, Any]:
    return {"epoch": self.epoch, "phase": self.phase, "phase_step": self.phase_step,
            "phase_total": self.phase_total, "shared_steps": self.shared_steps,
            "controller_steps": self.controller_steps,
            "train_cursor": dataclasses.asdict(self.train_cursor),
            "valid_cursor": dataclasses.asdict(self.valid_cursor), "history": self.history,
            "lr_factor": self.lr_factor, "rollbacks": self.rollbacks}

  @property
  def save_index(self) -> int:
    """Strictly increasing over the run: a mid-epoch save and the epoch-end save never clash."""
    return self.shared_steps + self.controller_steps + self.epoch

  @classmethod
  def from_saved(cls, arrays: dict[str, Any], pos: dict[str, Any]) -> "SearchState":
    return cls(model=arrays["model"], ctrl=arrays["ctrl"], sums=arrays["sums"],
               epoch_sums=arrays["epoch_sums"], epoch=pos["epoch"], phase=pos["phase"],
               phase_step=pos["phase_step"], phase_total=pos["phase_total"],
               shared_steps=pos["shared_steps"], controller_steps=pos["controller_steps"],
               train_cursor=Cursor(**pos["train_cursor"]),
               valid_cursor=Cursor(**pos["valid_cursor"]), history=pos["history"],
               lr_factor=pos["lr_factor"], rollbacks=pos["rollbacks"])


def zeros(shapes: Any) -> Any:
  return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def metric_shapes(step: Any) -> Any:
  """A function of `step`'s arguments (less the sums) giving its guarded metric sums' shapes."""
  def shapes(*args):
    metrics = jax.eval_shape(step, *args)[1]
    f32 = jax.ShapeDtypeStruct((), jnp.float32)
    return {**metrics, "ok_steps": f32, "steps": f32}
  return shapes


class Diverged(UserError):
  """The shared or controller loss became NaN/Inf and the policy says stop."""


class _Rollback(Exception):
  pass


class SearchRun:
  """One search. Subclasses set `program`, `data`, `RESUMABLE_CHANGES` and the hooks below.

  The program must have `shared_step(model, ctrl_params, batch, key, sums)` and
  `controller_step(ctrl, params, batch_stats, batch, key, sums)`, both guarded and jitted.
  """

  # Config fields that may change when a run is resumed (schedules and bookkeeping); any other
  # difference means the checkpoint belongs to another experiment.
  RESUMABLE_CHANGES: tuple[str, ...] = ()
  # Batch entries whose first axis is the batch axis (split over devices when data-parallel).
  SPLIT_KEYS: tuple[str, ...] = ()
  program: Any

  def __init__(self, cfg: Any, workdir: str, out: TextIO, progress: metrics_lib.Progress):
    self.cfg = cfg
    self.workdir = workdir
    self.out = out
    self.progress = progress
    workdir_lib.prepare(workdir)
    self.base_key = jax.random.key(cfg.seed)
    self._checkpointer: ckpt_lib.Checkpointer | None = None
    self.log: metrics_lib.MetricsLog | None = None
    self.parallel = (parallel_lib.DataParallel(cfg.parallel, {"data.batch_size":
                                                              cfg.data.batch_size})
                     if cfg.parallel.data_parallel else None)

  @property
  def checkpointer(self) -> ckpt_lib.Checkpointer:
    """Opened on first use, after the subclass has loaded (and checked) its data: a user's
    mistake found there must not leave orbax's background threads behind."""
    if self._checkpointer is None:
      self._checkpointer = ckpt_lib.Checkpointer(os.path.join(self.workdir, "checkpoints"),
                                                 self.cfg.checkpoint.keep, self.say)
    return self._checkpointer

  # --- hooks for the search space
  def init_model(self) -> Any:
    """The shared weights' fresh training state (traceable)."""
    raise NotImplementedError

  def init_ctrl(self) -> ControllerState:
    raise NotImplementedError

  def example_batches(self) -> tuple[Any, Any]:
    """One shared-phase batch and one reward batch (shapes only matter)."""
    raise NotImplementedError

  def shared_phase_length(self, state: SearchState) -> int:
    raise NotImplementedError

  def set_learning_rate(self, model: Any, lr: float) -> Any:
    raise NotImplementedError

  def shared_batches(self, state: SearchState, n: int) -> Iterator[Any]:
    """The next `n` training batches; may adjust `state.model` before each (e.g. reset state)."""
    raise NotImplementedError

  def reward_batches(self, state: SearchState, n: int) -> Iterator[Any]:
    raise NotImplementedError

  def derive(self, state: SearchState, reward: float | None) -> dict[str, Any]:
    """Derives, records, writes and draws this epoch's architecture (`reward`: the epoch's mean
    controller reward, None without controller steps); returns its history entry."""
    raise NotImplementedError

  def describe(self, state: SearchState) -> None:
    """Says what the (fresh) search is about."""

  def epoch_figures(self, shared: dict[str, float], control: dict[str, float],
                    derived: dict[str, Any] | None) -> str:
    raise NotImplementedError

  def progress_figures(self, phase: str, record: dict[str, float]) -> dict[str, float]:
    raise NotImplementedError

  def finish(self, state: SearchState) -> dict[str, Any]:
    raise NotImplementedError

  # --- state
  def _metric_shapes(self) -> dict[str, Any]:
    prog = self.program
    model = jax.eval_shape(self.init_model)
    cstate = jax.eval_shape(self.init_ctrl)
    train_batch, reward_batch = self.example_batches()
    key = jax.random.key(0)
    return {SHARED: prog.shared_metric_shapes(model, cstate.params, train_batch, key),
            CONTROLLER: prog.controller_metric_shapes(cstate, model.params, model.batch_stats,
                                                      reward_batch, key)}

  def fresh_state(self) -> SearchState:
    return SearchState(model=jax.jit(self.init_model)(), ctrl=jax.jit(self.init_ctrl)(),
                       sums={p: zeros(s) for p, s in self.shapes.items()},
                       epoch_sums={p: zeros(s) for p, s in self.shapes.items()})

  @property
  def shapes(self) -> dict[str, Any]:
    if not hasattr(self, "_shapes"):
      self._shapes = self._metric_shapes()
    return self._shapes

  # --- checkpoints
  def save(self, state: SearchState) -> None:
    self.log.flush()
    meta = {"position": state.position(), "metrics_bytes": self.log.tell(),
            "config": dataclasses.asdict(self.cfg)}
    try:
      self.checkpointer.save(state.save_index, state.arrays(), meta,
                             must_be_finite={"model": state.model, "ctrl": state.ctrl})
    except ValueError as err:  # NaN/Inf in the state: never saved
      raise Diverged(f"Not saving a checkpoint: {err}. The run stops; it resumes from the last "
                     f"good checkpoint in {self.checkpointer.directory}.") from None

  def _check_saved_config(self, meta: dict[str, Any]) -> None:
    diffs = ckpt_lib.check_resumable(meta["config"], self.cfg, self.RESUMABLE_CHANGES,
                                     self.workdir, "search")
    if diffs:
      self.say(f"note: resuming with changed fields: {'; '.join(diffs)}")

  def restore(self) -> tuple[SearchState, int, int] | None:
    """(state, checkpoint step, bytes of metrics.jsonl it had seen), or None."""
    template = jax.eval_shape(lambda: self.fresh_state().arrays())  # shapes: nothing computed
    found = self.checkpointer.restore_latest(template, self._check_saved_config)
    if found is None:
      return None
    arrays, meta, step = found
    return SearchState.from_saved(arrays, meta["position"]), step, meta["metrics_bytes"]

  def open_log(self, resume_bytes: int | None, resume_step: int) -> None:
    # drop records written after the checkpoint (or all of them: a fresh start)
    workdir_lib.truncate(os.path.join(self.workdir, "metrics.jsonl"), resume_bytes or 0)
    self.log = metrics_lib.MetricsLog(self.workdir)
    if resume_bytes is not None:
      self.log.events.session_start(resume_step)

  # --- the loop
  def execute(self) -> dict[str, Any]:
    state, resumed = self.start()
    workdir_lib.write_json(os.path.join(self.workdir, "config.json"),
                           dataclasses.asdict(self.cfg))
    if not resumed:
      self.describe(state)
    while state.epoch < self.cfg.search.epochs:
      try:
        self.run_epoch(state)
      except _Rollback:
        state = self.roll_back(state)
    return self.finish(state)

  def start(self) -> tuple[SearchState, bool]:
    found = self.restore()
    if found is None:
      self.open_log(None, 0)
      return self.fresh_state(), False
    state, step, metrics_bytes = found
    self.open_log(metrics_bytes, state.shared_steps)
    if state.epoch >= self.cfg.search.epochs:
      self.say(f"the search in {self.workdir} is complete ({state.epoch} epochs, checkpoint "
               f"{step}); writing its summary again. Raise --config.search.epochs to go on.")
    else:
      self.say(f"resuming from checkpoint {step} in {self.checkpointer.directory}: epoch "
               f"{state.epoch + 1}, {state.phase} phase, step {state.phase_step} of it")
    return state, True

  def roll_back(self, failed: SearchState) -> SearchState:
    cfg = self.cfg.search
    if failed.rollbacks >= cfg.max_rollbacks:
      raise Diverged(
          f"The shared-weight loss became NaN/Inf again after {failed.rollbacks} rollbacks "
          f"(search.max_rollbacks). Lower --config.shared.lr (now {self.cfg.shared.lr}) and run "
          f"the same command again: it resumes from the last good checkpoint.")
    self.log.close()
    found = self.restore()
    if found is None:
      self.open_log(None, 0)
      state, step = self.fresh_state(), None
    else:
      state, step, metrics_bytes = found
      self.open_log(metrics_bytes, state.shared_steps)
    state.rollbacks = failed.rollbacks + 1
    state.lr_factor = failed.lr_factor * cfg.rollback_lr_factor
    self.say(f"divergence: rolled back to checkpoint {step} with the learning rate scaled by "
             f"{state.lr_factor:g} (rollback {state.rollbacks} of at most {cfg.max_rollbacks})")
    return state

  def after_step(self, state: SearchState) -> None:
    """Saves every `checkpoint.every_steps` steps (shared and controller counted together)."""
    every = self.cfg.checkpoint.every_steps
    if every and (state.shared_steps + state.controller_steps) % every == 0:
      self.save(state)

  def log_pictures(self, epoch: int, best: dict[str, str], sampled_dot: str) -> None:
    """TensorBoard images at step `epoch + 1`: `arch/best` from the picture files just written
    for the derived architecture (`best`: extension -> path, its PNG reused) and `arch/sampled`
    rendered from `sampled_dot`. Skipped without Graphviz (the search has said so once)."""
    if "png" not in best:
      return
    with open(best["png"], "rb") as f:
      pngs = {"arch/best": f.read(), "arch/sampled": render.render(sampled_dot, "png")}
    for tag, png in pngs.items():
      self.log.events.image(epoch + 1, tag, png, *render.png_size(png))

  def say(self, text: str) -> None:
    self.progress.clear()
    self.out.write(text + "\n")
    self.out.flush()

  def record(self, state: SearchState, phase: str, step: int, extra: dict[str, float]
             ) -> dict[str, float]:
    """Logs the phase's sums since the last record and resets them; handles divergence."""
    sums = state.sums[phase]
    record = guards.sums_to_record(sums)
    record.update(extra)
    self.log.write(phase, step, record)
    state.epoch_sums[phase] = jax.tree_util.tree_map(jnp.add, state.epoch_sums[phase], sums)
    state.sums[phase] = zeros(self.shapes[phase])
    if record["skipped_steps"]:
      self.on_divergence(state, phase, step, int(record["skipped_steps"]))
    return record

  def on_divergence(self, state: SearchState, phase: str, step: int, skipped: int) -> None:
    policy = self.cfg.search.on_divergence
    message = (f"{skipped} {phase} step(s) up to step {step} had a NaN/Inf loss or weights and "
               f"were skipped")
    if policy == "stop":
      self.log.flush()
      raise Diverged(f"{message}; search.on_divergence=stop ends the run. Lower "
                     f"--config.shared.lr (now {self.cfg.shared.lr}) and run the same command "
                     f"again: it resumes from the last good checkpoint.")
    if policy == "rollback":
      raise _Rollback()
    self.say(f"warning: {message} (search.on_divergence=skip).")

  # (a) shared weights
  def shared_phase(self, state: SearchState) -> None:
    cfg, prog = self.cfg, self.program
    if state.phase_step == 0:
      state.phase_total = self.shared_phase_length(state)
    n = state.phase_total
    lr = cfg.shared.lr_at_epoch(state.epoch) * state.lr_factor
    state.model = self.set_learning_rate(state.model, lr)
    key = jax.random.fold_in(self.base_key, SHARED_STREAM)
    label = f"epoch {state.epoch + 1} shared"
    for batch in self.shared_batches(state, n - state.phase_step):
      model, ctrl_params, batch, key, sums = self.placed(
          batch, state.model, state.ctrl.params, key, state.sums[SHARED])
      state.model, state.sums[SHARED] = prog.shared_step(model, ctrl_params, batch, key, sums)
      state.phase_step += 1
      state.shared_steps += 1
      done = state.phase_step
      if done % cfg.search.log_every == 0 or done == n:
        rec = self.record(state, SHARED, state.shared_steps, {"lr": lr})
        self.progress.show(label, done, n, self.progress_figures(SHARED, rec), force=True)
      else:
        self.progress.show(label, done, n)
      if done == n:
        state.phase, state.phase_step, state.phase_total = CONTROLLER, 0, 0
      self.after_step(state)

  # (b) controller
  def controller_phase(self, state: SearchState) -> None:
    cfg, prog = self.cfg, self.program
    n = state.phase_total = cfg.search.controller_steps
    key = jax.random.fold_in(self.base_key, CONTROLLER_STREAM)
    label = f"epoch {state.epoch + 1} controller"
    for batch in self.reward_batches(state, n - state.phase_step):
      ctrl, params, batch_stats, batch, key, sums = self.placed(
          batch, state.ctrl, state.model.params, state.model.batch_stats, key,
          state.sums[CONTROLLER])
      state.ctrl, state.sums[CONTROLLER] = prog.controller_step(ctrl, params, batch_stats, batch,
                                                                key, sums)
      state.phase_step += 1
      state.controller_steps += 1
      done = state.phase_step
      if done % cfg.search.log_every == 0 or done == n:
        rec = self.record(state, CONTROLLER, state.controller_steps, {})
        self.progress.show(label, done, n, self.progress_figures(CONTROLLER, rec), force=True)
      else:
        self.progress.show(label, done, n)
      if done == n:
        state.phase, state.phase_step, state.phase_total = DERIVE, 0, 0
      self.after_step(state)
    if n == 0:
      state.phase = DERIVE

  def placed(self, batch: Any, *replicated: Any) -> tuple[Any, ...]:
    """A phase function's arguments as it is called: on one device as they are; data-parallel,
    the states, key and sums replicated and the batch split, the same way every call (so the
    step compiles once). Returns (*replicated, batch, key, sums) in the call's order."""
    if self.parallel is None:
      return (*replicated[:-2], batch, *replicated[-2:])
    placed = self.parallel.place_replicated(replicated)
    return (*placed[:-2], self.parallel.place_batch(batch, self.SPLIT_KEYS), *placed[-2:])

  def derive_key(self, state: SearchState) -> jax.Array:
    return jax.random.fold_in(jax.random.fold_in(self.base_key, DERIVE_STREAM), state.epoch)

  def run_epoch(self, state: SearchState) -> None:
    start = time.time()
    if state.phase == SHARED:
      self.shared_phase(state)
    if state.phase == CONTROLLER:
      self.controller_phase(state)
    last = state.epoch + 1 == self.cfg.search.epochs
    shared, control = (guards.sums_to_record(state.epoch_sums[p]) for p in (SHARED, CONTROLLER))
    reward = control["reward"] if control["steps"] else None
    derived = (self.derive(state, reward)
               if (state.epoch + 1) % self.cfg.search.derive_every == 0 or last else None)
    state.epoch_sums = {p: zeros(s) for p, s in self.shapes.items()}
    state.epoch += 1
    state.phase = SHARED
    line = f"epoch {state.epoch}/{self.cfg.search.epochs}"
    line += self.epoch_figures(shared, control, derived)
    self.log.write("epoch", state.epoch, {"seconds": time.time() - start,
                                          **({"reward": reward} if reward is not None else {})})
    self.save(state)
    self.say(line + f"  ({time.time() - start:.1f} s)")

  def rescore(self, state: SearchState, score: Callable[[str], float], lower_is_better: bool
              ) -> tuple[dict[str, float], str]:
    """Each distinct derived architecture (authors' string) scored again under the final shared
    weights (scores from different epochs are not comparable), and the best of them."""
    rescored: dict[str, float] = {}
    for entry in state.history:
      if entry["authors"] not in rescored:
        rescored[entry["authors"]] = score(entry["authors"])
    pick = min if lower_is_better else max
    return rescored, pick(rescored, key=rescored.get)

  def close(self, state: SearchState, summary: dict[str, Any]) -> dict[str, Any]:
    """Writes summary.json, closes the log and the checkpointer; returns the summary."""
    with open(os.path.join(self.workdir, "summary.json"), "w") as f:
      json.dump(summary, f, indent=2)
    self.log.close()
    self.checkpointer.close()
    self.final_state = state
    return summary


def write_arch_files(stem: str, arch_json: dict[str, Any], authors: str,
                     extra: dict[str, Any], dot_source: str,
                     say: Callable[[str], None] | None = None) -> dict[str, str]:
  """Writes `stem.json` (our JSON plus `extra`), `stem.txt` (the authors' string) and the
  picture (`stem.dot`, and `stem.png`/`stem.svg` when Graphviz is installed); returns the
  picture's {extension: path}."""
  os.makedirs(os.path.dirname(stem), exist_ok=True)
  with open(stem + ".json", "w") as f:
    json.dump({**arch_json, **extra}, f, indent=2)
  with open(stem + ".txt", "w") as f:
    f.write(authors + "\n")
  return render.write_picture(dot_source, stem, say=say)


def picture_title(epoch: int | None, figures: dict[str, float | None]) -> str:
  """The caption of an architecture picture: "epoch 3  reward 0.412  valid ppl 123.4"."""
  parts = [f"epoch {epoch + 1}"] if epoch is not None else []
  parts += [f"{name} {value:.4g}" for name, value in figures.items() if value is not None]
  return "  ".join(parts)
