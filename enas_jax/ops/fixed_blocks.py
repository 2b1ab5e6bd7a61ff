"""Flax building blocks of the fixed (final-training) CNNs: batch norm with moving averages.

The shared-weights networks use the pure functions of `ops.conv` instead; these are the same
blocks for one architecture's network, with `train` selecting batch or moving-average statistics.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

he_normal = nn.initializers.variance_scaling(2.0, "fan_in", "normal")


class ConvBN(nn.Module):
  features: int
  kernel: int
  relu: bool = False
  groups: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    y = nn.Conv(self.features, (self.kernel, self.kernel), padding="SAME", use_bias=False,
                feature_group_count=self.groups, kernel_init=he_normal)(x)
    y = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(y)
    return nn.relu(y) if self.relu else y


class SepConvBN(nn.Module):
  features: int
  kernel: int

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    c = x.shape[-1]
    y = nn.Conv(c, (self.kernel, self.kernel), padding="SAME", use_bias=False,
                feature_group_count=c, kernel_init=he_normal)(x)
    y = nn.Conv(self.features, (1, 1), use_bias=False, kernel_init=he_normal)(y)
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(y)


class FactorizedReduce(nn.Module):
  features: int

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    half = self.features // 2
    p1 = nn.Conv(half, (1, 1), use_bias=False, kernel_init=he_normal)(x[:, ::2, ::2, :])
    shifted = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))[:, 1:, 1:, :]
    p2 = nn.Conv(self.features - half, (1, 1), use_bias=False,
                 kernel_init=he_normal)(shifted[:, ::2, ::2, :])
    y = jnp.concatenate([p1, p2], axis=-1)
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(y)


class AuxHead(nn.Module):
  """The auxiliary classifier (Szegedy et al.), as in the authors' code."""

  num_classes: int

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    window = min(5, x.shape[1]), min(5, x.shape[2])  # 5 x 5 at CIFAR size, less on tiny images
    y = nn.avg_pool(nn.relu(x), window, (3, 3), padding="VALID")
    y = ConvBN(128, 1, relu=True)(y, train)
    y = nn.Conv(768, y.shape[1:3], padding="VALID", use_bias=False, kernel_init=he_normal)(y)
    y = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(y))
    return nn.Dense(self.num_classes, use_bias=False)(y.reshape((y.shape[0], -1)))


class ReluConvBN(nn.Module):
  """ReLU, 1 x 1 conv, batch norm (the micro cells' calibration and layer base)."""

  features: int

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    y = nn.Conv(self.features, (1, 1), use_bias=False, kernel_init=he_normal)(nn.relu(x))
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(y)


class SepStack(nn.Module):
  """(ReLU, depthwise k x k at `stride`, pointwise, batch norm), then the same at stride 1."""

  features: int
  kernel: int
  stride: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    for i in range(2):
      c = x.shape[-1]
      s = self.stride if i == 0 else 1
      x = nn.Conv(c, (self.kernel, self.kernel), (s, s), padding="SAME", use_bias=False,
                  feature_group_count=c, kernel_init=he_normal)(nn.relu(x))
      x = nn.Conv(self.features, (1, 1), use_bias=False, kernel_init=he_normal)(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x)
    return x
