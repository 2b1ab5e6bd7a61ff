"""The ENAS convolutional search loop: the macro and micro spaces on images (the epoch structure
lives in `loops.search_run`, the spaces behind `spaces.cnn.CNNSpace`).

Shared phase: one training batch per step (augmented inside the jitted step), each with a fresh
architecture sampled from the controller; one pass over the training split per epoch by default.
Controller phase: `controller.num_samples` architectures per update, each rewarded with its
accuracy on the next validation batch (the paper's reward), plus the skip-rate penalty (macro).
Derive: the sampled architecture with the best accuracy on one validation batch, evaluated on the
whole validation split. Batch norm in the shared network normalises with each batch's statistics,
so whole-split evaluations use full batches only (the last partial batch is left out).
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
from enas_jax.data.image_batches import ImageStream
from enas_jax.data.lm_batches import Cursor
from enas_jax.data.images import ImageDataConfig, ImageSplits, load_images
from enas_jax.errors import UserError
from enas_jax.loops import cnn_steps, controller_steps, guards, search_run
from enas_jax.loops.lm_steps import set_learning_rate
from enas_jax.loops.search_run import SearchLoopConfig, SearchState
from enas_jax.parallel import ParallelConfig
from enas_jax.spaces import cnn as cnn_spaces
from enas_jax.spaces.cnn import CNNSpace
from enas_jax.spaces.macro import network as macro_network
from enas_jax.spaces.micro import network as micro_network

RESUMABLE_CHANGES = ("search.epochs", "search.log_every", "search.on_divergence",
                     "search.rollback_lr_factor", "search.max_rollbacks", "shared.lr",
                     "shared.lr_min", "checkpoint.", "deterministic", "parallel.")
_TRAIN_STREAM, _VALID_STREAM, _DERIVE_STREAM = 0, 1, 2  # data-order streams


@dataclasses.dataclass(frozen=True)
class CNNSearchConfig:
  """A whole macro search config (configs/cifar10_macro.py)."""

  space: Literal["macro"] = "macro"
  seed: int = 0
  deterministic: bool = False
  data: ImageDataConfig = dataclasses.field(default_factory=ImageDataConfig)
  model: macro_network.MacroModelConfig = dataclasses.field(
      default_factory=macro_network.MacroModelConfig)
  shared: cnn_steps.ImageTrainConfig = dataclasses.field(
      default_factory=cnn_steps.ImageTrainConfig)
  controller: ctl.ControllerConfig = dataclasses.field(default_factory=ctl.ControllerConfig)
  search: SearchLoopConfig = dataclasses.field(default_factory=SearchLoopConfig)
  checkpoint: ckpt_lib.CheckpointConfig = dataclasses.field(
      default_factory=ckpt_lib.CheckpointConfig)
  parallel: ParallelConfig = dataclasses.field(default_factory=ParallelConfig)


@dataclasses.dataclass(frozen=True)
class MicroSearchConfig(CNNSearchConfig):
  """A whole micro search config (configs/cifar10_micro.py)."""

  space: Literal["micro"] = "micro"
  model: micro_network.MicroModelConfig = dataclasses.field(
      default_factory=micro_network.MicroModelConfig)


def config_from_dict(config: Any) -> CNNSearchConfig:
  cls = MicroSearchConfig if config.get("space") == "micro" else CNNSearchConfig
  return from_section(cls, "", config)


def space_of(cfg: CNNSearchConfig) -> CNNSpace:
  return cnn_spaces.CNN_SPACES[cfg.space]


@dataclasses.dataclass(frozen=True)
class SearchProgram:
  """The controller and the jitted phase functions (each compiled once)."""

  controller: ctl.Controller
  optimizer: Any
  ctrl_optimizer: Any
  shared_step: Any  # (state, ctrl_params, batch, key, sums) -> (state, sums)
  controller_step: Any  # (cstate, params, batch_stats, batch, key, sums) -> (cstate, sums)
  derive_step: Any  # (ctrl_params, params, batch_stats, batch, key) -> (values, reward, figures)
  accuracy: Any  # (params, batch, arch) -> accuracy
  shared_metric_shapes: Any
  controller_metric_shapes: Any


def build_program(cfg: CNNSearchConfig, data: ImageSplits, total_steps: int = 1) -> SearchProgram:
  """`total_steps`: the search's shared steps in all (the drop-path schedule's length)."""
  model_cfg, space = cfg.model, space_of(cfg)

  def apply(params, arch, x, dropout_key, step_ratio):
    return space.shared_apply(params, arch, x, model_cfg, dropout_key, step_ratio)

  optimizer = cnn_steps.make_optimizer(cfg.shared)
  aux_weight = model_cfg.aux_weight if model_cfg.aux_head else 0.0
  train_step, accuracy = cnn_steps.make_shared_steps(apply, optimizer, cfg.shared, cfg.data,
                                                     data.mean_C, data.std_C, aux_weight,
                                                     total_steps)
  controller = ctl.Controller(space.decisions(model_cfg), cfg.controller)
  ctrl_opt = controller_steps.make_controller_optimizer(cfg.controller)

  def shared_step(state, ctrl_params, batch, key):
    values = ctl.sample(controller, ctrl_params, jax.random.fold_in(key, 0)).values
    return train_step(state, batch, space.from_decisions(values), jax.random.fold_in(key, 1))

  def score_S(params, batch_stats, batch, values_SxD):
    del batch_stats  # batch statistics in the shared network

    def one(values_D):
      arch = space.from_decisions(values_D)
      return accuracy(params, batch, arch), space.arch_figures(arch)

    acc_S, figures_S = jax.lax.map(one, values_SxD)
    return acc_S, {"valid_acc": acc_S, **figures_S}

  controller_step = controller_steps.make_controller_step(controller, cfg.controller, ctrl_opt,
                                                          score_S)
  derive_step = controller_steps.make_derive_step(controller, score_S, cfg.search.derive_samples)
  return SearchProgram(
      controller=controller, optimizer=optimizer, ctrl_optimizer=ctrl_opt,
      shared_step=jax.jit(guards.guarded(shared_step, "loss"), donate_argnums=(0, 4)),
      controller_step=jax.jit(guards.guarded(controller_step, "controller_loss"),
                              donate_argnums=(0, 5)),
      derive_step=jax.jit(derive_step), accuracy=jax.jit(accuracy),
      shared_metric_shapes=search_run.metric_shapes(shared_step),
      controller_metric_shapes=search_run.metric_shapes(controller_step))


def count_params(params: Any) -> int:
  return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(params)))


def _batch(images: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
  return {"images": images, "labels": labels}


class SearchRun(search_run.SearchRun):
  """One CNN search: the config, the images, the compiled program, the workdir's outputs."""

  RESUMABLE_CHANGES = RESUMABLE_CHANGES
  SPLIT_KEYS = ("images", "labels")

  def __init__(self, cfg: CNNSearchConfig, workdir: str, out: TextIO,
               progress: metrics_lib.Progress):
    super().__init__(cfg, workdir, out, progress)
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
    self.space = space_of(cfg)
    per_epoch = cfg.search.shared_steps or self.train.batches_per_pass
    self.program = build_program(cfg, self.data, per_epoch * cfg.search.epochs)

  def init_model(self) -> cnn_steps.CNNState:
    params = self.space.init_shared(jax.random.fold_in(self.base_key, search_run.INIT_MODEL),
                                    self.cfg.model, self.data.image_shape,
                                    self.data.num_classes)
    return cnn_steps.CNNState(params=params, batch_stats={},
                              opt_state=self.program.optimizer.init(params),
                              step=jnp.zeros((), jnp.int32))

  def init_ctrl(self) -> controller_steps.ControllerState:
    return controller_steps.init_controller_state(
        self.program.controller, self.program.ctrl_optimizer,
        jax.random.fold_in(self.base_key, search_run.INIT_CONTROLLER))

  def example_batches(self) -> tuple[Any, Any]:
    images, labels = next(self.train.take(Cursor(), 1))
    return _batch(images, labels), _batch(images, labels)

  def shared_phase_length(self, state: SearchState) -> int:
    return self.cfg.search.shared_steps or self.train.batches_per_pass

  def set_learning_rate(self, model: cnn_steps.CNNState, lr: float) -> cnn_steps.CNNState:
    return model.replace(opt_state=set_learning_rate(model.opt_state, lr))

  def shared_batches(self, state: SearchState, n: int) -> Iterator[Any]:
    for images, labels in self.train.take(state.train_cursor, n):
      yield _batch(images, labels)

  def reward_batches(self, state: SearchState, n: int) -> Iterator[Any]:
    for images, labels in self.valid.take(state.valid_cursor, n):
      yield _batch(images, labels)

  def progress_figures(self, phase: str, record: dict[str, float]) -> dict[str, float]:
    if phase == search_run.SHARED:
      return {"loss": record["loss"], "acc": record["accuracy"]}
    return {"reward": record["reward"], "acc": record["valid_acc"]}

  def describe(self, state: SearchState) -> None:
    cfg, d = self.cfg, self.data
    self.say(f"search: {d.name} ({len(d.train_x)} training, {len(d.valid_x)} validation images "
             f"of {'x'.join(map(str, d.image_shape))}), {self.space.size(cfg.model)}, "
             f"{count_params(state.model.params):,} shared parameters, controller "
             f"{cfg.controller.kind}; workdir {self.workdir}")

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

  def valid_accuracy(self, state: SearchState, arch: Any) -> float:
    """Accuracy on the validation split's full batches under the shared weights."""
    arch = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.int32), arch)
    size = min(self.cfg.data.eval_batch_size, len(self.data.valid_x))
    starts = range(0, len(self.data.valid_x) - size + 1, size)
    total = jnp.zeros(())  # summed on the device: one transfer at the end
    for start in starts:
      batch = _batch(self.data.valid_x[start:start + size], self.data.valid_y[start:start + size])
      total = total + self.program.accuracy(state.model.params, batch, arch)
    return float(total) / len(starts)

  def derive(self, state: SearchState, reward: float | None) -> dict[str, Any]:
    images, labels = next(self.derive_batches.take(Cursor(pass_index=state.epoch), 1))
    values_SxD, reward_S, figures = self.program.derive_step(
        state.ctrl.params, state.model.params, state.model.batch_stats, _batch(images, labels),
        self.derive_key(state))
    acc_S = np.asarray(figures["valid_acc"])
    best = int(np.argmax(acc_S))
    arch = self.space.from_decisions(np.asarray(values_SxD)[best])
    valid_acc = self.valid_accuracy(state, arch)
    entry = {"epoch": state.epoch, "authors": self.space.to_authors_string(arch),
             "batch_acc": float(acc_S[best]), "batch_acc_median": float(np.median(acc_S)),
             "valid_acc": valid_acc, "reward": reward}
    state.history.append(entry)
    title = search_run.picture_title(state.epoch, {"reward": reward, "valid acc": valid_acc})
    written = self.write_arch(os.path.join(self.workdir, "archs", f"epoch_{state.epoch:04d}"),
                              arch, {"epoch": state.epoch, "valid_acc": valid_acc,
                                     "reward": reward}, title)
    sampled = self.space.from_decisions(np.asarray(values_SxD)[0])
    self.log_pictures(state.epoch, written, self.space.to_dot(sampled, None))
    self.log.write("derive", state.epoch, {k: v for k, v in entry.items() if k != "epoch"})
    return entry

  def finish(self, state: SearchState) -> dict[str, Any]:
    """Re-scores every derived network under the final weights; writes the summary."""
    def load(authors: str) -> Any:
      return self.space.load_arch(authors, self.cfg.model)

    rescored, best = self.rescore(state, lambda a: self.valid_accuracy(state, load(a)),
                                  lower_is_better=False)
    arch = load(best)
    self.write_arch(os.path.join(self.workdir, "best_arch"), arch, {"valid_acc": rescored[best]},
                    search_run.picture_title(None, {"best: valid acc": rescored[best]}))
    summary = {
        "space": self.cfg.space, "architecture": self.space.to_json(arch), "authors": best,
        "valid_acc_shared": rescored[best],
        "rescored": [{"authors": a, "valid_acc_shared": v} for a, v in rescored.items()],
        "history": state.history, "epochs": state.epoch, "shared_steps": state.shared_steps,
        "controller_steps": state.controller_steps,
        "shared_params": count_params(state.model.params), "dataset": self.data.name,
    }
    return self.close(state, summary)

  def write_arch(self, stem: str, arch: Any, extra: dict[str, Any], title: str
                 ) -> dict[str, str]:
    """Writes `stem.json` (our JSON plus `extra`), `stem.txt` (the authors' string) and the
    architecture's picture captioned `title`; returns the picture's {extension: path}."""
    return search_run.write_arch_files(stem, self.space.to_json(arch),
                                self.space.to_authors_string(arch), extra,
                                self.space.to_dot(arch, title), self.say)


def run_search(cfg: CNNSearchConfig, workdir: str, out: TextIO,
               progress: metrics_lib.Progress | None = None) -> dict[str, Any]:
  """Runs (or resumes) the whole macro or micro search; outputs as the recurrent search's."""
  return SearchRun(cfg, workdir, out, progress or metrics_lib.Progress()).execute()
