"""Final training of one CNN architecture from scratch (the macro or micro space).

Nesterov SGD with the cosine learning rate (warm restarts as configured), L2 on every weight,
gradient clipping, dropout before the classifier, optional auxiliary head (loss weight
`model.aux_weight`), drop-path on its schedule (micro) and cutout (`data.cutout`); batch norm
with moving averages. Each epoch is one pass over the training split in an order drawn from
(seed, epoch); after it the validation (when `data.valid_size` > 0) and test accuracies are
measured and recorded. The loop, checkpoints and resume are `run/final.py`'s.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
import optax

from enas_jax.data.cursor import Cursor
from enas_jax.data.image_batches import ImageStream, eval_batches, whole_split_note
from enas_jax.data.images import load_images
from enas_jax.io.configuration import require
from enas_jax.ops import guards
from enas_jax.ops.params import count_params, l2_penalty, set_learning_rate
from enas_jax.spaces.base import SearchSpace
from enas_jax.tasks.images import steps as cnn_steps
from enas_jax.types import Batch, Metrics

RESUMABLE_CHANGES = ("train.epochs", "train.log_every", "checkpoint.", "deterministic",
                     "train.stop_on_divergence")
AUX_HEAD = "aux_head"  # left out of parameter counts, as in the papers


@dataclasses.dataclass(frozen=True)
class CNNTrainConfig(cnn_steps.ImageTrainConfig):
  """The `train` section: the optimiser (as `shared` in a search) plus the length of the run."""

  epochs: int = 630
  log_every: int = 100
  stop_on_divergence: bool = True  # stop after an epoch in which every step was skipped

  def validate(self, section: str = "train") -> None:
    super().validate(section)
    require(self, section, ">= 1", "epochs", "log_every")  # as the recurrent training's


def make_steps(module: Any, optimizer: optax.GradientTransformation, cfg: Any,
               mean_C: Any, std_C: Any, total_steps: int = 1) -> tuple[Any, Any]:
  """(train_step(state, batch, key) -> (state, metrics), eval_step(params, batch_stats, images,
  labels, mask) -> (correct, count))."""
  mean_C, std_C = jnp.asarray(mean_C), jnp.asarray(std_C)
  aux_weight = cfg.model.aux_weight if cfg.model.aux_head else 0.0

  def train_step(state: cnn_steps.CNNState, batch: Any, key: jax.Array):
    k_aug, k_drop = jax.random.split(key)
    x = cnn_steps.prepare_images(batch, cfg.data, mean_C, std_C, k_aug)
    # a float: a Python int past 2**31 (10^9 epochs planned) was an OverflowError in the trace
    step_ratio = (state.step + 1).astype(jnp.float32) / float(max(total_steps, 1))

    def loss_fn(params):
      (logits, aux), updates = module.apply(
          {"params": params, "batch_stats": state.batch_stats}, x, train=True,
          step_ratio=step_ratio, rngs={"dropout": k_drop}, mutable=["batch_stats"])
      ce = cnn_steps.cross_entropy(logits, batch["labels"])
      loss = ce + cfg.train.l2 * l2_penalty(params)
      if aux is not None:
        loss = loss + aux_weight * cnn_steps.cross_entropy(aux, batch["labels"])
      return loss, (ce, logits, updates["batch_stats"])

    (loss, (ce, logits, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    new = state.replace(params=optax.apply_updates(state.params, updates), batch_stats=stats,
                        opt_state=opt_state, step=state.step + 1)
    return new, {"loss": ce, "total_loss": loss,
                 "accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["labels"])}

  def eval_step(params: Any, batch_stats: Any, images: jax.Array, labels: jax.Array,
                mask: jax.Array):
    x = cnn_steps.prepare_images({"images": images}, cfg.data, mean_C, std_C, None)
    logits, _ = module.apply({"params": params, "batch_stats": batch_stats}, x, train=False)
    correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32) * mask
    return jnp.sum(correct), jnp.sum(mask)

  return train_step, eval_step


class FinalTaskImpl:
  """One network of the space trained on the images; accuracies after every epoch."""

  resumable_changes = RESUMABLE_CHANGES
  data_location = ("data.data_dir",)  # where the data is; its content is checked by fingerprint

  def __init__(self, space: SearchSpace, cfg: Any, say: Callable[[str], None]):
    self.space, self.cfg = space, cfg
    self.arch = space.load(cfg.arch, cfg.model)
    self.data = load_images(cfg.data)
    self.train = ImageStream(self.data.train_x, self.data.train_y, cfg.data.batch_size,
                             cfg.seed, 0)
    self.module = space.fixed_network(self.arch, cfg.model,
                                      (self.data.image_shape, self.data.num_classes))
    self.optimizer = cnn_steps.make_optimizer(cfg.train)
    self.train_step, eval_step = make_steps(self.module, self.optimizer, cfg, self.data.mean_C,
                                            self.data.std_C,
                                            self.train.batches_per_pass * cfg.train.epochs)
    self.step = jax.jit(guards.guarded(self.train_step, "loss"), donate_argnums=(0, 3))
    self.eval_step = jax.jit(eval_step)
    self.key = jax.random.key(cfg.seed)

  def data_fingerprint(self) -> str:
    return self.data.fingerprint()

  def init_model(self) -> cnn_steps.CNNState:
    h, w, c = self.data.image_shape
    variables = self.module.init({"params": jax.random.fold_in(self.key, 0),
                                  "dropout": jax.random.fold_in(self.key, 2)},
                                 jnp.zeros((2, h, w, c)), train=True)  # train: the aux head too
    params = variables["params"]
    return cnn_steps.CNNState(params=params, batch_stats=variables["batch_stats"],
                              opt_state=self.optimizer.init(params),
                              step=jnp.zeros((), jnp.int32))

  def metric_shapes(self) -> Metrics:
    images, labels = next(self.train.take(Cursor(), 1))
    net = jax.eval_shape(self.init_model)
    shapes = jax.eval_shape(self.train_step, net, {"images": images, "labels": labels},
                            self.key)[1]
    f32 = jax.ShapeDtypeStruct((), jnp.float32)
    return {**shapes, "ok_steps": f32, "steps": f32}

  def steps_per_epoch(self, epoch: int) -> int:
    return self.train.batches_per_pass

  def start_epoch(self, state: Any) -> float:
    """A new epoch starts its pass; the learning rate follows the cosine schedule."""
    if state.epoch_step == 0:
      state.cursor = Cursor(pass_index=state.epoch, window=0)
    lr = self.cfg.train.lr_at_epoch(state.epoch)
    state.model = state.model.replace(opt_state=set_learning_rate(state.model.opt_state, lr))
    return lr

  def batches(self, state: Any, n: int) -> Iterator[Batch]:
    for images, labels in self.train.take(state.cursor, n):
      yield {"images": images, "labels": labels}

  def progress_figures(self, record: dict[str, float]) -> dict[str, float]:
    return {"loss": record["loss"], "acc": record["accuracy"]}

  def end_epoch(self, state: Any, train: dict[str, float]) -> tuple[dict[str, Any], str]:
    """Test (and validation) accuracy after the epoch, kept in the history."""
    del train  # the epoch line shows the test and validation accuracy only
    lr = self.cfg.train.lr_at_epoch(state.epoch)
    figures = {"lr": lr, "test_acc": self.accuracy(state, self.data.test_x, self.data.test_y)}
    if len(self.data.valid_x):
      figures["valid_acc"] = self.accuracy(state, self.data.valid_x, self.data.valid_y)
    state.history.append(figures)
    valid = f"  valid acc {figures['valid_acc']:.4f}" if "valid_acc" in figures else ""
    return figures, f"lr {lr:.4g}{valid}  test acc {figures['test_acc']:.4f}"

  def divergence(self, state: Any, figures: dict[str, Any]) -> str | None:
    """None: an accuracy is always finite (the guarded steps keep the weights finite); the loop
    stops on an epoch whose every step was skipped."""
    del state, figures
    return None

  def advice(self, epoch: int) -> str:
    del epoch
    cfg = self.cfg.train
    return (f"a lower --config.train.lr (now {cfg.lr}) or a tighter --config.train.grad_clip "
            f"(now {cfg.grad_clip})")

  def accuracy(self, state: Any, x: np.ndarray, y: np.ndarray) -> float:
    correct, count = jnp.zeros(()), jnp.zeros(())  # summed on the device: one transfer
    for images, labels, mask in eval_batches(x, y, self.cfg.data.eval_batch_size):
      c, n = self.eval_step(state.model.params, state.model.batch_stats, images, labels, mask)
      correct, count = correct + c, count + n
    return float(correct) / max(float(count), 1.0)

  def describe(self, state: Any, workdir: str) -> str:
    return (f"train: {self.space.size(self.cfg.model)} "
            f"[{self.space.to_authors_string(self.arch)}]; "
            f"{count_params(state.model.params, (AUX_HEAD,)):,} parameters; {self.data.name} "
            f"({len(self.data.train_x)} training images); workdir {workdir}"
            f"{whole_split_note(self.cfg.data.batch_size, len(self.data.train_x))}")

  def finish(self, state: Any) -> tuple[dict[str, Any], dict[str, float], str]:
    test_acc = self.accuracy(state, self.data.test_x, self.data.test_y)
    summary = {"model": self.space.size(self.cfg.model), "space": self.cfg.space,
               "architecture": self.space.to_json(self.arch),
               "authors": self.space.to_authors_string(self.arch),
               "params": count_params(state.model.params, (AUX_HEAD,)), "epochs": state.epoch,
               "steps": state.steps, "test_acc": test_acc, "test_error": 1.0 - test_acc,
               "history": state.history, "dataset": self.data.name}
    if len(self.data.valid_x):
      summary["valid_acc"] = self.accuracy(state, self.data.valid_x, self.data.valid_y)
    line = (f"final: test accuracy {test_acc:.4f} (error {100 * (1 - test_acc):.2f}%), "
            f"{summary['params']:,} parameters")
    return summary, {"test_acc": test_acc}, line
