"""Final training of one recurrent cell (or the LSTM baseline) from scratch: the ENAS LM recipe.

Every epoch is one pass over the training split in (optionally variable-length) BPTT windows,
SGD with gradient clipping, weight decay and the activation L2 penalty; then the validation
perplexity. Averaged SGD as AWD-LSTM and the ENAS LM code do it: once the validation perplexity
is worse than the best of all epochs before the last `asgd_nonmono`, the running average of the
weights from then on is kept, and evaluation uses it. At the end, the test perplexity with the
standard protocol (batch `data.test_batch_size`, 1 by default, state carried over the split).
The loop, checkpoints and resume are `run/final.py`'s.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Iterator

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from enas_jax.data.cursor import Cursor
from enas_jax.data.lm_batches import WindowStream, batchify
from enas_jax.io.configuration import require
from enas_jax.ops.params import count_params
from enas_jax.ops import guards
from enas_jax.spaces.base import SearchSpace
from enas_jax.spaces.rnn import formats
from enas_jax.spaces.rnn.arch import RNNArch
from enas_jax.spaces.rnn.lstm_baseline import LSTMLanguageModel, hidden_for_budget
from enas_jax.tasks.language import steps as lm_steps
from enas_jax.tasks.language.data import load_corpus
from enas_jax.types import Batch, Metrics

LSTM = "lstm"
RESUMABLE_CHANGES = ("train.epochs", "train.log_every", "checkpoint.", "deterministic",
                     "model.activation_dispatch", "model.scan_unroll",  # speed only
                     "train.stop_on_divergence")


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
  asgd_start_epoch: int = 0  # 0: NT-ASGD's trigger; k: averaging from the end of epoch k
  lr_warmup_steps: int = 0  # N > 0: step t's update scaled by (t + 1) / N while t < N
  stop_on_divergence: bool = True  # stop after an epoch with no step kept or a NaN/Inf valid ppl
  log_every: int = 200

  def validate(self, section: str = "train") -> None:
    require(self, section, ">= 0", "grad_clip", "weight_decay", "activation_l2",
            "asgd_start_epoch", "lr_warmup_steps")
    require(self, section, ">= 1", "epochs", "log_every", "asgd_nonmono")
    require(self, section, "> 0", "lr")


class AverageState(flax.struct.PyTreeNode):
  """Averaged SGD: the running mean of the weights since `active` became true."""

  params: Any
  count: jax.Array
  active: jax.Array


class AveragedLM(flax.struct.PyTreeNode):
  """The final run's model state: the language model's training state and the weight average."""

  lm: lm_steps.LMState
  avg: AverageState


@dataclasses.dataclass(frozen=True)
class Model:
  """The network to train: a fixed ENAS cell or the LSTM baseline, and how it was chosen."""

  module: Any
  description: str
  arch_json: dict[str, Any] | None


def build_model(space: SearchSpace, cfg: Any, vocab_size: int,
                say: Callable[[str], None] = print) -> Model:
  """The fixed cell of `cfg.arch` (any format; the cell's node count and the format's output
  rule override the model section, with a note), or the LSTM baseline for "lstm"."""
  model_cfg = cfg.model
  require(cfg, "", ">= 0", "lstm_hidden_dim")  # -1 was a traceback from inside JAX
  if cfg.arch == LSTM:
    hidden = cfg.lstm_hidden_dim
    note = ""
    if not hidden:  # the ENAS cell's budget: the default cell of this config at this width
      budget = _enas_budget(space, cfg, vocab_size)
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
  return Model(space.fixed_network(arch, model_cfg, vocab_size),
               f"ENAS cell [{space.to_authors_string(arch)}] (authors' format), output "
               f"{model_cfg.output}", space.to_json(arch))


def _enas_budget(space: SearchSpace, cfg: Any, vocab_size: int) -> int:
  """Parameters of a fixed cell with `model.num_nodes` nodes (any cell: all have the same)."""
  n = cfg.model.num_nodes
  chain = RNNArch(np.asarray([-1] + [k - 1 for k in range(1, n)]), np.zeros((n,), np.int32))
  module = space.fixed_network(chain, cfg.model, vocab_size)
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((1, 2), jnp.int32),
                                              jnp.zeros((1, cfg.model.hidden_dim))))
  return count_params(shapes["params"])


def asgd_should_start(history: list[float], valid_ppl: float, nonmono: int) -> bool:
  """NT-ASGD's trigger as in the ENAS LM code: more than `nonmono` epochs seen and this epoch
  worse than the best of all epochs before the last `nonmono`."""
  return len(history) > nonmono and valid_ppl > min(history[:-nonmono])


def make_train_step(train_step: Callable[..., Any]) -> Callable[..., Any]:
  """The guarded training step, with the running weight average when ASGD is active:
  `(AveragedLM, batch, key, sums) -> (AveragedLM, sums)`."""
  step = guards.guarded(lambda lm, batch, key: train_step(lm, batch, None, key), "loss")

  def train_and_average(model: AveragedLM, batch: Batch, key: jax.Array, sums: Metrics
                        ) -> tuple[AveragedLM, Metrics]:
    old_ok = sums["ok_steps"]
    lm, sums = step(model.lm, batch, key, sums)
    avg = model.avg
    took = avg.active & (sums["ok_steps"] > old_ok)
    count = avg.count + took.astype(jnp.float32)
    params = jax.tree_util.tree_map(
        lambda a, p: jnp.where(took, a + (p - a) / jnp.maximum(count, 1.0), a),
        avg.params, lm.params)
    return AveragedLM(lm=lm, avg=avg.replace(params=params, count=count)), sums

  return train_and_average


class FinalTaskImpl:
  """A fixed cell (or the LSTM baseline) trained on the corpus with the ENAS LM recipe."""

  resumable_changes = RESUMABLE_CHANGES
  data_location = ("data.dir",)  # where the data is; its content is checked by fingerprint

  def __init__(self, space: SearchSpace, cfg: Any, say: Callable[[str], None]):
    self.cfg = cfg
    d = cfg.data
    self.corpus = load_corpus(d)
    self.train = WindowStream(batchify(self.corpus.train, d.batch_size, "train", d.bptt),
                              d.bptt, cfg.seed, d.variable_bptt, d.window_width)
    self.valid_BxN = batchify(self.corpus.valid, d.eval_batch_size, "valid")
    self.test_BxN = batchify(self.corpus.test, d.test_batch_size, "test")
    self.model = build_model(space, cfg, len(self.corpus.words), say)
    self.optimizer = lm_steps.make_optimizer(lm_steps.SharedTrainConfig(
        lr=cfg.train.lr, grad_clip=cfg.train.grad_clip, l2=cfg.train.weight_decay))
    self.train_step, eval_step = lm_steps.make_lm_steps(
        self.model.module, self.optimizer, cfg.train.weight_decay, cfg.train.activation_l2)
    self.step = jax.jit(make_train_step(self.train_step), donate_argnums=(0, 3))
    self.eval_step = jax.jit(eval_step)
    self.key = jax.random.key(cfg.seed)

  def data_fingerprint(self) -> str:
    return self.corpus.fingerprint()

  def init_model(self) -> AveragedLM:
    lm = lm_steps.init_state(self.model.module, self.optimizer, jax.random.fold_in(self.key, 0),
                             self.cfg.data.batch_size, None)
    avg = AverageState(params=jax.tree_util.tree_map(jnp.zeros_like, lm.params),
                       count=jnp.zeros(()), active=jnp.zeros((), bool))
    return AveragedLM(lm=lm, avg=avg)

  def metric_shapes(self) -> Metrics:
    window = next(iter(self.train.take(Cursor(), 1)))[0]
    lm = jax.eval_shape(self.init_model).lm
    shapes = jax.eval_shape(self.train_step, lm, lm_steps.window_batch(window, self.cfg.data.bptt),
                            None, self.key)[1]
    f32 = jax.ShapeDtypeStruct((), jnp.float32)
    return {**shapes, "ok_steps": f32, "steps": f32}

  def steps_per_epoch(self, epoch: int) -> int:
    return self.train.windows_per_pass(epoch)

  def start_epoch(self, state: Any) -> float:
    """A new epoch starts its pass and resets the carried state; the lr is constant."""
    if state.epoch_step == 0:
      state.cursor = Cursor(pass_index=state.epoch, window=0)
      lm = state.model.lm
      state.model = state.model.replace(lm=lm.replace(hidden=jnp.zeros_like(lm.hidden)))
    return self.cfg.train.lr

  def batches(self, state: Any, n: int) -> Iterator[Batch]:
    """The windows as batches; within `train.lr_warmup_steps` of the start, each batch's
    `lr_scale` (the step's update factor) also carries the warm-up's (t + 1) / N."""
    d, warmup, first = self.cfg.data, self.cfg.train.lr_warmup_steps, state.train_steps
    for i, (window, _) in enumerate(self.train.take(state.cursor, n)):
      batch = lm_steps.window_batch(window, d.bptt, d.variable_bptt)
      if first + i < warmup:
        factor = jnp.float32(lm_steps.warmup_factor(first + i, warmup))
        batch = {**batch, "lr_scale": batch["lr_scale"] * factor}
      yield batch

  def progress_figures(self, record: dict[str, float]) -> dict[str, float]:
    return {"ppl": record["ppl"]}

  def end_epoch(self, state: Any, train: dict[str, float]) -> tuple[dict[str, Any], str]:
    """The validation perplexity; NT-ASGD's trigger; the epoch's history entry."""
    cfg = self.cfg.train
    valid_ppl = self.perplexity(state, self.valid_BxN)
    avg = state.model.avg
    averaged = asgd_epoch(state.history) is not None
    if cfg.asgd_start_epoch:  # a fixed start: the end of epoch asgd_start_epoch (1-based)
      due = len(state.history) + 1 >= cfg.asgd_start_epoch
    else:
      due = asgd_should_start([h["valid_ppl"] for h in state.history], valid_ppl,
                              cfg.asgd_nonmono)
    started = cfg.asgd and not bool(avg.active) and due
    if started:
      state.model = state.model.replace(avg=avg.replace(active=jnp.ones((), bool),
                                                        count=jnp.zeros(())))
    state.history.append({"valid_ppl": valid_ppl, "asgd_started": bool(started)})
    figures = {"valid_ppl": valid_ppl, "train_ppl": train["ppl"],
               "averaging": float(bool(state.model.avg.active))}
    text = (f"train ppl {train['ppl']:.2f}  valid ppl {valid_ppl:.2f}"
            f"{'  (averaged weights)' if averaged else ''}"
            f"{'  -> averaged SGD from now on' if started else ''}")
    return figures, text

  def divergence(self, state: Any, figures: dict[str, Any]) -> str | None:
    """A validation perplexity that is not finite, or None. The guarded steps keep the weights
    finite, so this is a model whose outputs overflow on the validation split; the steps that
    still pass do not bring it back (experiments/results/science.md, section 22), and every later
    epoch would be spent on it."""
    if math.isfinite(figures["valid_ppl"]):
      return None
    return (f"Epoch {state.epoch} ended with validation perplexity {figures['valid_ppl']} (not "
            f"finite): the weights stayed finite (steps with a NaN/Inf loss are skipped), but the "
            f"model's outputs overflow, and in the runs measured training on did not recover it "
            f"(experiments/results/science.md, section 22).")

  def advice(self, epoch: int) -> str:
    epoch_steps = self.steps_per_epoch(epoch)
    return (f"a learning-rate warm-up (--config.train.lr_warmup_steps={epoch_steps}, about one "
            f"epoch) or a lower --config.train.lr (now {self.cfg.train.lr})")

  def eval_params(self, state: Any) -> Any:
    """The averaged weights once averaging has taken at least one step, else the weights."""
    avg = state.model.avg
    if bool(avg.active) and float(avg.count) > 0:
      return avg.params
    return state.model.lm.params

  def perplexity(self, state: Any, data_BxN: np.ndarray) -> float:
    return lm_steps.evaluate_perplexity(self.eval_step, self.eval_params(state),
                                        state.model.lm.batch_stats, data_BxN, self.cfg.data.bptt,
                                        None, self.model.module.state_size)

  def describe(self, state: Any, workdir: str) -> str:
    return (f"train: {self.model.description}; {count_params(state.model.lm.params):,} "
            f"parameters; corpus {self.corpus.name} ({len(self.corpus.words)} words); workdir "
            f"{workdir}")

  def finish(self, state: Any) -> tuple[dict[str, Any], dict[str, float], str]:
    valid_ppl = self.perplexity(state, self.valid_BxN)
    test_ppl = self.perplexity(state, self.test_BxN)
    started = asgd_epoch(state.history)
    valid = [h["valid_ppl"] for h in state.history]
    summary = {"model": self.model.description, "architecture": self.model.arch_json,
               "params": count_params(state.model.lm.params), "epochs": state.epoch,
               "steps": state.steps, "valid_ppl": valid_ppl, "test_ppl": test_ppl,
               "best_valid_ppl": min(valid) if valid else None,
               "asgd_started_after_epoch": started + 1 if started is not None else None,
               "test_protocol": f"batch {self.cfg.data.test_batch_size}, state carried over "
                                f"the whole split, BPTT windows of {self.cfg.data.bptt}"}
    line = (f"final: valid ppl {valid_ppl:.2f}, test ppl {test_ppl:.2f} "
            f"({summary['test_protocol']}), {summary['params']:,} parameters")
    return summary, {"valid_ppl": valid_ppl, "test_ppl": test_ppl}, line


def asgd_epoch(history: list[dict[str, Any]]) -> int | None:
  """The epoch at whose end averaging started, or None."""
  return next((e for e, h in enumerate(history) if h.get("asgd_started")), None)
