"""Image classification as a search task (the macro and micro spaces).

Shared phase: one training batch per step (augmented inside the jitted step), each with a fresh
architecture sampled from the controller; one pass over the training split per epoch by default.
Controller phase: `controller.num_samples` architectures per update, each rewarded with its
accuracy on the next validation batch (the paper's reward), plus the skip-rate penalty (macro).
Derive: the sampled architecture with the best accuracy on one validation batch, evaluated on the
whole validation split. Batch norm in the shared network normalises with each batch's statistics,
so whole-split evaluations use full batches only (the last partial batch is left out).
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from enas_jax.data.cursor import Cursor
from enas_jax.data.image_batches import ImageStream, whole_split_note
from enas_jax.data.images import load_images
from enas_jax.io.errors import UserError
from enas_jax.ops.params import count_params
from enas_jax.ops.shapes import abstract, int32_shapes
from enas_jax.spaces.base import SearchSpace
from enas_jax.tasks.images import steps as cnn_steps
from enas_jax.types import Batch, Metrics, ScoreFn

RESUMABLE_CHANGES = ("search.epochs", "search.log_every", "search.on_divergence",
                     "search.rollback_lr_factor", "search.max_rollbacks", "search.finetune_steps",
                     "search.final_candidates", "search.screen_steps",
                     "shared.lr", "shared.lr_min", "checkpoint.", "deterministic", "parallel.",
                     "report.")
_TRAIN_STREAM, _VALID_STREAM, _DERIVE_STREAM = 0, 1, 2  # data-order streams


def _batch(images: Any, labels: Any) -> dict[str, Any]:
  return {"images": images, "labels": labels}


class SearchTaskImpl:
  """The images, their streams, the shared network's steps and the accuracy reward."""

  metric = "acc"
  lower_is_better = False
  split_keys = ("images", "labels")
  sample_keys = ()  # the reward batch serves every scored architecture
  resumable_changes = RESUMABLE_CHANGES
  data_location = ("data.data_dir",)  # where the data is; its content is checked by fingerprint
  figure_source = "shared"  # figures under the shared weights
  cost_figure = ""  # scoring costs what the run takes
  cells_per_step = 1  # one architecture a shared step

  def __init__(self, space: SearchSpace, cfg: Any):
    self.space, self.cfg = space, cfg
    self.data = load_images(cfg.data)
    d = cfg.data
    if len(self.data.valid_x) < d.batch_size:
      raise UserError(f"The validation split of {self.data.name} has {len(self.data.valid_x)} "
                      f"images, fewer than one batch (`data.batch_size` {d.batch_size}); the "
                      f"controller's rewards need it. Raise `data.valid_size`.")
    self.train = ImageStream(self.data.train_x, self.data.train_y, d.batch_size, cfg.seed,
                             _TRAIN_STREAM)
    self.valid = ImageStream(self.data.valid_x, self.data.valid_y, d.batch_size, cfg.seed,
                             _VALID_STREAM)
    self.derive_batches = ImageStream(self.data.valid_x, self.data.valid_y, d.batch_size,
                                      cfg.seed, _DERIVE_STREAM)
    self.network = space.shared_network(cfg.model,
                                        (self.data.image_shape, self.data.num_classes))
    per_epoch = cfg.search.shared_steps or self.train.batches_per_pass
    self.optimizer = cnn_steps.make_optimizer(cfg.shared)
    aux_weight = cfg.model.aux_weight if getattr(cfg.model, "aux_head", False) else 0.0
    self.train_step, self.accuracy = cnn_steps.make_shared_steps(
        self.network.apply, self.optimizer, cfg.shared, cfg.data, self.data.mean_C,
        self.data.std_C, aux_weight, per_epoch * cfg.search.epochs)
    self.jit_accuracy = jax.jit(self.accuracy)

  def data_fingerprint(self) -> str:
    return self.data.fingerprint()

  def init_model(self, key: jax.Array) -> cnn_steps.CNNState:
    params = self.network.init(key)
    return cnn_steps.CNNState(params=params, batch_stats={},
                              opt_state=self.optimizer.init(params),
                              step=jnp.zeros((), jnp.int32))

  def score(self) -> ScoreFn:
    """Accuracy of each sampled architecture on one validation batch, one at a time
    (`lax.map`), with the space's per-architecture figures (macro: skip rate)."""
    def score_S(params: Any, batch_stats: Any, batch: Batch, values_SxD: jax.Array
                ) -> tuple[jax.Array, Metrics]:
      del batch_stats  # batch statistics in the shared network

      def one(values_D):
        arch = self.space.from_decisions(values_D)
        return self.accuracy(params, batch, arch), self.space.arch_figures(arch)

      acc_S, figures_S = jax.lax.map(one, values_SxD)
      return acc_S, {"valid_acc": acc_S, **figures_S}

    return score_S

  def example_batches(self) -> tuple[Batch, Batch]:
    images, labels = next(self.train.take(Cursor(), 1))
    return _batch(images, labels), _batch(images, labels)

  def shared_phase_length(self, state: Any) -> int:
    return self.cfg.search.shared_steps or self.train.batches_per_pass

  def shared_batches(self, state: Any, n: int) -> Iterator[Batch]:
    for images, labels in self.train.take(state.train_cursor, n):
      yield _batch(images, labels)

  def reward_batches(self, state: Any, n: int) -> Iterator[Batch]:
    for images, labels in self.valid.take(state.valid_cursor, n):
      yield _batch(images, labels)

  def derive_batch(self, epoch: int) -> Batch:
    return _batch(*next(self.derive_batches.take(Cursor(pass_index=epoch), 1)))

  def evaluate(self, model: cnn_steps.CNNState, arch: Any) -> float:
    """Accuracy on the validation split's full batches under the shared weights."""
    return self._accuracy_over(model, arch, self._eval_starts())

  def screen_limit(self) -> tuple[str, float]:
    """The training cross-entropy against a uniform guess over the classes (`SearchTask`)."""
    return "loss", float(np.log(self.data.num_classes))

  def compile_evaluate(self, model: Any) -> None:
    """Compiles `evaluate`'s step for `model`'s shapes (`SearchTask.compile_evaluate`)."""
    size = min(self.cfg.data.eval_batch_size, len(self.data.valid_x))
    batch = _batch(self.data.valid_x[:size], self.data.valid_y[:size])
    arch = int32_shapes(jax.eval_shape(
        lambda: self.space.random_arch(jax.random.key(0), self.cfg.model)))
    self.jit_accuracy.lower(model.params, abstract(batch), arch).compile()

  def evaluate_parts(self, model: cnn_steps.CNNState, arch: Any, parts: int) -> list[float]:
    """Accuracy on each of `parts` disjoint runs of the validation split's full batches."""
    starts = self._eval_starts()
    if len(starts) < parts:
      raise UserError(f"The validation split of {self.data.name} has {len(starts)} evaluation "
                      f"batch(es) (`data.eval_batch_size` {self.cfg.data.eval_batch_size}), "
                      f"fewer than the {parts} parts the report compares. Lower "
                      f"`data.eval_batch_size` or raise `data.valid_size`.")
    return [self._accuracy_over(model, arch, list(part))
            for part in np.array_split(np.asarray(starts), parts)]

  def _eval_starts(self) -> list[int]:
    size = min(self.cfg.data.eval_batch_size, len(self.data.valid_x))
    return list(range(0, len(self.data.valid_x) - size + 1, size))

  def _accuracy_over(self, model: cnn_steps.CNNState, arch: Any, starts: list[int]) -> float:
    arch = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.int32), arch)
    size = min(self.cfg.data.eval_batch_size, len(self.data.valid_x))
    total = jnp.zeros(())  # summed on the device: one transfer at the end
    for start in starts:
      start = int(start)
      batch = _batch(self.data.valid_x[start:start + size], self.data.valid_y[start:start + size])
      total = total + self.jit_accuracy(model.params, batch, arch)
    return float(total) / len(starts)

  def describe(self, model: cnn_steps.CNNState, workdir: str) -> str:
    cfg, d = self.cfg, self.data
    return (f"search: {d.name} ({len(d.train_x)} training, {len(d.valid_x)} validation images "
            f"of {'x'.join(map(str, d.image_shape))}), {self.space.size(cfg.model)}, "
            f"{count_params(model.params):,} shared parameters, controller "
            f"{cfg.controller.kind}; workdir {workdir}"
            f"{whole_split_note(cfg.data.batch_size, len(d.train_x))}")

  def progress_figures(self, phase: str, record: dict[str, float]) -> dict[str, float]:
    if phase == "shared":
      return {"loss": record["loss"], "acc": record["accuracy"]}
    return {"reward": record["reward"], "acc": record["valid_acc"]}

  def epoch_figures(self, shared: dict[str, float], control: dict[str, float],
                    derived: dict[str, Any] | None) -> str:
    line = ""
    if shared["steps"]:
      line += f"  shared acc {shared['accuracy']:.3f}"
    if control["steps"]:
      line += f"  reward {control['reward']:.4f}"
      if "skip_rate" in control:
        line += f"  skip rate {control['skip_rate']:.2f}"
      line += f"  entropy {control['entropy']:.2f}"
    if derived:
      line += f"  derived valid acc {derived['valid_acc']:.4f}"
    return line

  def summary_extras(self, evaluate: Callable[[Any], float], answer: Any) -> dict[str, Any]:
    return {"dataset": self.data.name}
