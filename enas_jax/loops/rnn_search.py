"""The ENAS recurrent-cell search loop: alternate shared-weight and controller training, derive.

Every epoch:
  (a) shared phase: `search.shared_steps` steps (0: one pass over the training split), each on
      the next training window with a fresh architecture sampled inside the jitted step;
  (b) controller phase: `search.controller_steps` REINFORCE updates, each rewarded on the next
      validation window;
  (c) derive (every `search.derive_every` epochs and at the end): sample `search.derive_samples`
      architectures, score each on one validation window, evaluate the best on the whole
      validation split, and write it to the workdir.
At the end every derived cell is re-scored on the whole validation split under the final shared
weights (perplexities from different epochs are not comparable: the weights kept training), and
the best is the search's answer.

Randomness: one base key per run (`seed`); separate streams for initialisation, shared steps,
controller steps and deriving, each folded with its step counter. Data order is sequential, and
AWD-style variable window lengths are a pure function of (seed, pass). So the position in the loop
(epoch, phase, step, data cursors) plus the arrays is the whole state: a run resumed from a
checkpoint continues bit for bit as if it had never stopped.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Literal, TextIO

import jax
import jax.numpy as jnp
import numpy as np

from enas_jax import checkpoints as ckpt_lib
from enas_jax import controller as ctl
from enas_jax import metrics as metrics_lib
from enas_jax import workdir as workdir_lib
from enas_jax.configuration import from_section
from enas_jax.data import TextDataConfig, load_corpus
from enas_jax.data.lm_batches import Cursor, WindowStream, batchify, windows
from enas_jax.data.text import Corpus
from enas_jax.errors import UserError
from enas_jax.loops import guards, lm_steps
from enas_jax.loops import rnn_search_steps as search_steps
from enas_jax.spaces.rnn import arch as arch_lib
from enas_jax.spaces.rnn import formats
from enas_jax.spaces.rnn.model import RNNLanguageModel, RNNModelConfig, count_params

# Streams folded into the run's base key.
_INIT_LM, _INIT_CONTROLLER, _SHARED, _CONTROLLER, _DERIVE = range(5)
SHARED, CONTROLLER, DERIVE = "shared", "controller", "derive"
# Config fields that may change when a run is resumed (schedules and bookkeeping); any other
# difference means the checkpoint belongs to another experiment.
RESUMABLE_CHANGES = ("search.epochs", "search.log_every", "search.on_divergence",
                     "search.rollback_lr_factor", "search.max_rollbacks", "shared.lr",
                     "shared.lr_decay", "shared.lr_decay_start_epoch", "checkpoint.",
                     "deterministic")


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


@dataclasses.dataclass(frozen=True)
class RNNSearchConfig:
  """A whole recurrent search config (configs/ptb_rnn.py, configs/quickstart.py)."""

  seed: int = 0
  deterministic: bool = False
  data: TextDataConfig = dataclasses.field(default_factory=TextDataConfig)
  model: RNNModelConfig = dataclasses.field(default_factory=RNNModelConfig)
  shared: lm_steps.SharedTrainConfig = dataclasses.field(
      default_factory=lm_steps.SharedTrainConfig)
  controller: ctl.ControllerConfig = dataclasses.field(default_factory=ctl.ControllerConfig)
  search: SearchLoopConfig = dataclasses.field(default_factory=SearchLoopConfig)
  checkpoint: ckpt_lib.CheckpointConfig = dataclasses.field(
      default_factory=ckpt_lib.CheckpointConfig)


def config_from_dict(config: Any) -> RNNSearchConfig:
  """The ConfigDict of a config file -> the checked, frozen RNNSearchConfig."""
  return from_section(RNNSearchConfig, "", config)


# --- the compiled program ------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SearchProgram:
  """The model, the controller and the jitted phase functions (each compiled once)."""

  model: RNNLanguageModel
  controller: ctl.Controller
  lm_optimizer: Any
  ctrl_optimizer: Any
  shared_step: Any  # (lm_state, ctrl_params, batch, key, sums) -> (lm_state, sums)
  controller_step: Any  # (cstate, params, batch_stats, batch, key, sums) -> (cstate, sums)
  derive_step: Any  # (ctrl_params, params, batch_stats, batch, key) -> (values_SxD, ppl_S)
  eval_step: Any  # (params, batch_stats, batch, hidden, arch) -> (nll_sum, count, hidden)
  shared_metric_shapes: Any  # function: same arguments as shared_step less sums -> shapes
  controller_metric_shapes: Any  # likewise for controller_step


def _metric_shapes(step: Any) -> Any:
  def shapes(*args):
    metrics = jax.eval_shape(step, *args)[1]
    f32 = jax.ShapeDtypeStruct((), jnp.float32)
    return {**metrics, "ok_steps": f32, "steps": f32}
  return shapes


def build_program(cfg: RNNSearchConfig, vocab_size: int) -> SearchProgram:
  model = RNNLanguageModel(cfg.model, vocab_size)
  lm_opt = lm_steps.make_optimizer(cfg.shared)
  train_step, eval_step = lm_steps.make_lm_steps(model, lm_opt, cfg.shared.l2)
  controller = ctl.Controller(arch_lib.decisions(cfg.model.num_nodes), cfg.controller)
  ctrl_opt = search_steps.make_controller_optimizer(cfg.controller)
  shared_step, controller_step = search_steps.make_search_steps(
      controller, cfg.controller, ctrl_opt, train_step, eval_step, cfg.model.hidden_dim)
  derive_step = search_steps.make_derive_step(controller, eval_step, cfg.model.hidden_dim,
                                              cfg.search.derive_samples)
  return SearchProgram(
      model=model, controller=controller, lm_optimizer=lm_opt, ctrl_optimizer=ctrl_opt,
      shared_step=jax.jit(guards.guarded(shared_step, "loss"), donate_argnums=(0, 4)),
      controller_step=jax.jit(guards.guarded(controller_step, "controller_loss"),
                              donate_argnums=(0, 5)),
      derive_step=jax.jit(derive_step), eval_step=jax.jit(eval_step),
      shared_metric_shapes=_metric_shapes(shared_step),
      controller_metric_shapes=_metric_shapes(controller_step))


# --- the run's state -----------------------------------------------------------------------------

@dataclasses.dataclass
class SearchState:
  """Everything the loop carries; `arrays()` and `position()` are what a checkpoint saves."""

  lm: lm_steps.LMState
  ctrl: search_steps.ControllerState
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
    return {"lm": self.lm, "ctrl": self.ctrl, "sums": self.sums, "epoch_sums": self.epoch_sums}

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
    return cls(lm=arrays["lm"], ctrl=arrays["ctrl"], sums=arrays["sums"],
               epoch_sums=arrays["epoch_sums"], epoch=pos["epoch"], phase=pos["phase"],
               phase_step=pos["phase_step"], phase_total=pos["phase_total"],
               shared_steps=pos["shared_steps"], controller_steps=pos["controller_steps"],
               train_cursor=Cursor(**pos["train_cursor"]),
               valid_cursor=Cursor(**pos["valid_cursor"]), history=pos["history"],
               lr_factor=pos["lr_factor"], rollbacks=pos["rollbacks"])


@dataclasses.dataclass(frozen=True)
class SearchData:
  corpus: Corpus
  train: WindowStream  # shared phase
  valid: WindowStream  # controller rewards and derive scoring (training batch size)
  valid_eval_BxN: np.ndarray  # full-validation evaluation (eval batch size)


def prepare_data(cfg: RNNSearchConfig) -> SearchData:
  corpus = load_corpus(cfg.data)
  d = cfg.data
  width = d.window_width
  train = WindowStream(batchify(corpus.train, d.batch_size, "train", min_steps=1), d.bptt,
                       cfg.seed, d.variable_bptt, width)
  valid = WindowStream(batchify(corpus.valid, d.batch_size, "valid", min_steps=1), d.bptt,
                       cfg.seed, False, width)
  return SearchData(corpus, train, valid,
                    batchify(corpus.valid, d.eval_batch_size, "valid", min_steps=1))


def _zeros(shapes: Any) -> Any:
  return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


class Diverged(UserError):
  """The shared or controller loss became NaN/Inf and the policy says stop."""


class _Rollback(Exception):
  pass


# --- the run -------------------------------------------------------------------------------------

class SearchRun:
  """One search: the config, the data, the compiled program, the workdir's outputs."""

  def __init__(self, cfg: RNNSearchConfig, workdir: str, out: TextIO,
               progress: metrics_lib.Progress):
    self.cfg = cfg
    self.workdir = workdir
    self.out = out
    self.progress = progress
    workdir_lib.prepare(workdir)
    self.data = prepare_data(cfg)
    self.program = build_program(cfg, len(self.data.corpus.words))
    self.base_key = jax.random.key(cfg.seed)
    self.checkpointer = ckpt_lib.Checkpointer(os.path.join(workdir, "checkpoints"),
                                              cfg.checkpoint.keep, self.say)
    self.log: metrics_lib.MetricsLog | None = None
    self._shapes = self._metric_shapes()

  def _metric_shapes(self) -> dict[str, Any]:
    prog, cfg = self.program, self.cfg
    lm = jax.eval_shape(self._init_lm)
    cstate = jax.eval_shape(self._init_ctrl)
    window = next(windows(self.data.train.data_BxN, cfg.data.bptt, width=self.data.train.width))
    batch = lm_steps.window_batch(window, cfg.data.bptt)
    key = jax.random.key(0)
    return {SHARED: prog.shared_metric_shapes(lm, cstate.params, batch, key),
            CONTROLLER: prog.controller_metric_shapes(cstate, lm.params, lm.batch_stats, batch,
                                                      key)}

  def _init_lm(self) -> lm_steps.LMState:
    arch = arch_lib.random_arch(jax.random.key(0), self.cfg.model.num_nodes)  # shapes only
    return lm_steps.init_state(self.program.model, self.program.lm_optimizer,
                               jax.random.fold_in(self.base_key, _INIT_LM),
                               self.cfg.data.batch_size, arch)

  def _init_ctrl(self) -> search_steps.ControllerState:
    return search_steps.init_controller_state(
        self.program.controller, self.program.ctrl_optimizer,
        jax.random.fold_in(self.base_key, _INIT_CONTROLLER))

  def fresh_state(self) -> SearchState:
    sums = {p: _zeros(s) for p, s in self._shapes.items()}
    return SearchState(lm=jax.jit(self._init_lm)(), ctrl=jax.jit(self._init_ctrl)(), sums=sums,
                       epoch_sums={p: _zeros(s) for p, s in self._shapes.items()})

  # --- checkpoints
  def save(self, state: SearchState) -> None:
    self.log.flush()
    meta = {"position": state.position(), "metrics_bytes": self.log.tell(),
            "config": dataclasses.asdict(self.cfg)}
    try:
      self.checkpointer.save(state.save_index, state.arrays(), meta,
                             must_be_finite={"lm": state.lm, "ctrl": state.ctrl})
    except ValueError as err:  # NaN/Inf in the state: never saved
      raise Diverged(f"Not saving a checkpoint: {err}. The run stops; it resumes from the last "
                     f"good checkpoint in {self.checkpointer.directory}.") from None

  def _check_saved_config(self, meta: dict[str, Any]) -> None:
    diffs = ckpt_lib.check_resumable(meta["config"], self.cfg, RESUMABLE_CHANGES, self.workdir,
                                     "search")
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
    cfg = self.cfg
    state, resumed = self.start()
    write_config(self.workdir, cfg)
    if not resumed:
      corpus = self.data.corpus
      self.say(f"search: corpus {corpus.name} ({len(corpus.words)} words, {len(corpus.train)} "
               f"training tokens), {cfg.model.num_nodes}-node cells, "
               f"{count_params(state.lm.params):,} shared parameters, controller "
               f"{cfg.controller.kind}; workdir {self.workdir}")
      if "teacher_ppl_valid" in corpus.info:
        self.say(f"planted corpus: teacher cell [{corpus.info['teacher_arch']}], optimal valid "
                 f"ppl {corpus.info['teacher_ppl_valid']:.2f}, unigram valid ppl "
                 f"{corpus.info['unigram_ppl_valid']:.2f}")
    while state.epoch < cfg.search.epochs:
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
    state.sums[phase] = _zeros(self._shapes[phase])
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
      state.phase_total = (cfg.search.shared_steps
                           or self.data.train.windows_per_pass(state.train_cursor.pass_index))
    n = state.phase_total
    lr = cfg.shared.lr_at_epoch(state.epoch) * state.lr_factor
    state.lm = state.lm.replace(opt_state=lm_steps.set_learning_rate(state.lm.opt_state, lr))
    key = jax.random.fold_in(self.base_key, _SHARED)
    label = f"epoch {state.epoch + 1} shared"
    for window, starts_pass in self.data.train.take(state.train_cursor, n - state.phase_step):
      lm = state.lm
      if starts_pass:
        lm = lm.replace(hidden=jnp.zeros_like(lm.hidden))
      batch = lm_steps.window_batch(window, cfg.data.bptt, cfg.data.variable_bptt)
      state.lm, state.sums[SHARED] = prog.shared_step(lm, state.ctrl.params, batch, key,
                                                      state.sums[SHARED])
      state.phase_step += 1
      state.shared_steps += 1
      done = state.phase_step
      if done % cfg.search.log_every == 0 or done == n:
        rec = self.record(state, SHARED, state.shared_steps, {"lr": lr})
        self.progress.show(label, done, n, {"loss": rec["loss"], "ppl": rec["ppl"]}, force=True)
      else:
        self.progress.show(label, done, n)
      if done == n:
        state.phase, state.phase_step, state.phase_total = CONTROLLER, 0, 0
      self.after_step(state)

  # (b) controller
  def controller_phase(self, state: SearchState) -> None:
    cfg, prog = self.cfg, self.program
    n = state.phase_total = cfg.search.controller_steps
    key = jax.random.fold_in(self.base_key, _CONTROLLER)
    label = f"epoch {state.epoch + 1} controller"
    for window, _ in self.data.valid.take(state.valid_cursor, n - state.phase_step):
      batch = lm_steps.window_batch(window, cfg.data.bptt)
      state.ctrl, state.sums[CONTROLLER] = prog.controller_step(
          state.ctrl, state.lm.params, state.lm.batch_stats, batch, key, state.sums[CONTROLLER])
      state.phase_step += 1
      state.controller_steps += 1
      done = state.phase_step
      if done % cfg.search.log_every == 0 or done == n:
        rec = self.record(state, CONTROLLER, state.controller_steps, {})
        self.progress.show(label, done, n, {"reward": rec["reward"], "ppl": rec["valid_ppl"]},
                           force=True)
      else:
        self.progress.show(label, done, n)
      if done == n:
        state.phase, state.phase_step, state.phase_total = DERIVE, 0, 0
      self.after_step(state)
    if n == 0:
      state.phase = DERIVE

  # (c) derive
  def derive(self, state: SearchState) -> dict[str, Any]:
    cfg, prog = self.cfg, self.program
    key = jax.random.fold_in(jax.random.fold_in(self.base_key, _DERIVE), state.epoch)
    window = next(windows(self.data.valid.data_BxN, cfg.data.bptt, width=self.data.valid.width))
    values_SxD, ppl_S = prog.derive_step(state.ctrl.params, state.lm.params,
                                         state.lm.batch_stats,
                                         lm_steps.window_batch(window, cfg.data.bptt), key)
    ppl_S = np.asarray(ppl_S)
    best = int(np.argmin(ppl_S))
    arch = arch_lib.from_decisions(np.asarray(values_SxD)[best])
    valid_ppl = self.valid_perplexity(state, arch)
    entry = {"epoch": state.epoch, "authors": formats.to_authors_string(arch),
             "arch": formats.to_json(arch), "batch_ppl": float(ppl_S[best]),
             "batch_ppl_median": float(np.median(ppl_S)), "valid_ppl": valid_ppl}
    state.history.append(entry)
    write_arch(os.path.join(self.workdir, "archs", f"epoch_{state.epoch:04d}"), arch,
               {"epoch": state.epoch, "valid_ppl": valid_ppl})
    self.log.write("derive", state.epoch, {"valid_ppl": valid_ppl,
                                           "batch_ppl": entry["batch_ppl"],
                                           "batch_ppl_median": entry["batch_ppl_median"],
                                           "arch": entry["authors"]})
    return entry

  def valid_perplexity(self, state: SearchState, arch: arch_lib.RNNArch) -> float:
    arch = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.int32), arch)  # one signature
    return lm_steps.evaluate_perplexity(self.program.eval_step, state.lm.params,
                                        state.lm.batch_stats, self.data.valid_eval_BxN,
                                        self.cfg.data.bptt, arch)

  def run_epoch(self, state: SearchState) -> None:
    start = time.time()
    if state.phase == SHARED:
      self.shared_phase(state)
    if state.phase == CONTROLLER:
      self.controller_phase(state)
    last = state.epoch + 1 == self.cfg.search.epochs
    derived = (self.derive(state)
               if (state.epoch + 1) % self.cfg.search.derive_every == 0 or last else None)
    shared, control = (guards.sums_to_record(state.epoch_sums[p]) for p in (SHARED, CONTROLLER))
    state.epoch_sums = {p: _zeros(s) for p, s in self._shapes.items()}
    state.epoch += 1
    state.phase = SHARED
    line = f"epoch {state.epoch}/{self.cfg.search.epochs}"
    if shared["steps"]:
      line += f"  shared ppl {shared['ppl']:.2f}"
    if control["steps"]:
      line += f"  reward {control['reward']:.4f}  entropy {control['entropy']:.3f}"
    if derived:
      line += f"  derived [{derived['authors']}] valid ppl {derived['valid_ppl']:.2f}"
    self.log.write("epoch", state.epoch, {"seconds": time.time() - start})
    self.save(state)
    self.say(line + f"  ({time.time() - start:.1f} s)")

  def finish(self, state: SearchState) -> dict[str, Any]:
    """Re-scores every derived cell under the final weights; writes and returns the summary."""
    rescored: dict[str, float] = {}
    for entry in state.history:
      if entry["authors"] not in rescored:
        arch = formats.from_authors_string(entry["authors"])
        rescored[entry["authors"]] = self.valid_perplexity(state, arch)
    best = min(rescored, key=rescored.get)
    arch = formats.from_authors_string(best)
    write_arch(os.path.join(self.workdir, "best_arch"), arch, {"valid_ppl": rescored[best]})
    summary = {
        "architecture": formats.to_json(arch), "authors": best,
        "valid_ppl_shared": rescored[best],
        "rescored": [{"authors": a, "valid_ppl_shared": p} for a, p in rescored.items()],
        "history": state.history, "epochs": state.epoch,
        "shared_steps": state.shared_steps, "controller_steps": state.controller_steps,
        "shared_params": count_params(state.lm.params),
        "corpus": {"name": self.data.corpus.name, **_json_info(self.data.corpus.info)},
    }
    teacher = self.data.corpus.info.get("teacher_arch")
    if teacher is not None:
      t_arch = formats.from_authors_string(teacher)
      if len(t_arch.act_N) == self.cfg.model.num_nodes:
        summary["planted_arch_valid_ppl_shared"] = self.valid_perplexity(state, t_arch)
    with open(os.path.join(self.workdir, "summary.json"), "w") as f:
      json.dump(summary, f, indent=2)
    self.log.close()
    self.checkpointer.close()
    self.final_state = state
    return summary


def _json_info(info: dict[str, Any]) -> dict[str, Any]:
  return {k: v for k, v in info.items() if isinstance(v, (int, float, str))}


def write_arch(stem: str, arch: arch_lib.RNNArch, extra: dict[str, Any]) -> None:
  """Writes `stem.json` (our JSON plus `extra`) and `stem.txt` (the authors' string)."""
  os.makedirs(os.path.dirname(stem), exist_ok=True)
  with open(stem + ".json", "w") as f:
    json.dump({**formats.to_json(arch), **extra}, f, indent=2)
  with open(stem + ".txt", "w") as f:
    f.write(formats.to_authors_string(arch) + "\n")


def write_config(workdir: str, cfg: RNNSearchConfig) -> None:
  workdir_lib.write_json(os.path.join(workdir, "config.json"), dataclasses.asdict(cfg))


def run_search(cfg: RNNSearchConfig, workdir: str, out: TextIO,
               progress: metrics_lib.Progress | None = None) -> dict[str, Any]:
  """Runs (or resumes) the whole search; writes config.json, metrics, cells, checkpoints and
  summary.json to `workdir`."""
  return SearchRun(cfg, workdir, out, progress or metrics_lib.Progress()).execute()
