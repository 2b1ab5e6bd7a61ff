"""Pure step functions for image classification with the CNN spaces (shared and fixed networks).

`make_shared_steps` returns, for the jitted search phases,
    train_step(state, batch, arch, key) -> (state, metrics)   (augmentation inside)
    accuracy(params, batch, arch) -> fraction correct          (no augmentation, no dropout)
where `arch` is a traced architecture. The training loss adds `aux_weight` times the auxiliary
head's cross-entropy when the network returns auxiliary logits; schedules inside the network
(drop-path) read `state.step / total_steps`. The shared networks use batch statistics in batch
norm, so `batch_stats` stays empty for them.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping

import flax.struct
import jax
import jax.numpy as jnp
import optax

from enas_jax.data.image_batches import augment, normalize
from enas_jax.data.images import ImageDataConfig
from enas_jax.io.configuration import require
from enas_jax.io.errors import UserError
from enas_jax.ops.params import l2_penalty

Batch = Mapping[str, jax.Array]  # images uint8 [B, H, W, C], labels int32 [B]


@dataclasses.dataclass(frozen=True)
class ImageTrainConfig:
  """How a CNN's weights are trained (the `shared` section of a search, `train` of a final run).

  SGD with Nesterov momentum, L2 on every weight, global-norm gradient clipping, and the cosine
  learning rate with warm restarts (Loshchilov and Hutter) per epoch: from `lr` down to `lr_min`
  over `lr_t0` epochs, each next cycle `lr_t_mul` times longer.
  """

  lr: float = 0.05
  lr_min: float = 0.0005
  lr_t0: int = 10
  lr_t_mul: int = 2
  momentum: float = 0.9
  nesterov: bool = True
  l2: float = 2.5e-4
  grad_clip: float = 5.0

  def validate(self, section: str = "shared") -> None:
    require(self, section, "[0, 1)", "momentum")
    require(self, section, ">= 0", "l2", "grad_clip")
    if not 0 <= self.lr_min <= self.lr or self.lr <= 0:
      raise UserError(f"Config fields `{section}.lr` ({self.lr}) and `{section}.lr_min` "
                      f"({self.lr_min}) must satisfy 0 <= lr_min <= lr, lr > 0.")
    if self.lr_t0 < 1 or self.lr_t_mul < 1:
      raise UserError(f"Config fields `{section}.lr_t0` and `{section}.lr_t_mul` must be at "
                      f"least 1, got {self.lr_t0} and {self.lr_t_mul}.")

  def lr_at_epoch(self, epoch: int) -> float:
    start, length = 0, self.lr_t0
    while epoch >= start + length:
      start, length = start + length, length * self.lr_t_mul
    t = (epoch - start) / length
    return self.lr_min + 0.5 * (self.lr - self.lr_min) * (1 + math.cos(math.pi * t))


class CNNState(flax.struct.PyTreeNode):
  """A CNN's training state (`batch_stats` empty for the shared networks)."""

  params: Any
  batch_stats: Any
  opt_state: optax.OptState
  step: jax.Array


def make_optimizer(cfg: ImageTrainConfig) -> optax.GradientTransformation:
  """Nesterov SGD (learning rate a state hyper-parameter), after global-norm clipping."""
  sgd = optax.inject_hyperparams(optax.sgd)(learning_rate=cfg.lr, momentum=cfg.momentum,
                                            nesterov=cfg.nesterov)
  return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), sgd) if cfg.grad_clip > 0 else sgd


def prepare_images(batch: Batch, data: ImageDataConfig, mean_C: jax.Array, std_C: jax.Array,
                   key: jax.Array | None) -> jax.Array:
  """Normalised images, augmented when `key` is given."""
  x = normalize(batch["images"], mean_C, std_C)
  if key is None:
    return x
  return augment(key, x, data.pad_crop, data.flip, data.cutout)


def cross_entropy(logits_BxK: jax.Array, labels_B: jax.Array) -> jax.Array:
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits_BxK, labels_B))


def make_shared_steps(apply: Callable[..., Any], optimizer: optax.GradientTransformation,
                      train: ImageTrainConfig, data: ImageDataConfig, mean_C: Any, std_C: Any,
                      aux_weight: float = 0.0, total_steps: int = 1
                      ) -> tuple[Callable[..., Any], Callable[..., Any]]:
  """`apply(params, arch, x, dropout_key or None, step_ratio) -> (logits, aux or None)` of a
  shared network."""
  mean_C, std_C = jnp.asarray(mean_C), jnp.asarray(std_C)

  def train_step(state: CNNState, batch: Batch, arch: Any, key: jax.Array):
    k_aug, k_drop = jax.random.split(key)
    x = prepare_images(batch, data, mean_C, std_C, k_aug)

    # a float: a Python int past 2**31 (10^9 epochs planned) was an OverflowError in the trace
    step_ratio = (state.step + 1).astype(jnp.float32) / float(max(total_steps, 1))

    def loss_fn(params):
      logits, aux = apply(params, arch, x, k_drop, step_ratio)
      ce = cross_entropy(logits, batch["labels"])
      loss = ce + train.l2 * l2_penalty(params)
      if aux is not None and aux_weight:
        loss = loss + aux_weight * cross_entropy(aux, batch["labels"])
      return loss, (ce, logits)

    (loss, (ce, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    acc = jnp.mean(jnp.argmax(logits, -1) == batch["labels"])
    new = state.replace(params=optax.apply_updates(state.params, updates), opt_state=opt_state,
                        step=state.step + 1)
    return new, {"loss": ce, "total_loss": loss, "accuracy": acc,
                 "grad_norm": optax.tree.norm(grads)}

  def accuracy(params: Any, batch: Batch, arch: Any) -> jax.Array:
    logits, _ = apply(params, arch, prepare_images(batch, data, mean_C, std_C, None), None, 1.0)
    return jnp.mean(jnp.argmax(logits, -1) == batch["labels"])

  return train_step, accuracy
