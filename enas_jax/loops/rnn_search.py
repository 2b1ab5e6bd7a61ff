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
AWD-style variable window lengths are a pure function of (seed, pass).
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Iterator, TextIO

import jax
import jax.numpy as jnp
import numpy as np

from enas_jax import controller as ctl
from enas_jax import metrics as metrics_lib
from enas_jax.configuration import from_section
from enas_jax.data import TextDataConfig, load_corpus
from enas_jax.data.lm_batches import Window, batchify, windows
from enas_jax.data.text import Corpus
from enas_jax.errors import UserError
from enas_jax.loops import lm_steps
from enas_jax.loops import rnn_search_steps as search_steps
from enas_jax.spaces.rnn import arch as arch_lib
from enas_jax.spaces.rnn import formats
from enas_jax.spaces.rnn.model import RNNLanguageModel, RNNModelConfig, count_params

# Streams folded into the run's base key.
_INIT_LM, _INIT_CONTROLLER, _SHARED, _CONTROLLER, _DERIVE = range(5)


@dataclasses.dataclass(frozen=True)
class SearchLoopConfig:
  """The `search` section (see configs/ptb_rnn.py for comments)."""

  epochs: int = 150
  shared_steps: int = 0
  controller_steps: int = 2000
  derive_every: int = 1
  derive_samples: int = 100
  log_every: int = 50

  def validate(self, section: str = "search") -> None:
    for name in ("epochs", "derive_every", "derive_samples", "log_every"):
      if getattr(self, name) < 1:
        raise UserError(f"Config field `{section}.{name}` must be at least 1, got "
                        f"{getattr(self, name)}.")
    for name in ("shared_steps", "controller_steps"):
      if getattr(self, name) < 0:
        raise UserError(f"Config field `{section}.{name}` must be >= 0, got "
                        f"{getattr(self, name)}.")


@dataclasses.dataclass(frozen=True)
class RNNSearchConfig:
  """A whole recurrent search config (configs/ptb_rnn.py, configs/quickstart.py)."""

  seed: int = 0
  data: TextDataConfig = dataclasses.field(default_factory=TextDataConfig)
  model: RNNModelConfig = dataclasses.field(default_factory=RNNModelConfig)
  shared: lm_steps.SharedTrainConfig = dataclasses.field(
      default_factory=lm_steps.SharedTrainConfig)
  controller: ctl.ControllerConfig = dataclasses.field(default_factory=ctl.ControllerConfig)
  search: SearchLoopConfig = dataclasses.field(default_factory=SearchLoopConfig)

  def validate(self, section: str = "") -> None:
    if self.data.source == "planted" and self.model.num_nodes < 2:
      raise UserError("Config field `model.num_nodes` must be at least 2.")


def config_from_dict(config: Any) -> RNNSearchConfig:
  """The ConfigDict of a config file -> the checked, frozen RNNSearchConfig."""
  return from_section(RNNSearchConfig, "", config)


# --- data positions ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Cursor:
  """Where a phase is in its split: the pass over the split and the window within it."""

  pass_index: int = 0
  window: int = 0


@dataclasses.dataclass(frozen=True)
class WindowStream:
  """Endless windows over a batched split, pass after pass; the state resets at each pass."""

  data_BxN: np.ndarray
  bptt: int
  seed: int
  variable: bool
  width: int

  def take(self, cursor: Cursor, n: int) -> Iterator[tuple[Window, bool]]:
    """Yields `n` (window, starts_a_pass) pairs from `cursor`, advancing it in place."""
    taken = 0
    while taken < n:
      for window in windows(self.data_BxN, self.bptt, self.seed, cursor.pass_index,
                            self.variable, self.width, start_window=cursor.window):
        starts = cursor.window == 0
        cursor.window += 1
        taken += 1
        yield window, starts
        if taken == n:
          break
      else:
        cursor.pass_index, cursor.window = cursor.pass_index + 1, 0

  def windows_per_pass(self, pass_index: int) -> int:
    return sum(1 for _ in windows(self.data_BxN, self.bptt, self.seed, pass_index,
                                  self.variable, self.width))


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
  zero_shared_metrics: Any  # same arguments as shared_step, less sums -> zero metric sums
  zero_controller_metrics: Any  # likewise for controller_step


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

  def shared_and_sum(state, ctrl_params, batch, key, sums):
    state, m = shared_step(state, ctrl_params, batch, jax.random.fold_in(key, state.step))
    return state, jax.tree_util.tree_map(jnp.add, sums, m)

  def controller_and_sum(cstate, params, batch_stats, batch, key, sums):
    cstate, m = controller_step(cstate, params, batch_stats, batch,
                                jax.random.fold_in(key, cstate.step))
    return cstate, jax.tree_util.tree_map(jnp.add, sums, m)

  return SearchProgram(model=model, controller=controller, lm_optimizer=lm_opt,
                       ctrl_optimizer=ctrl_opt,
                       shared_step=jax.jit(shared_and_sum, donate_argnums=(0, 4)),
                       controller_step=jax.jit(controller_and_sum, donate_argnums=(0, 5)),
                       derive_step=jax.jit(derive_step), eval_step=jax.jit(eval_step),
                       zero_shared_metrics=_zero_metrics(shared_step),
                       zero_controller_metrics=_zero_metrics(controller_step))


def _zero_metrics(step):
  """A function giving zeros shaped like `step`'s metrics (traced abstractly, never run)."""
  def zeros(*args):
    shapes = jax.eval_shape(step, *args)[1]
    return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
  return zeros


# --- the run -------------------------------------------------------------------------------------

@dataclasses.dataclass
class SearchState:
  """Everything the loop carries from epoch to epoch."""

  lm: lm_steps.LMState
  ctrl: search_steps.ControllerState
  epoch: int = 0  # epochs completed
  train_cursor: Cursor = dataclasses.field(default_factory=Cursor)
  valid_cursor: Cursor = dataclasses.field(default_factory=Cursor)
  history: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # derived, per epoch


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


def init_search_state(cfg: RNNSearchConfig, program: SearchProgram) -> SearchState:
  base = jax.random.key(cfg.seed)
  arch = arch_lib.random_arch(jax.random.key(0), cfg.model.num_nodes)  # shapes only
  lm = lm_steps.init_state(program.model, program.lm_optimizer,
                           jax.random.fold_in(base, _INIT_LM), cfg.data.batch_size, arch)
  cstate = search_steps.init_controller_state(program.controller, program.ctrl_optimizer,
                                              jax.random.fold_in(base, _INIT_CONTROLLER))
  return SearchState(lm=lm, ctrl=cstate)


class SearchRun:
  """One search: the config, the data, the compiled program, the workdir's outputs."""

  def __init__(self, cfg: RNNSearchConfig, workdir: str, out: TextIO,
               progress: metrics_lib.Progress):
    self.cfg = cfg
    self.workdir = workdir
    self.out = out
    self.progress = progress
    prepare_workdir(workdir, cfg)
    self.data = prepare_data(cfg)
    self.program = build_program(cfg, len(self.data.corpus.words))
    self.base_key = jax.random.key(cfg.seed)
    self.log = metrics_lib.MetricsLog(workdir)

  def execute(self) -> dict[str, Any]:
    cfg = self.cfg
    state = init_search_state(cfg, self.program)
    corpus = self.data.corpus
    self.say(f"search: corpus {corpus.name} ({len(corpus.words)} words, {len(corpus.train)} "
             f"training tokens), {cfg.model.num_nodes}-node cells, "
             f"{count_params(state.lm.params):,} shared parameters, controller "
             f"{cfg.controller.kind}; workdir {self.workdir}")
    if "teacher_ppl_valid" in corpus.info:
      self.say(f"planted corpus: teacher cell [{corpus.info['teacher_arch']}], optimal valid ppl "
               f"{corpus.info['teacher_ppl_valid']:.2f}, unigram valid ppl "
               f"{corpus.info['unigram_ppl_valid']:.2f}")
    while state.epoch < cfg.search.epochs:
      self.run_epoch(state)
    return self.finish(state)

  def say(self, text: str) -> None:
    self.progress.clear()
    self.out.write(text + "\n")
    self.out.flush()

  # (a) shared weights
  def shared_phase(self, state: SearchState) -> dict[str, float]:
    cfg, prog = self.cfg, self.program
    n = cfg.search.shared_steps or self.data.train.windows_per_pass(state.train_cursor.pass_index)
    lr = cfg.shared.lr_at_epoch(state.epoch)
    lm = state.lm.replace(opt_state=lm_steps.set_learning_rate(state.lm.opt_state, lr))
    key = jax.random.fold_in(self.base_key, _SHARED)
    sums = epoch_sums = None
    done = 0
    for window, starts_pass in self.data.train.take(state.train_cursor, n):
      if starts_pass:
        lm = lm.replace(hidden=jnp.zeros_like(lm.hidden))
      batch = lm_steps.window_batch(window, cfg.data.bptt, cfg.data.variable_bptt)
      if sums is None:
        sums = prog.zero_shared_metrics(lm, state.ctrl.params, batch, key)
      lm, sums = prog.shared_step(lm, state.ctrl.params, batch, key, sums)
      done += 1
      if done % cfg.search.log_every == 0 or done == n:
        record = _shared_record(sums, (done - 1) % cfg.search.log_every + 1)
        record["lr"] = lr
        self.log.write("shared", int(lm.step), record)
        epoch_sums = _add(epoch_sums, sums)
        sums = jax.tree_util.tree_map(jnp.zeros_like, sums)
        self.progress.show(f"epoch {state.epoch + 1} shared", done, n,
                           {"loss": record["loss"], "ppl": record["ppl"]}, force=True)
      else:
        self.progress.show(f"epoch {state.epoch + 1} shared", done, n)
    state.lm = lm
    return _shared_record(epoch_sums, n) if n else {}

  # (b) controller
  def controller_phase(self, state: SearchState) -> dict[str, float]:
    cfg, prog = self.cfg, self.program
    n = cfg.search.controller_steps
    key = jax.random.fold_in(self.base_key, _CONTROLLER)
    cstate = state.ctrl
    sums = epoch_sums = None
    done = 0
    for window, _ in self.data.valid.take(state.valid_cursor, n):
      batch = lm_steps.window_batch(window, cfg.data.bptt)
      if sums is None:
        sums = prog.zero_controller_metrics(cstate, state.lm.params, state.lm.batch_stats,
                                            batch, key)
      cstate, sums = prog.controller_step(cstate, state.lm.params, state.lm.batch_stats, batch,
                                          key, sums)
      done += 1
      if done % cfg.search.log_every == 0 or done == n:
        count = (done - 1) % cfg.search.log_every + 1
        record = _means(sums, count)
        self.log.write("controller", int(cstate.step), record)
        epoch_sums = _add(epoch_sums, sums)
        sums = jax.tree_util.tree_map(jnp.zeros_like, sums)
        self.progress.show(f"epoch {state.epoch + 1} controller", done, n,
                           {"reward": record["reward"], "ppl": record["valid_ppl"]}, force=True)
      else:
        self.progress.show(f"epoch {state.epoch + 1} controller", done, n)
    state.ctrl = cstate
    return _means(epoch_sums, n) if n else {}

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
    shared = self.shared_phase(state)
    control = self.controller_phase(state)
    last = state.epoch + 1 == self.cfg.search.epochs
    derived = (self.derive(state)
               if (state.epoch + 1) % self.cfg.search.derive_every == 0 or last else None)
    state.epoch += 1
    line = f"epoch {state.epoch}/{self.cfg.search.epochs}"
    if shared:
      line += f"  shared ppl {shared['ppl']:.2f}"
    if control:
      line += f"  reward {control['reward']:.4f}  entropy {control['entropy']:.3f}"
    if derived:
      line += f"  derived [{derived['authors']}] valid ppl {derived['valid_ppl']:.2f}"
    self.log.write("epoch", state.epoch, {"seconds": time.time() - start})
    self.log.flush()
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
        "shared_steps": int(state.lm.step), "controller_steps": int(state.ctrl.step),
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
    return summary


def _means(sums: dict[str, jax.Array], count: int) -> dict[str, float]:
  return {k: float(v) / max(count, 1) for k, v in sums.items()}


def _shared_record(sums: dict[str, jax.Array], count: int) -> dict[str, float]:
  """Means over the steps; perplexity as exp(mean NLL), not a mean of per-step perplexities."""
  record = _means({k: v for k, v in sums.items() if k != "ppl"}, count)
  record["ppl"] = float(np.exp(record["nll"]))
  return record


def _add(a, b):
  return b if a is None else jax.tree_util.tree_map(jnp.add, a, b)


def _json_info(info: dict[str, Any]) -> dict[str, Any]:
  return {k: v for k, v in info.items() if isinstance(v, (int, float, str))}


def write_arch(stem: str, arch: arch_lib.RNNArch, extra: dict[str, Any]) -> None:
  """Writes `stem.json` (our JSON plus `extra`) and `stem.txt` (the authors' string)."""
  os.makedirs(os.path.dirname(stem), exist_ok=True)
  with open(stem + ".json", "w") as f:
    json.dump({**formats.to_json(arch), **extra}, f, indent=2)
  with open(stem + ".txt", "w") as f:
    f.write(formats.to_authors_string(arch) + "\n")


def prepare_workdir(workdir: str, cfg: RNNSearchConfig) -> None:
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, ".write_test")
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as err:
    raise UserError(f"The workdir {workdir!r} cannot be written ({err.strerror}). Pass a "
                    f"writable directory with --workdir=DIR.") from None
  with open(os.path.join(workdir, "config.json"), "w") as f:
    json.dump(dataclasses.asdict(cfg), f, indent=2)


def run_search(cfg: RNNSearchConfig, workdir: str, out: TextIO,
               progress: metrics_lib.Progress | None = None) -> dict[str, Any]:
  """Runs the whole search; writes config.json, metrics, per-epoch cells and summary.json."""
  return SearchRun(cfg, workdir, out, progress or metrics_lib.Progress()).execute()
