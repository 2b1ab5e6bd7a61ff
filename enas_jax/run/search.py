"""The ENAS search loop, written once for every (search space, task).

Every epoch:
  (a) shared phase: `search.shared_steps` steps (0: one pass over the training split), each on
      the next training batch with a fresh architecture from the controller;
  (b) controller phase: `search.controller_steps` REINFORCE updates, each on a validation batch;
  (c) derive (every `search.derive_every` epochs and at the end): sample `search.derive_samples`
      architectures, score each on one validation batch, evaluate the best on the whole
      validation split, and write it to the workdir.
At the end every derived architecture is re-scored on the whole validation split under the final
shared weights (scores from different epochs are not comparable: the weights kept training), and
the best is the search's answer (with `search.screen_steps`, the best that trains alone: screen.py).

Randomness: one base key per run (`seed`); separate streams for initialisation, shared steps,
controller steps and deriving, each folded with its step counter; data order a pure function of
(seed, pass). So the position in the loop (epoch, phase, step, data cursors) plus the arrays is the
whole state: a run resumed from a checkpoint continues bit for bit as if it had never stopped.
"""
from __future__ import annotations

import dataclasses
import time
import types
from typing import Any, Callable, Iterator, TextIO

import jax
import jax.numpy as jnp
import numpy as np

from enas_jax.controller import steps as controller_steps
from enas_jax.data.cursor import Cursor
from enas_jax.io import metrics as metrics_lib
from enas_jax.ops.params import count_params, set_learning_rate
from enas_jax.ops import guards
from enas_jax.ops.initialize import Initializer, initialize
from enas_jax.ops.shapes import zeros
from enas_jax.run import answer as answer_lib
from enas_jax.run import derive as derive_lib
from enas_jax.run import ahead as ahead_lib
from enas_jax.run import outputs
from enas_jax.run import parallel as parallel_lib
from enas_jax.run import screen as screen_lib
from enas_jax.run.config import SearchConfig
from enas_jax.run.program import SHARED_BLOCK, build_program, phase_sums_shapes
from enas_jax.run.runner import Diverged, Runner
from enas_jax.run.state import CONTROLLER, DERIVE, SHARED, SearchState
from enas_jax.spaces.registry import get_space
from enas_jax.tasks import search_task

# Streams folded into the run's base key.
(INIT_MODEL, INIT_CONTROLLER, SHARED_STREAM, CONTROLLER_STREAM, DERIVE_STREAM,
 FINETUNE_STREAM, SCREEN_STREAM) = range(7)
CHOOSING = "while choosing the answer after the last epoch (the search itself is complete)"
__all__ = ["Diverged", "SearchRun", "run_search"]


class _Rollback(Exception):
  pass


class SearchRun(Runner):
  """One search: the space, the task (data, steps, score), the compiled program, the loop."""
  OUTPUT_FILES = Runner.OUTPUT_FILES + outputs.arch_files("best_arch")  # and its answer's

  def __init__(self, cfg: SearchConfig, workdir: str, out: TextIO,
               progress: metrics_lib.Progress, compile_ahead: bool = True):
    parallel_lib.start_processes(cfg.parallel)  # before anything touches JAX
    parallel_lib.check_same_config(dataclasses.asdict(cfg))
    self.space = get_space(cfg.space)
    self.task = search_task(self.space, cfg)  # loads and checks the data
    super().__init__(cfg, workdir, out, progress, self.task.resumable_changes, "search")
    parallel_lib.check_same_data(lambda: self.data_fingerprint)
    self.base_key = jax.random.key(cfg.seed)
    self.parallel = (parallel_lib.DataParallel(cfg.parallel, {"data.batch_size":
                                                              cfg.data.batch_size})
                     if cfg.parallel.data_parallel else None)
    self.program = build_program(self.space, self.task, cfg.model, cfg.controller,
                                 cfg.search.derive_samples, cfg.search.warmup_epochs > 0,
                                 cfg.search.fair_every)
    self._shapes: dict[str, Any] | None = None
    self._finetune_step: Any = None
    self.model_init = Initializer(self.task.init_model)  # the start's and the screen's weights
    self.ahead = ahead_lib.SearchAhead(  # compiled in the background: not across hosts
        self.program, self.task, self.parallel, jax.random.fold_in(self.base_key,
                                                                   CONTROLLER_STREAM),
        compile_ahead and jax.process_count() == 1, self.check_compiled)

  # --- state
  def init_ctrl(self) -> controller_steps.ControllerState:
    return controller_steps.init_controller_state(
        self.program.controller, self.program.ctrl_optimizer,
        jax.random.fold_in(self.base_key, INIT_CONTROLLER))

  @property
  def shapes(self) -> dict[str, Any]:
    """Each phase's metric sums' shapes."""
    if self._shapes is None:
      self._shapes = phase_sums_shapes(
          self.program, self.task, jax.eval_shape(self.task.init_model, self.base_key),
          jax.eval_shape(self.init_ctrl), self.parallel)
    return self._shapes

  def fresh_state(self, compiled: bool = True) -> SearchState:
    key, sums = jax.random.fold_in(self.base_key, INIT_MODEL), self.shapes
    return SearchState(model=self.model_init(key, compiled=compiled,
                                             check=self.check_init_memory),
                       ctrl=initialize(self.init_ctrl, compiled=compiled),
                       sums={p: zeros(s) for p, s in sums.items()},
                       epoch_sums={p: zeros(s) for p, s in sums.items()})

  def check_memory(self, shapes: Any) -> None:
    """The state's memory (`Runner.check_memory`), and a derive's (`derive.check_memory`)."""
    super().check_memory(shapes)
    derive_lib.check_memory(self, types.SimpleNamespace(**shapes))

  def save(self, state: SearchState) -> None:
    super().save(state, must_be_finite={"model": state.model, "ctrl": state.ctrl})

  def restore_or_fresh(self) -> tuple[SearchState, int | None]:
    """The newest checkpoint's state (the log cut back to it) or a fresh state."""
    found = self.restore(SearchState)
    if found is None:
      self.open_log(None)
      return self.fresh_state(), None
    state, step, log_position = found
    self.open_log(log_position)
    return state, step

  # --- the loop
  def execute(self) -> dict[str, Any]:
    try:  # the workdir held; SIGTERM/SIGINT: save at the next step boundary, then stop
      with self.workdir_held(), self.stop_signals:
        return self._execute()
    finally:  # a run stopped before it needed them: no compile left running as Python exits
      self.ahead.join()

  def _execute(self) -> dict[str, Any]:
    state, step = self.restore_or_fresh()
    self.write_config()
    if step is None:
      self.say(self.task.describe(state.model, self.workdir))
    elif state.epoch >= self.cfg.search.epochs:
      self.say(f"the search in {self.workdir} is complete ({state.epoch} epochs, checkpoint "
               f"{step}); writing its summary again. Raise --config.search.epochs to go on.")
    else:
      self.say(f"resuming from checkpoint {step} in {self.checkpointer.directory}: epoch "
               f"{state.epoch + 1}, {state.phase} phase, step {state.phase_step} of it")
    while state.epoch < self.cfg.search.epochs:
      try:
        self.run_epoch(state)
      except _Rollback:
        state = self.roll_back(state)
    return self.finish(state)

  def roll_back(self, failed: SearchState) -> SearchState:
    cfg = self.cfg.search
    if failed.rollbacks >= cfg.max_rollbacks:
      raise Diverged(
          f"The shared-weight loss became NaN/Inf again after {failed.rollbacks} rollbacks "
          f"(search.max_rollbacks). Lower --config.shared.lr (now {self.cfg.shared.lr}) and run "
          f"the same command again: it resumes from the last good checkpoint.")
    self.log.close()
    state, step = self.restore_or_fresh()
    state.rollbacks = failed.rollbacks + 1
    state.lr_factor = failed.lr_factor * cfg.rollback_lr_factor
    self.say(f"divergence: rolled back to checkpoint {step} with the learning rate scaled by "
             f"{state.lr_factor:g} (rollback {state.rollbacks} of at most {cfg.max_rollbacks})")
    return state

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
      self.on_divergence(phase, step, int(record["skipped_steps"]))
    return record

  def on_divergence(self, phase: str, step: int, skipped: int) -> None:
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

  def phase_loop(self, state: SearchState, phase: str, batches: Iterator[Any],
                 step: Callable[[Any], None], extra: dict[str, float], next_phase: str) -> None:
    """Runs `step(batch)` on each batch of the phase in progress: counts (in the state's
    `<phase>_steps`), records every `search.log_every` steps and at the phase's end, shows
    progress, saves on schedule."""
    n, counter = state.phase_total, f"{phase}_steps"
    label = f"epoch {state.epoch + 1} {phase}"
    for batch in batches:
      step(batch)
      state.phase_step += 1
      setattr(state, counter, getattr(state, counter) + 1)
      done = state.phase_step
      if done % self.cfg.search.log_every == 0 or done == n:
        rec = self.record(state, phase, getattr(state, counter), extra)
        self.progress.show(label, done, n, self.task.progress_figures(phase, rec), force=True)
      else:
        self.progress.show(label, done, n)
      if done == n:
        state.phase, state.phase_step, state.phase_total = next_phase, 0, 0
      every = self.cfg.checkpoint.every_steps
      if every and state.steps % every == 0:
        self.save(state)
      self.check_stop(state)

  def shared_phase(self, state: SearchState) -> None:
    """(a) trains the shared weights on architectures drawn a block at a time."""
    if state.phase_step == 0:
      state.phase_total = self.task.shared_phase_length(state)
    if state.phase_total == 0:  # a task without shared weights
      state.phase = CONTROLLER
      return
    lr = self.cfg.shared.lr_at_epoch(state.epoch) * state.lr_factor
    state.model = state.model.replace(opt_state=set_learning_rate(state.model.opt_state, lr))
    key = jax.random.fold_in(self.base_key, SHARED_STREAM)
    warming = self.warming_up(state)
    values = self.shared_architectures(state, key, warming)

    def step(batch: Any) -> None:
      args = self.placed(batch, state.model, next(values), key, state.sums[SHARED])
      self.check_call_memory(self.program.shared_step, args, "shared step")
      state.model, state.sums[SHARED] = self.program.shared_step(*args)
      self.ahead.start(state)  # the first shared step is compiled: now the controller's
      self.ahead.poll()  # a controller program that cannot fit: refused now

    batches = self.task.shared_batches(state, state.phase_total - state.phase_step)
    self.phase_loop(state, SHARED, batches, step, {"lr": lr, "warmup": float(warming)},
                    CONTROLLER)

  def shared_architectures(self, state: SearchState, key: jax.Array, warming: bool
                           ) -> Iterator[np.ndarray]:
    """The decision values of the shared steps from the model's step on, drawn a block at a
    time from the controller as it is now (uniformly while warming up)."""
    draw = self.program.warmup_draw if warming else self.program.shared_draw
    first = int(state.model.step)  # every shared step, skipped or not, counts one
    while True:
      args = (state.ctrl, key, np.int32(first))
      yield from np.asarray(draw(*(self.parallel.place_replicated(args) if self.parallel
                                   else args)))
      first += SHARED_BLOCK

  def warming_up(self, state: SearchState) -> bool:
    """In the warm-up epochs the shared weights train on uniformly sampled architectures and
    the controller does not learn (`search.warmup_epochs`)."""
    return state.epoch < self.cfg.search.warmup_epochs

  def controller_phase(self, state: SearchState) -> None:
    """(b) REINFORCE updates of the controller, rewarded on validation batches."""
    self.ahead.ready(state)
    n = state.phase_total = 0 if self.warming_up(state) else self.cfg.search.controller_steps
    key = jax.random.fold_in(self.base_key, CONTROLLER_STREAM)

    def step(batch: Any) -> None:
      ctrl, params, stats, batch, k, sums = self.placed(
          batch, state.ctrl, state.model.params, state.model.batch_stats, key,
          state.sums[CONTROLLER])
      state.ctrl, state.sums[CONTROLLER] = self.program.controller_step(ctrl, params, stats,
                                                                        batch, k, sums)

    self.phase_loop(state, CONTROLLER, self.task.reward_batches(state, n - state.phase_step),
                    step, {}, DERIVE)
    if n == 0:
      state.phase = DERIVE

  def placed(self, batch: Any, *replicated: Any, after: int = 2) -> tuple[Any, ...]:
    """A phase function's arguments as it is called: on one device as they are; data-parallel,
    the states, key and sums replicated and the batch split, the same way every call (so the
    step compiles once, and derive's calls reuse the controller phase's programs). Returns the
    arguments in the call's order: the batch before the last `after` (key and sums; derive:
    key)."""
    if self.parallel is None:
      return (*replicated[:-after], batch, *replicated[-after:])
    placed = self.parallel.place_replicated(replicated)
    return (*placed[:-after], self.parallel.place_batch(batch, self.task.split_keys),
            *placed[-after:])

  def run_epoch(self, state: SearchState) -> None:
    start = time.time()
    if state.phase == SHARED:
      self.shared_phase(state)
    if state.phase == CONTROLLER:
      self.controller_phase(state)
    last = state.epoch + 1 == self.cfg.search.epochs
    shared, control = (guards.sums_to_record(state.epoch_sums[p]) for p in (SHARED, CONTROLLER))
    reward = control["reward"] if control["steps"] else None
    if control["steps"]:
      derive_lib.add_cost(self.task, state, control["steps"] * self.cfg.controller.num_samples,
                          control.get(self.task.cost_figure, 0.0))
    derived = (self.derive(state, reward)
               if (state.epoch + 1) % self.cfg.search.derive_every == 0 or last else None)
    state.epoch_sums = {p: zeros(s) for p, s in self.shapes.items()}
    state.epoch += 1
    state.phase = SHARED
    line = f"epoch {state.epoch}/{self.cfg.search.epochs}"
    line += self.task.epoch_figures(shared, control, derived)
    self.log.write("epoch", state.epoch, {"seconds": time.time() - start,
                                          **({"reward": reward} if reward is not None else {})})
    self.save(state)
    self.say(line + f"  ({time.time() - start:.1f} s)")
    self.check_stop(state)

  def derive(self, state: SearchState, reward: float | None) -> dict[str, Any]:
    """(c) This epoch's architecture derived, recorded, written and drawn (`run/derive.py`)."""
    self.ahead.ready(state)
    key = jax.random.fold_in(jax.random.fold_in(self.base_key, DERIVE_STREAM), state.epoch)
    return derive_lib.derive(self, state, reward, key)

  def evaluate(self, state: SearchState, arch: Any) -> float:
    return self.task.evaluate(state.model, arch)

  def finetuned(self, model: Any, arch: Any, steps: int) -> Any:
    """A copy of `model` (the shared weights' state) after `steps` shared steps on `arch` alone:
    the training split's first `steps` batches from its start, the step keys a function of the
    run's key and the step's index only, so every architecture gets the same batches and keys."""
    if self._finetune_step is None:
      self._finetune_step = jax.jit(self.task.train_step, donate_argnums=0)
    copy = jax.tree_util.tree_map(jnp.copy, model)
    walk = types.SimpleNamespace(model=copy, train_cursor=Cursor())  # shared_batches' view
    key = jax.random.fold_in(self.base_key, FINETUNE_STREAM)
    arch = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.int32), arch)
    for i, batch in enumerate(self.task.shared_batches(walk, steps)):
      walk.model, _ = self._finetune_step(*self.placed(batch, walk.model, arch,
                                                       jax.random.fold_in(key, i), after=2))
    return walk.model

  def answer_score(self, state: SearchState, arch: Any) -> float:
    """The whole-split figure that picks the answer among the derived architectures: under the
    final shared weights, or after `search.finetune_steps` steps of them on `arch` alone."""
    self.check_stop(state, CHOOSING)  # a signal: stop between candidates
    steps = self.cfg.search.finetune_steps
    model = self.finetuned(state.model, arch, steps) if steps else state.model
    return self.task.evaluate(model, arch)

  def finish(self, state: SearchState) -> dict[str, Any]:
    """Re-scores every distinct derived architecture (and the final controller's best ones:
    `answer.candidates`) under the final shared weights (scores from different epochs are not
    comparable), writes the best and the summary."""
    m, space, src = self.task.metric, self.space, self.task.figure_source
    self.stop_signals.then = "stopping after the candidate in progress (the search is saved)"
    archs = answer_lib.candidates(self, state)
    rescored = {authors: self.answer_score(state, arch) for authors, arch in archs.items()}
    note = answer_lib.unscored_note(rescored, f"valid {m}", self.cfg.search.finetune_steps)
    if note:
      self.say(note)
    names = list(rescored)
    order = [names[i] for i in answer_lib.best_first(list(rescored.values()),
                                                     self.task.lower_is_better)]
    best, screened = screen_lib.pick(self, order, archs,  # order[0] when not screening
                                     jax.random.fold_in(self.base_key, SCREEN_STREAM),
                                     lambda: self.check_stop(state, CHOOSING))
    arch = archs[best]
    title = outputs.picture_title(None, {f"best: valid {m}": rescored[best]})
    self.write_arch(space, "best_arch", arch, {f"valid_{m}": rescored[best]}, title)
    summary = {
        "space": self.cfg.space, "architecture": space.to_json(arch), "authors": best,
        f"valid_{m}_{src}": rescored[best],
        "rescored": [{"authors": a, f"valid_{m}_{src}": v} for a, v in rescored.items()],
        "history": state.history, "epochs": state.epoch, "shared_steps": state.shared_steps,
        "controller_steps": state.controller_steps,
        **{k: getattr(self.cfg.search, k) for k in ("finetune_steps", "final_candidates")
           if getattr(self.cfg.search, k)},
        "shared_params": count_params(state.model.params),
        **({"simulated_cost": dict(state.totals)} if state.totals else {}),
        **({"screen": screened} if screened else {}),
        **self.task.summary_extras(lambda a: self.answer_score(state, a), arch)}
    self.close(summary)
    self.final_state = state
    return summary


def run_search(cfg: SearchConfig, workdir: str, out: TextIO,
               progress: metrics_lib.Progress | None = None, compile_ahead: bool = True
               ) -> dict[str, Any]:
  """Runs (or resumes) the whole search; writes config.json, metrics, architectures,
  checkpoints and summary.json to `workdir`. `compile_ahead`: compile the controller phase's
  programs in the background during the first shared phase (the same programs, sooner)."""
  return SearchRun(cfg, workdir, out, progress or metrics_lib.Progress(),
                   compile_ahead).execute()
