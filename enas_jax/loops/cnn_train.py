"""Final training of one CNN architecture from scratch (the macro or micro space).

Nesterov SGD with the cosine learning rate (warm restarts as configured), L2 on every weight,
gradient clipping, dropout before the classifier, optional auxiliary head (loss weight
`model.aux_weight`), drop-path on its schedule (micro) and cutout (`data.cutout`); batch norm
with moving averages. Each epoch is one
pass over the training split in an order drawn from (seed, epoch); after it the validation (when
`data.valid_size` > 0) and test accuracies are measured and recorded. Checkpoints at each epoch's
end and every `checkpoint.every_steps` steps; running the same command again resumes bit for bit.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Literal, TextIO

import jax
import jax.numpy as jnp
import numpy as np
import optax

from enas_jax import checkpoints as ckpt_lib
from enas_jax import metrics as metrics_lib
from enas_jax import workdir as workdir_lib
from enas_jax.configuration import from_section
from enas_jax.data.image_batches import ImageStream, eval_batches
from enas_jax.data.images import ImageDataConfig, load_images
from enas_jax.data.lm_batches import Cursor
from enas_jax.errors import UserError
from enas_jax.loops import cnn_steps, guards, train_run
from enas_jax.loops.lm_steps import set_learning_rate
from enas_jax.spaces import cnn as cnn_spaces
from enas_jax.spaces.macro import network as macro_network
from enas_jax.spaces.micro import network as micro_network

RESUMABLE_CHANGES = ("train.epochs", "train.log_every", "checkpoint.", "deterministic")


@dataclasses.dataclass(frozen=True)
class CNNTrainConfig(cnn_steps.ImageTrainConfig):
  """The `train` section: the optimiser (as `shared` in a search) plus the length of the run."""

  epochs: int = 630
  log_every: int = 100

  def validate(self, section: str = "train") -> None:
    super().validate(section)
    if self.epochs < 1 or self.log_every < 1:
      raise UserError(f"Config fields `{section}.epochs` and `{section}.log_every` must be at "
                      f"least 1.")


@dataclasses.dataclass(frozen=True)
class CNNFinalConfig:
  """A whole CNN final-training config (configs/cifar10_macro_final.py)."""

  space: Literal["macro"] = "macro"
  seed: int = 0
  deterministic: bool = False
  arch: str = ""
  data: ImageDataConfig = dataclasses.field(default_factory=ImageDataConfig)
  model: macro_network.MacroModelConfig = dataclasses.field(
      default_factory=macro_network.MacroModelConfig)
  train: CNNTrainConfig = dataclasses.field(default_factory=CNNTrainConfig)
  checkpoint: ckpt_lib.CheckpointConfig = dataclasses.field(
      default_factory=ckpt_lib.CheckpointConfig)

  def validate(self, section: str = "") -> None:
    if not self.arch:
      raise UserError(f"Config field `arch` is empty: give a {self.space} search's workdir, its "
                      f"best_arch.json, or the authors' {self.space} string, e.g. --config.arch="
                      f"workdirs/cifar10_{self.space}.")


@dataclasses.dataclass(frozen=True)
class MicroFinalConfig(CNNFinalConfig):
  """A whole micro final-training config (configs/cifar10_micro_final.py)."""

  space: Literal["micro"] = "micro"
  model: micro_network.MicroModelConfig = dataclasses.field(
      default_factory=micro_network.MicroModelConfig)


def config_from_dict(config: Any) -> CNNFinalConfig:
  cls = MicroFinalConfig if config.get("space") == "micro" else CNNFinalConfig
  return from_section(cls, "", config)


def count_params(params: Any) -> int:
  """Parameters of the network used at test time (the auxiliary head is left out, as in the
  papers' counts)."""
  kept = {k: v for k, v in params.items() if k != "aux_head"}
  return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(kept)))


def make_steps(module: Any, optimizer: optax.GradientTransformation, cfg: CNNFinalConfig,
               mean_C: Any, std_C: Any, total_steps: int = 1) -> tuple[Any, Any]:
  """(train_step(state, batch, key) -> (state, metrics), eval_step(params, batch_stats, images,
  labels, mask) -> (correct, count))."""
  mean_C, std_C = jnp.asarray(mean_C), jnp.asarray(std_C)
  aux_weight = cfg.model.aux_weight if cfg.model.aux_head else 0.0

  def train_step(state: cnn_steps.CNNState, batch: Any, key: jax.Array):
    k_aug, k_drop = jax.random.split(key)
    x = cnn_steps.prepare_images(batch, cfg.data, mean_C, std_C, k_aug)
    step_ratio = (state.step + 1).astype(jnp.float32) / max(total_steps, 1)

    def loss_fn(params):
      (logits, aux), updates = module.apply(
          {"params": params, "batch_stats": state.batch_stats}, x, train=True,
          step_ratio=step_ratio, rngs={"dropout": k_drop}, mutable=["batch_stats"])
      ce = cnn_steps.cross_entropy(logits, batch["labels"])
      loss = ce + cfg.train.l2 * cnn_steps.l2_penalty(params)
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


@dataclasses.dataclass
class TrainState:
  net: cnn_steps.CNNState
  sums: dict[str, jax.Array]
  epoch: int = 0
  epoch_step: int = 0
  steps: int = 0
  cursor: Cursor = dataclasses.field(default_factory=Cursor)
  history: list[dict[str, float]] = dataclasses.field(default_factory=list)

  def arrays(self) -> dict[str, Any]:
    return {"net": self.net, "sums": self.sums}

  def position(self) -> dict[str, Any]:
    return {"epoch": self.epoch, "epoch_step": self.epoch_step, "steps": self.steps,
            "cursor": dataclasses.asdict(self.cursor), "history": self.history}

  @property
  def save_index(self) -> int:
    return self.steps + self.epoch

  @classmethod
  def from_saved(cls, arrays: dict[str, Any], pos: dict[str, Any]) -> "TrainState":
    return cls(net=arrays["net"], sums=arrays["sums"], epoch=pos["epoch"],
               epoch_step=pos["epoch_step"], steps=pos["steps"], cursor=Cursor(**pos["cursor"]),
               history=pos["history"])


class TrainRun(train_run.TrainRun):
  """One final CNN training: data, network, compiled steps, workdir outputs."""

  RESUMABLE_CHANGES = RESUMABLE_CHANGES
  state_class = TrainState

  def __init__(self, cfg: CNNFinalConfig, workdir: str, out: TextIO,
               progress: metrics_lib.Progress):
    super().__init__(cfg, workdir, out, progress)
    self.space = cnn_spaces.CNN_SPACES[cfg.space]
    self.arch = self.space.load_arch(cfg.arch, cfg.model)
    workdir_lib.prepare(workdir)
    self.data = load_images(cfg.data)
    self.train = ImageStream(self.data.train_x, self.data.train_y, cfg.data.batch_size,
                             cfg.seed, 0)
    self.module = self.space.fixed_network(self.arch, cfg.model, self.data.num_classes)
    self.optimizer = cnn_steps.make_optimizer(cfg.train)
    train_step, eval_step = make_steps(self.module, self.optimizer, cfg, self.data.mean_C,
                                       self.data.std_C,
                                       self.train.batches_per_pass * cfg.train.epochs)
    self.step = jax.jit(guards.guarded(train_step, "loss"), donate_argnums=(0, 3))
    self.eval_step = jax.jit(eval_step)
    self.key = jax.random.key(cfg.seed)
    images, labels = next(self.train.take(Cursor(), 1))
    net = jax.eval_shape(self._init_net)
    shapes = jax.eval_shape(train_step, net, {"images": images, "labels": labels}, self.key)[1]
    f32 = jax.ShapeDtypeStruct((), jnp.float32)
    self.metric_shapes = {**shapes, "ok_steps": f32, "steps": f32}

  def _init_net(self) -> cnn_steps.CNNState:
    h, w, c = self.data.image_shape
    variables = self.module.init({"params": jax.random.fold_in(self.key, 0),
                                  "dropout": jax.random.fold_in(self.key, 2)},
                                 jnp.zeros((2, h, w, c)), train=True)  # train: the aux head too
    params = variables["params"]
    return cnn_steps.CNNState(params=params, batch_stats=variables["batch_stats"],
                              opt_state=self.optimizer.init(params),
                              step=jnp.zeros((), jnp.int32))

  def _zero_sums(self) -> dict[str, jax.Array]:
    return {k: jnp.zeros(s.shape, s.dtype) for k, s in self.metric_shapes.items()}

  def fresh_state(self) -> TrainState:
    return TrainState(net=jax.jit(self._init_net)(), sums=self._zero_sums())

  def describe(self, state: TrainState) -> None:
    self.say(f"train: {self.space.size(self.cfg.model)} "
             f"[{self.space.to_authors_string(self.arch)}]; "
             f"{count_params(state.net.params):,} parameters; {self.data.name} "
             f"({len(self.data.train_x)} training images); workdir {self.workdir}")

  def run_epoch(self, state: TrainState) -> None:
    cfg, start = self.cfg, time.time()
    if state.epoch_step == 0:
      state.cursor = Cursor(pass_index=state.epoch, window=0)
    n = self.train.batches_per_pass
    lr = cfg.train.lr_at_epoch(state.epoch)
    state.net = state.net.replace(opt_state=set_learning_rate(state.net.opt_state, lr))
    key = jax.random.fold_in(self.key, 1)
    epoch_sums = self._zero_sums()
    for images, labels in self.train.take(state.cursor, n - state.epoch_step):
      state.net, state.sums = self.step(state.net, {"images": images, "labels": labels}, key,
                                        state.sums)
      state.epoch_step += 1
      state.steps += 1
      if state.epoch_step % cfg.train.log_every == 0 or state.epoch_step == n:
        record = guards.sums_to_record(state.sums)
        record["lr"] = lr
        self.log.write("train", state.steps, record)
        epoch_sums = jax.tree_util.tree_map(jnp.add, epoch_sums, state.sums)
        state.sums = self._zero_sums()
        if record["skipped_steps"]:
          self.say(f"warning: {int(record['skipped_steps'])} step(s) up to step {state.steps} "
                   f"had a NaN/Inf loss and were skipped; lower --config.train.lr if it repeats.")
        self.progress.show(f"epoch {state.epoch + 1}", state.epoch_step, n,
                           {"loss": record["loss"], "acc": record["accuracy"]}, force=True)
      every = cfg.checkpoint.every_steps
      if every and state.steps % every == 0 and state.epoch_step < n:
        self.save(state)
    figures = {"lr": lr, "test_acc": self.accuracy(state, self.data.test_x, self.data.test_y)}
    if len(self.data.valid_x):
      figures["valid_acc"] = self.accuracy(state, self.data.valid_x, self.data.valid_y)
    state.history.append(figures)
    state.epoch += 1
    state.epoch_step = 0
    self.log.write("epoch", state.epoch, {**figures, "seconds": time.time() - start})
    self.save(state)
    valid = f"  valid acc {figures['valid_acc']:.4f}" if "valid_acc" in figures else ""
    self.say(f"epoch {state.epoch}/{cfg.train.epochs}  lr {lr:.4g}{valid}  test acc "
             f"{figures['test_acc']:.4f}  ({time.time() - start:.1f} s)")

  def accuracy(self, state: TrainState, x: np.ndarray, y: np.ndarray) -> float:
    correct, count = jnp.zeros(()), jnp.zeros(())  # summed on the device: one transfer
    for images, labels, mask in eval_batches(x, y, self.cfg.data.eval_batch_size):
      c, n = self.eval_step(state.net.params, state.net.batch_stats, images, labels, mask)
      correct, count = correct + c, count + n
    return float(correct) / max(float(count), 1.0)

  def finish(self, state: TrainState) -> dict[str, Any]:
    test_acc = self.accuracy(state, self.data.test_x, self.data.test_y)
    summary = {"model": self.space.size(self.cfg.model), "space": self.cfg.space,
               "architecture": self.space.to_json(self.arch),
               "authors": self.space.to_authors_string(self.arch),
               "params": count_params(state.net.params), "epochs": state.epoch,
               "steps": state.steps, "test_acc": test_acc, "test_error": 1.0 - test_acc,
               "history": state.history, "dataset": self.data.name}
    if len(self.data.valid_x):
      summary["valid_acc"] = self.accuracy(state, self.data.valid_x, self.data.valid_y)
    self.log.write("final", state.steps, {"test_acc": test_acc})
    self.log.close()
    self.checkpointer.close()
    workdir_lib.write_json(os.path.join(self.workdir, "summary.json"), summary)
    self.say(f"final: test accuracy {test_acc:.4f} (error {100 * (1 - test_acc):.2f}%), "
             f"{summary['params']:,} parameters")
    self.final_state = state
    return summary


def run_training(cfg: CNNFinalConfig, workdir: str, out: TextIO,
                 progress: metrics_lib.Progress | None = None) -> dict[str, Any]:
  """Trains (or resumes training) the configured network; returns the summary."""
  return TrainRun(cfg, workdir, out, progress or metrics_lib.Progress()).execute()
