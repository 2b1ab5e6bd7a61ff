"""The ENAS recurrent-cell search loop (the epoch structure lives in `loops.search_run`).

Shared phase: one window of the training split per step (AWD-style variable lengths a pure
function of (seed, pass)), the recurrent state carried between windows and reset at each pass.
Controller phase and derive: one validation window per step, zero initial state; reward
`reward_c / ppl`. The derived cell of an epoch is the sampled cell with the lowest perplexity on
one validation window; it is written to archs/ with its whole-validation perplexity.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Iterator, Literal, TextIO

import jax
import jax.numpy as jnp
import numpy as np

from enas_jax import checkpoints as ckpt_lib
from enas_jax import controller as ctl
from enas_jax import metrics as metrics_lib
from enas_jax.configuration import from_section
from enas_jax.data import TextDataConfig, load_corpus
from enas_jax.data.lm_batches import WindowStream, batchify, windows
from enas_jax.data.text import Corpus
from enas_jax.drawing import graphs
from enas_jax.loops import controller_steps, guards, lm_steps, search_run
from enas_jax.loops import rnn_search_steps as search_steps
from enas_jax.spaces.rnn import arch as arch_lib
from enas_jax.spaces.rnn import formats
from enas_jax.loops.search_run import SearchLoopConfig, SearchState
from enas_jax.parallel import ParallelConfig
from enas_jax.spaces.rnn.model import RNNLanguageModel, RNNModelConfig, count_params

RESUMABLE_CHANGES = ("search.epochs", "search.log_every", "search.on_divergence",
                     "search.rollback_lr_factor", "search.max_rollbacks", "shared.lr",
                     "shared.lr_decay", "shared.lr_decay_start_epoch", "checkpoint.",
                     "deterministic", "parallel.")


@dataclasses.dataclass(frozen=True)
class RNNSearchConfig:
  """A whole recurrent search config (configs/ptb_rnn.py, configs/quickstart.py)."""

  space: Literal["rnn"] = "rnn"
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
  parallel: ParallelConfig = dataclasses.field(default_factory=ParallelConfig)


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
  derive_step: Any  # (ctrl_params, params, batch_stats, batch, key) -> (values, reward, figures)
  eval_step: Any  # (params, batch_stats, batch, hidden, arch) -> (nll_sum, count, hidden)
  shared_metric_shapes: Any  # function: same arguments as shared_step less sums -> shapes
  controller_metric_shapes: Any  # likewise for controller_step


def build_program(cfg: RNNSearchConfig, vocab_size: int) -> SearchProgram:
  model = RNNLanguageModel(cfg.model, vocab_size)
  lm_opt = lm_steps.make_optimizer(cfg.shared)
  train_step, eval_step = lm_steps.make_lm_steps(model, lm_opt, cfg.shared.l2)
  controller = ctl.Controller(arch_lib.decisions(cfg.model.num_nodes), cfg.controller)
  ctrl_opt = controller_steps.make_controller_optimizer(cfg.controller)
  shared_step, controller_step, derive_step = search_steps.make_search_steps(
      controller, cfg.controller, ctrl_opt, train_step, eval_step, cfg.model.hidden_dim,
      cfg.search.derive_samples)
  return SearchProgram(
      model=model, controller=controller, lm_optimizer=lm_opt, ctrl_optimizer=ctrl_opt,
      shared_step=jax.jit(guards.guarded(shared_step, "loss"), donate_argnums=(0, 4)),
      controller_step=jax.jit(guards.guarded(controller_step, "controller_loss"),
                              donate_argnums=(0, 5)),
      derive_step=jax.jit(derive_step), eval_step=jax.jit(eval_step),
      shared_metric_shapes=search_run.metric_shapes(shared_step),
      controller_metric_shapes=search_run.metric_shapes(controller_step))


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


class SearchRun(search_run.SearchRun):
  """One recurrent-cell search: the config, the corpus, the compiled program, the outputs."""

  RESUMABLE_CHANGES = RESUMABLE_CHANGES
  SPLIT_KEYS = ("inputs", "targets")  # [batch, window]

  def __init__(self, cfg: RNNSearchConfig, workdir: str, out: TextIO,
               progress: metrics_lib.Progress):
    super().__init__(cfg, workdir, out, progress)
    self.data = prepare_data(cfg)
    self.program = build_program(cfg, len(self.data.corpus.words))

  def init_model(self) -> lm_steps.LMState:
    arch = arch_lib.random_arch(jax.random.key(0), self.cfg.model.num_nodes)  # shapes only
    return lm_steps.init_state(self.program.model, self.program.lm_optimizer,
                               jax.random.fold_in(self.base_key, search_run.INIT_MODEL),
                               self.cfg.data.batch_size, arch)

  def init_ctrl(self) -> controller_steps.ControllerState:
    return controller_steps.init_controller_state(
        self.program.controller, self.program.ctrl_optimizer,
        jax.random.fold_in(self.base_key, search_run.INIT_CONTROLLER))

  def example_batches(self) -> tuple[Any, Any]:
    window = next(windows(self.data.train.data_BxN, self.cfg.data.bptt,
                          width=self.data.train.width))
    batch = lm_steps.window_batch(window, self.cfg.data.bptt)
    return batch, batch

  def shared_phase_length(self, state: SearchState) -> int:
    return (self.cfg.search.shared_steps
            or self.data.train.windows_per_pass(state.train_cursor.pass_index))

  def set_learning_rate(self, model: lm_steps.LMState, lr: float) -> lm_steps.LMState:
    return model.replace(opt_state=lm_steps.set_learning_rate(model.opt_state, lr))

  def shared_batches(self, state: SearchState, n: int) -> Iterator[Any]:
    d = self.cfg.data
    for window, starts_pass in self.data.train.take(state.train_cursor, n):
      if starts_pass:
        state.model = state.model.replace(hidden=jnp.zeros_like(state.model.hidden))
      yield lm_steps.window_batch(window, d.bptt, d.variable_bptt)

  def reward_batches(self, state: SearchState, n: int) -> Iterator[Any]:
    for window, _ in self.data.valid.take(state.valid_cursor, n):
      yield lm_steps.window_batch(window, self.cfg.data.bptt)

  def progress_figures(self, phase: str, record: dict[str, float]) -> dict[str, float]:
    if phase == search_run.SHARED:
      return {"loss": record["loss"], "ppl": record["ppl"]}
    return {"reward": record["reward"], "ppl": record["valid_ppl"]}

  def describe(self, state: SearchState) -> None:
    cfg, corpus = self.cfg, self.data.corpus
    self.say(f"search: corpus {corpus.name} ({len(corpus.words)} words, {len(corpus.train)} "
             f"training tokens), {cfg.model.num_nodes}-node cells, "
             f"{count_params(state.model.params):,} shared parameters, controller "
             f"{cfg.controller.kind}; workdir {self.workdir}")
    if "teacher_ppl_valid" in corpus.info:
      self.say(f"planted corpus: teacher cell [{corpus.info['teacher_arch']}], optimal valid "
               f"ppl {corpus.info['teacher_ppl_valid']:.2f}, unigram valid ppl "
               f"{corpus.info['unigram_ppl_valid']:.2f}")

  def epoch_figures(self, shared: dict[str, float], control: dict[str, float],
                    derived: dict[str, Any] | None) -> str:
    line = ""
    if shared["steps"]:
      line += f"  shared ppl {shared['ppl']:.2f}"
    if control["steps"]:
      line += f"  reward {control['reward']:.4f}  entropy {control['entropy']:.3f}"
    if derived:
      line += f"  derived [{derived['authors']}] valid ppl {derived['valid_ppl']:.2f}"
    return line

  # (c) derive
  def derive(self, state: SearchState, reward: float | None) -> dict[str, Any]:
    cfg, prog = self.cfg, self.program
    window = next(windows(self.data.valid.data_BxN, cfg.data.bptt, width=self.data.valid.width))
    values_SxD, _, figures = prog.derive_step(state.ctrl.params, state.model.params,
                                              state.model.batch_stats,
                                              lm_steps.window_batch(window, cfg.data.bptt),
                                              self.derive_key(state))
    ppl_S = np.asarray(figures["valid_ppl"])
    best = int(np.argmin(ppl_S))
    arch = arch_lib.from_decisions(np.asarray(values_SxD)[best])
    valid_ppl = self.valid_perplexity(state, arch)
    entry = {"epoch": state.epoch, "authors": formats.to_authors_string(arch),
             "arch": formats.to_json(arch), "batch_ppl": float(ppl_S[best]),
             "batch_ppl_median": float(np.median(ppl_S)), "valid_ppl": valid_ppl,
             "reward": reward}
    state.history.append(entry)
    title = search_run.picture_title(state.epoch, {"reward": reward, "valid ppl": valid_ppl})
    written = write_arch(os.path.join(self.workdir, "archs", f"epoch_{state.epoch:04d}"), arch,
                         {"epoch": state.epoch, "valid_ppl": valid_ppl, "reward": reward}, title,
                         self.say)
    sampled = arch_lib.from_decisions(np.asarray(values_SxD)[0])
    self.log_pictures(state.epoch, written, graphs.rnn_dot(sampled))
    self.log.write("derive", state.epoch, {"valid_ppl": valid_ppl,
                                           "batch_ppl": entry["batch_ppl"],
                                           "batch_ppl_median": entry["batch_ppl_median"],
                                           "arch": entry["authors"]})
    return entry

  def valid_perplexity(self, state: SearchState, arch: arch_lib.RNNArch) -> float:
    arch = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.int32), arch)  # one signature
    return lm_steps.evaluate_perplexity(self.program.eval_step, state.model.params,
                                        state.model.batch_stats, self.data.valid_eval_BxN,
                                        self.cfg.data.bptt, arch)

  def finish(self, state: SearchState) -> dict[str, Any]:
    """Re-scores every derived cell under the final weights; writes and returns the summary."""
    rescored, best = self.rescore(
        state, lambda a: self.valid_perplexity(state, formats.from_authors_string(a)),
        lower_is_better=True)
    arch = formats.from_authors_string(best)
    write_arch(os.path.join(self.workdir, "best_arch"), arch, {"valid_ppl": rescored[best]},
               search_run.picture_title(None, {"best cell: valid ppl": rescored[best]}), self.say)
    summary = {
        "architecture": formats.to_json(arch), "authors": best,
        "valid_ppl_shared": rescored[best],
        "rescored": [{"authors": a, "valid_ppl_shared": p} for a, p in rescored.items()],
        "history": state.history, "epochs": state.epoch,
        "shared_steps": state.shared_steps, "controller_steps": state.controller_steps,
        "shared_params": count_params(state.model.params),
        "corpus": {"name": self.data.corpus.name, **_json_info(self.data.corpus.info)},
    }
    teacher = self.data.corpus.info.get("teacher_arch")
    if teacher is not None:
      t_arch = formats.from_authors_string(teacher)
      if len(t_arch.act_N) == self.cfg.model.num_nodes:
        summary["planted_arch_valid_ppl_shared"] = self.valid_perplexity(state, t_arch)
    return self.close(state, summary)


def _json_info(info: dict[str, Any]) -> dict[str, Any]:
  return {k: v for k, v in info.items() if isinstance(v, (int, float, str))}


def write_arch(stem: str, arch: arch_lib.RNNArch, extra: dict[str, Any], title: str = "",
               say: Any = None) -> dict[str, str]:
  """Writes `stem.json` (our JSON plus `extra`), `stem.txt` (the authors' string) and the
  cell's picture captioned `title`; returns the picture's {extension: path}."""
  return search_run.write_arch_files(stem, formats.to_json(arch), formats.to_authors_string(arch), extra,
                              graphs.rnn_dot(arch, title or None), say)


def run_search(cfg: RNNSearchConfig, workdir: str, out: TextIO,
               progress: metrics_lib.Progress | None = None) -> dict[str, Any]:
  """Runs (or resumes) the whole search; writes config.json, metrics, cells, checkpoints and
  summary.json to `workdir`."""
  return SearchRun(cfg, workdir, out, progress or metrics_lib.Progress()).execute()
