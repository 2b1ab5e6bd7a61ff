"""Language modelling as a search task (the recurrent-cell space).

Shared phase: one window of the training split per step (AWD-style variable lengths a pure
function of (seed, pass)), the recurrent state carried between windows and reset at each pass.
Controller phase and derive: one validation window per step (`data.reward_windows` windows of
`bptt` tokens, read as one), zero initial state; reward
`reward_c / ppl`. The derived cell of an epoch is the sampled cell with the lowest perplexity on
the first validation window; its figure is the whole-validation perplexity.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from enas_jax.data.lm_batches import WindowStream, batchify, windows
from enas_jax.ops.params import count_params
from enas_jax.ops.shapes import abstract, int32_shapes
from enas_jax.spaces.base import SearchSpace
from enas_jax.spaces.rnn import formats
from enas_jax.tasks.language import steps as lm_steps
from enas_jax.tasks.language.data import load_corpus
from enas_jax.types import Batch, ScoreFn

RESUMABLE_CHANGES = ("search.epochs", "search.log_every", "search.on_divergence",
                     "search.rollback_lr_factor", "search.max_rollbacks", "search.finetune_steps",
                     "search.final_candidates", "search.screen_steps",
                     "shared.lr", "shared.lr_decay", "shared.lr_decay_start_epoch",
                     "checkpoint.", "deterministic", "parallel.", "report.",
                     # how the same values are computed (a run may move to another backend)
                     "model.activation_dispatch", "model.scan_unroll")


class SearchTaskImpl:
  """The corpus, its window streams, the language model's steps and the perplexity reward."""

  metric = "ppl"
  lower_is_better = True
  split_keys = ("inputs", "targets")  # [batch, window]
  sample_keys = ()  # the reward batch serves every scored architecture
  resumable_changes = RESUMABLE_CHANGES
  data_location = ("data.dir",)  # where the data is; its content is checked by fingerprint
  figure_source = "shared"  # figures under the shared weights
  cost_figure = ""  # scoring costs what the run takes

  def __init__(self, space: SearchSpace, cfg: Any):
    self.space, self.cfg = space, cfg
    self.cells_per_step = cfg.shared.cells_per_step
    d = cfg.data
    self.corpus = load_corpus(d)
    width = d.window_width
    self.train = WindowStream(batchify(self.corpus.train, d.batch_size, "train", d.bptt),
                              d.bptt, cfg.seed, d.variable_bptt, width)
    self.valid = WindowStream(batchify(self.corpus.valid, d.batch_size, "valid", d.reward_length,
                                       "`data.batch_size`, `data.bptt` or `data.reward_windows` "
                                       "(a reward's window is their product)"),
                              d.reward_length, cfg.seed, False, d.reward_length)
    self.valid_eval_BxN = batchify(self.corpus.valid, d.eval_batch_size, "valid", min_steps=1)
    self.model = space.shared_network(cfg.model, len(self.corpus.words))
    self.optimizer = lm_steps.make_optimizer(cfg.shared)
    self.train_step, self.eval_step = lm_steps.make_lm_steps(
        self.model, self.optimizer, cfg.shared.l2, l2_on=cfg.shared.l2_on)
    self.jit_eval_step = jax.jit(self.eval_step)

  def data_fingerprint(self) -> str:
    return self.corpus.fingerprint()

  def init_model(self, key: jax.Array) -> lm_steps.LMState:
    arch = self.space.random_arch(jax.random.key(0), self.cfg.model)  # shapes only
    return lm_steps.init_state(self.model, self.optimizer, key, self.cfg.data.batch_size, arch)

  def score(self) -> ScoreFn:
    return lm_steps.make_score(self.eval_step, self.space.from_decisions, self.cfg.controller,
                               self.cfg.model.hidden_dim)

  def example_batches(self) -> tuple[Batch, Batch]:
    d = self.cfg.data
    window = next(windows(self.train.data_BxN, d.bptt, width=self.train.width))
    reward = next(windows(self.valid.data_BxN, d.reward_length, width=d.reward_length))
    return (lm_steps.window_batch(window, d.bptt),
            lm_steps.window_batch(reward, d.reward_length))

  def shared_phase_length(self, state: Any) -> int:
    return (self.cfg.search.shared_steps
            or self.train.windows_per_pass(state.train_cursor.pass_index))

  def shared_batches(self, state: Any, n: int) -> Iterator[Batch]:
    d = self.cfg.data
    for window, starts_pass in self.train.take(state.train_cursor, n):
      if starts_pass:
        state.model = state.model.replace(hidden=jnp.zeros_like(state.model.hidden))
      yield lm_steps.window_batch(window, d.bptt, d.variable_bptt)

  def reward_batches(self, state: Any, n: int) -> Iterator[Batch]:
    for window, _ in self.valid.take(state.valid_cursor, n):
      yield lm_steps.window_batch(window, self.cfg.data.reward_length)

  def derive_batch(self, epoch: int) -> Batch:
    length = self.cfg.data.reward_length
    window = next(windows(self.valid.data_BxN, length, width=length))
    return lm_steps.window_batch(window, length)

  def evaluate(self, model: lm_steps.LMState, arch: Any) -> float:
    """Perplexity of `arch` on the whole validation split, the state carried across windows."""
    arch = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.int32), arch)  # one signature
    return lm_steps.evaluate_perplexity(self.jit_eval_step, model.params, model.batch_stats,
                                        self.valid_eval_BxN, self.cfg.data.bptt, arch)

  def screen_limit(self) -> tuple[str, float]:
    """The training NLL against a uniform guess over the vocabulary (`SearchTask`)."""
    return "nll", float(np.log(len(self.corpus.words)))

  def compile_evaluate(self, model: Any) -> None:
    """Compiles `evaluate`'s step for `model`'s shapes (`SearchTask.compile_evaluate`)."""
    bptt = self.cfg.data.bptt
    batch = lm_steps.window_batch(next(windows(self.valid_eval_BxN, bptt)), bptt)
    hidden = jax.ShapeDtypeStruct((self.valid_eval_BxN.shape[0], self.cfg.model.hidden_dim),
                                  jnp.float32, sharding=lm_steps.replicated_like(model.params))
    arch = int32_shapes(jax.eval_shape(
        lambda: self.space.random_arch(jax.random.key(0), self.cfg.model)))
    self.jit_eval_step.lower(model.params, model.batch_stats, abstract(batch), hidden,
                             arch).compile()

  def evaluate_parts(self, model: lm_steps.LMState, arch: Any, parts: int) -> list[float]:
    """Perplexity on each of `parts` contiguous stretches of every row of the validation split
    (disjoint tokens), each from a zero state."""
    arch = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.int32), arch)
    pieces = np.array_split(self.valid_eval_BxN, parts, axis=1)
    return [lm_steps.evaluate_perplexity(self.jit_eval_step, model.params, model.batch_stats,
                                         piece, self.cfg.data.bptt, arch) for piece in pieces]

  def describe(self, model: lm_steps.LMState, workdir: str) -> str:
    cfg, corpus = self.cfg, self.corpus
    text = (f"search: corpus {corpus.name} ({len(corpus.words)} words, {len(corpus.train)} "
            f"training tokens), {cfg.model.num_nodes}-node cells, "
            f"{count_params(model.params):,} shared parameters, controller "
            f"{cfg.controller.kind}; workdir {workdir}")
    return text + self._planted_line()

  def _planted_line(self) -> str:
    info = self.corpus.info
    if "teacher_ppl_valid" not in info:
      return ""
    return (f"\nplanted corpus: teacher cell [{info['teacher_arch']}], optimal valid ppl "
            f"{info['teacher_ppl_valid']:.2f}, unigram valid ppl {info['unigram_ppl_valid']:.2f}")

  def progress_figures(self, phase: str, record: dict[str, float]) -> dict[str, float]:
    if phase == "shared":
      return {"loss": record["loss"], "ppl": record["ppl"]}
    return {"reward": record["reward"], "ppl": record["valid_ppl"]}

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

  def summary_extras(self, evaluate: Callable[[Any], float], answer: Any) -> dict[str, Any]:
    """The corpus facts; on the planted corpus, the teacher's cell under the shared weights."""
    info = self.corpus.info
    extras: dict[str, Any] = {"corpus": {"name": self.corpus.name, **{
        k: v for k, v in info.items() if isinstance(v, (int, float, str))}}}
    teacher = info.get("teacher_arch")
    if teacher is not None:
      t_arch = formats.from_authors_string(teacher)
      if len(t_arch.act_N) == self.cfg.model.num_nodes:
        extras["planted_arch_valid_ppl_shared"] = evaluate(t_arch)
    return extras
