"""Final training of one recurrent cell (or the LSTM baseline) from scratch: the ENAS LM recipe.

Every epoch is one pass over the training split in (optionally variable-length) BPTT windows,
SGD with gradient clipping, weight decay and the activation L2 penalty; then the validation
perplexity. Averaged SGD as AWD-LSTM and the ENAS LM code do it: once the validation perplexity
is worse than the best of all epochs before the last `asgd_nonmono`, the running average of the
weights from then on is kept, and evaluation uses it. At the end, the test perplexity with the
standard protocol (batch `data.test_batch_size`, 1 by default, state carried over the split).
Checkpoints and resume work as in the search (`loops/rnn_search.py`): bit for bit.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Literal, TextIO

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from enas_jax import checkpoints as ckpt_lib
from enas_jax import metrics as metrics_lib
from enas_jax import workdir as workdir_lib
from enas_jax.baselines.lstm_lm import LSTMLanguageModel, hidden_for_budget
from enas_jax.configuration import from_section
from enas_jax.data import TextDataConfig, load_corpus
from enas_jax.data.lm_batches import Cursor, WindowStream, batchify
from enas_jax.errors import UserError
from enas_jax.loops import guards, lm_steps, train_run
from enas_jax.spaces.rnn import formats
from enas_jax.spaces.rnn.model import RNNLanguageModel, RNNModelConfig, count_params

LSTM = "lstm"
RESUMABLE_CHANGES = ("train.epochs", "train.log_every", "checkpoint.", "deterministic")


@dataclasses.dataclass(frozen=True)
class FinalTrainConfig:
  """The `train` section (see configs/ptb_final.py for comments)."""

  epochs: int = 3000
  lr: float = 20.0
  grad_clip: float = 0.25
  weight_decay: float = 8e-7
  activation_l2: float = 0.7
  asgd: bool = True
  asgd_nonmono: int = 10
  log_every: int = 200

  def validate(self, section: str = "train") -> None:
    for name in ("epochs", "log_every", "asgd_nonmono"):
      if getattr(self, name) < 1:
        raise UserError(f"Config field `{section}.{name}` must be at least 1, got "
                        f"{getattr(self, name)}.")
    if self.lr <= 0:
      raise UserError(f"Config field `{section}.lr` must be positive, got {self.lr}.")


@dataclasses.dataclass(frozen=True)
class FinalConfig:
  """A whole final-training config (configs/ptb_final.py)."""

  space: Literal["rnn"] = "rnn"
  seed: int = 0
  deterministic: bool = False
  arch: str = ""
  lstm_hidden_dim: int = 0
  data: TextDataConfig = dataclasses.field(default_factory=TextDataConfig)
  model: RNNModelConfig = dataclasses.field(default_factory=RNNModelConfig)
  train: FinalTrainConfig = dataclasses.field(default_factory=FinalTrainConfig)
  checkpoint: ckpt_lib.CheckpointConfig = dataclasses.field(
      default_factory=ckpt_lib.CheckpointConfig)

  def validate(self, section: str = "") -> None:
    if not self.arch:
      raise UserError("Config field `arch` is empty: give the cell to train, e.g. "
                      "--config.arch=workdirs/ptb (a search workdir), a JSON or dag.json file, "
                      "an authors' string '0 0 1 1 2 ...', 'enas_lm:0 2 1 0 ...', or 'lstm'.")


def config_from_dict(config: Any) -> FinalConfig:
  return from_section(FinalConfig, "", config)


class AverageState(flax.struct.PyTreeNode):
  """Averaged SGD: the running mean of the weights since `active` became true."""

  params: Any
  count: jax.Array
  active: jax.Array


@dataclasses.dataclass(frozen=True)
class Model:
  """The network to train: a fixed ENAS cell or the LSTM baseline, and how it was chosen."""

  module: Any
  description: str
  arch_json: dict[str, Any] | None


def build_model(cfg: FinalConfig, vocab_size: int, say=print) -> Model:
  model_cfg = cfg.model
  if cfg.arch == LSTM:
    hidden = cfg.lstm_hidden_dim
    note = ""
    if not hidden:  # the ENAS cell's budget: the default cell of this config at this width
      budget = _enas_budget(cfg, vocab_size)
      hidden = hidden_for_budget(vocab_size, budget)
      note = (f", width {hidden} matched to {budget:,} parameters of a "
              f"{model_cfg.num_nodes}-node cell")
    return Model(LSTMLanguageModel(model_cfg, vocab_size, hidden), f"LSTM baseline{note}", None)
  spec = formats.load_arch_spec(cfg.arch)
  arch = spec.arch
  n = len(arch.act_N)
  if n != model_cfg.num_nodes:
    say(f"note: the cell has {n} nodes; model.num_nodes ({model_cfg.num_nodes}) follows it")
  if spec.output and spec.output != model_cfg.output:
    say(f"note: the {spec.source!r} format averages {spec.output}; model.output follows it")
  model_cfg = dataclasses.replace(model_cfg, num_nodes=n, output=spec.output or model_cfg.output)
  fixed = (tuple(int(p) for p in arch.prev_N), tuple(int(a) for a in arch.act_N))
  return Model(RNNLanguageModel(model_cfg, vocab_size, fixed_arch=fixed),
               f"ENAS cell [{formats.to_authors_string(arch)}] (authors' format), output "
               f"{model_cfg.output}", formats.to_json(arch))


def _enas_budget(cfg: FinalConfig, vocab_size: int) -> int:
  """Parameters of a fixed cell with `model.num_nodes` nodes (any cell: all have the same)."""
  n = cfg.model.num_nodes
  fixed = (tuple([-1] + [k - 1 for k in range(1, n)]), tuple([0] * n))
  module = RNNLanguageModel(cfg.model, vocab_size, fixed_arch=fixed)
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((1, 2), jnp.int32),
                                              jnp.zeros((1, cfg.model.hidden_dim))))
  return count_params(shapes["params"])


@dataclasses.dataclass
class TrainState:
  lm: lm_steps.LMState
  avg: AverageState
  sums: dict[str, jax.Array]
  epoch_sums: dict[str, jax.Array]
  epoch: int = 0
  epoch_step: int = 0
  steps: int = 0
  cursor: Cursor = dataclasses.field(default_factory=Cursor)
  valid_history: list[float] = dataclasses.field(default_factory=list)
  asgd_epoch: int | None = None  # the epoch at whose end averaging started

  def arrays(self) -> dict[str, Any]:
    return {"lm": self.lm, "avg": self.avg, "sums": self.sums, "epoch_sums": self.epoch_sums}

  def position(self) -> dict[str, Any]:
    return {"epoch": self.epoch, "epoch_step": self.epoch_step, "steps": self.steps,
            "cursor": dataclasses.asdict(self.cursor), "valid_history": self.valid_history,
            "asgd_epoch": self.asgd_epoch}

  @classmethod
  def from_saved(cls, arrays: dict[str, Any], pos: dict[str, Any]) -> "TrainState":
    return cls(lm=arrays["lm"], avg=arrays["avg"], sums=arrays["sums"],
               epoch_sums=arrays["epoch_sums"], epoch=pos["epoch"],
               epoch_step=pos["epoch_step"], steps=pos["steps"], cursor=Cursor(**pos["cursor"]),
               valid_history=pos["valid_history"], asgd_epoch=pos["asgd_epoch"])

  @property
  def save_index(self) -> int:
    return self.steps + self.epoch


def asgd_should_start(history: list[float], valid_ppl: float, nonmono: int) -> bool:
  """NT-ASGD's trigger as in the ENAS LM code: more than `nonmono` epochs seen and this epoch
  worse than the best of all epochs before the last `nonmono`."""
  return len(history) > nonmono and valid_ppl > min(history[:-nonmono])


def make_train_step(train_step: Any) -> Any:
  """The guarded training step, with the running weight average when ASGD is active."""
  step = guards.guarded(lambda lm, batch, key: train_step(lm, batch, None, key), "loss")

  def train_and_average(lm, avg: AverageState, batch, key, sums):
    old_ok = sums["ok_steps"]
    lm, sums = step(lm, batch, key, sums)
    took = avg.active & (sums["ok_steps"] > old_ok)
    count = avg.count + took.astype(jnp.float32)
    params = jax.tree_util.tree_map(
        lambda a, p: jnp.where(took, a + (p - a) / jnp.maximum(count, 1.0), a),
        avg.params, lm.params)
    return lm, avg.replace(params=params, count=count), sums

  return train_and_average


class TrainRun(train_run.TrainRun):
  """One final training: data, model, compiled steps, workdir outputs."""

  RESUMABLE_CHANGES = RESUMABLE_CHANGES
  state_class = TrainState

  def __init__(self, cfg: FinalConfig, workdir: str, out: TextIO,
               progress: metrics_lib.Progress):
    super().__init__(cfg, workdir, out, progress)
    workdir_lib.prepare(workdir)
    corpus = load_corpus(cfg.data)
    d = cfg.data
    self.corpus = corpus
    self.train = WindowStream(batchify(corpus.train, d.batch_size, "train"), d.bptt, cfg.seed,
                              d.variable_bptt, d.window_width)
    self.valid_BxN = batchify(corpus.valid, d.eval_batch_size, "valid")
    self.test_BxN = batchify(corpus.test, d.test_batch_size, "test")
    self.model = build_model(cfg, len(corpus.words), self.say)
    optimizer = lm_steps.make_optimizer(lm_steps.SharedTrainConfig(
        lr=cfg.train.lr, grad_clip=cfg.train.grad_clip, l2=cfg.train.weight_decay))
    self.optimizer = optimizer
    train_step, eval_step = lm_steps.make_lm_steps(self.model.module, optimizer,
                                                   cfg.train.weight_decay,
                                                   cfg.train.activation_l2)
    self.step = jax.jit(make_train_step(train_step), donate_argnums=(0, 1, 4))
    self.eval_step = jax.jit(eval_step)
    self.key = jax.random.key(cfg.seed)
    window = next(iter(self.train.take(Cursor(), 1)))[0]
    lm = jax.eval_shape(self._init_lm)
    shapes = jax.eval_shape(train_step, lm, lm_steps.window_batch(window, d.bptt), None,
                            self.key)[1]
    f32 = jax.ShapeDtypeStruct((), jnp.float32)
    self.metric_shapes = {**shapes, "ok_steps": f32, "steps": f32}

  def _init_lm(self) -> lm_steps.LMState:
    return lm_steps.init_state(self.model.module, self.optimizer, jax.random.fold_in(self.key, 0),
                               self.cfg.data.batch_size, None)

  def _zero_sums(self) -> dict[str, jax.Array]:
    return {k: jnp.zeros(s.shape, s.dtype) for k, s in self.metric_shapes.items()}

  def fresh_state(self) -> TrainState:
    lm = jax.jit(self._init_lm)()
    avg = AverageState(params=jax.tree_util.tree_map(jnp.zeros_like, lm.params),
                       count=jnp.zeros(()), active=jnp.zeros((), bool))
    return TrainState(lm=lm, avg=avg, sums=self._zero_sums(), epoch_sums=self._zero_sums())

  def describe(self, state: TrainState) -> None:
    self.say(f"train: {self.model.description}; {count_params(state.lm.params):,} parameters; "
             f"corpus {self.corpus.name} ({len(self.corpus.words)} words); workdir "
             f"{self.workdir}")

  def run_epoch(self, state: TrainState) -> None:
    cfg, start = self.cfg, time.time()
    if state.epoch_step == 0:
      state.cursor = Cursor(pass_index=state.epoch, window=0)
      state.lm = state.lm.replace(hidden=jnp.zeros_like(state.lm.hidden))
    n = self.train.windows_per_pass(state.epoch)
    key = jax.random.fold_in(self.key, 1)
    for window, _ in self.train.take(state.cursor, n - state.epoch_step):
      batch = lm_steps.window_batch(window, cfg.data.bptt, cfg.data.variable_bptt)
      state.lm, state.avg, state.sums = self.step(state.lm, state.avg, batch, key, state.sums)
      state.epoch_step += 1
      state.steps += 1
      if state.epoch_step % cfg.train.log_every == 0 or state.epoch_step == n:
        record = guards.sums_to_record(state.sums)
        record["lr"] = cfg.train.lr
        self.log.write("train", state.steps, record)
        state.epoch_sums = jax.tree_util.tree_map(jnp.add, state.epoch_sums, state.sums)
        state.sums = self._zero_sums()
        if record["skipped_steps"]:
          self.say(f"warning: {int(record['skipped_steps'])} step(s) up to step {state.steps} "
                   f"had a NaN/Inf loss and were skipped; lower --config.train.lr if it repeats.")
        self.progress.show(f"epoch {state.epoch + 1}", state.epoch_step, n,
                           {"ppl": record["ppl"]}, force=True)
      every = cfg.checkpoint.every_steps
      if every and state.steps % every == 0 and state.epoch_step < n:
        self.save(state)
    self.end_epoch(state, start)

  def end_epoch(self, state: TrainState, start: float) -> None:
    cfg = self.cfg
    valid_ppl = self.perplexity(state, self.valid_BxN)
    started = False
    if (cfg.train.asgd and not bool(state.avg.active)
        and asgd_should_start(state.valid_history, valid_ppl, cfg.train.asgd_nonmono)):
      state.avg = state.avg.replace(active=jnp.ones((), bool), count=jnp.zeros(()))
      state.asgd_epoch, started = state.epoch, True
    state.valid_history.append(valid_ppl)
    train = guards.sums_to_record(state.epoch_sums)
    state.epoch_sums = self._zero_sums()
    state.epoch += 1
    state.epoch_step = 0
    self.log.write("epoch", state.epoch, {"valid_ppl": valid_ppl, "train_ppl": train["ppl"],
                                          "averaging": float(bool(state.avg.active)),
                                          "seconds": time.time() - start})
    self.save(state)
    averaged = state.asgd_epoch is not None and not started
    self.say(f"epoch {state.epoch}/{cfg.train.epochs}  train ppl {train['ppl']:.2f}  valid ppl "
             f"{valid_ppl:.2f}{'  (averaged weights)' if averaged else ''}"
             f"{'  -> averaged SGD from now on' if started else ''}  ({time.time() - start:.1f} s)")

  def eval_params(self, state: TrainState) -> Any:
    """The averaged weights once averaging has taken at least one step, else the weights."""
    if bool(state.avg.active) and float(state.avg.count) > 0:
      return state.avg.params
    return state.lm.params

  def perplexity(self, state: TrainState, data_BxN: np.ndarray) -> float:
    return lm_steps.evaluate_perplexity(self.eval_step, self.eval_params(state),
                                        state.lm.batch_stats, data_BxN, self.cfg.data.bptt,
                                        None, self.model.module.state_size)

  def finish(self, state: TrainState) -> dict[str, Any]:
    valid_ppl = self.perplexity(state, self.valid_BxN)
    test_ppl = self.perplexity(state, self.test_BxN)
    summary = {"model": self.model.description, "architecture": self.model.arch_json,
               "params": count_params(state.lm.params), "epochs": state.epoch,
               "steps": state.steps, "valid_ppl": valid_ppl, "test_ppl": test_ppl,
               "best_valid_ppl": min(state.valid_history) if state.valid_history else None,
               "asgd_started_after_epoch": (state.asgd_epoch + 1
                                            if state.asgd_epoch is not None else None),
               "test_protocol": f"batch {self.cfg.data.test_batch_size}, state carried over "
                                f"the whole split, BPTT windows of {self.cfg.data.bptt}"}
    self.log.write("final", state.steps, {"valid_ppl": valid_ppl, "test_ppl": test_ppl})
    self.log.close()
    self.checkpointer.close()
    workdir_lib.write_json(os.path.join(self.workdir, "summary.json"), summary)
    self.say(f"final: valid ppl {valid_ppl:.2f}, test ppl {test_ppl:.2f} "
             f"({summary['test_protocol']}), {summary['params']:,} parameters")
    self.final_state = state
    return summary


def run_training(cfg: FinalConfig, workdir: str, out: TextIO,
                 progress: metrics_lib.Progress | None = None) -> dict[str, Any]:
  """Trains (or resumes training) the configured cell; returns the summary."""
  return TrainRun(cfg, workdir, out, progress or metrics_lib.Progress()).execute()

