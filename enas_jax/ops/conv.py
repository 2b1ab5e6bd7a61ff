"""Convolution building blocks as pure functions of (params, x_BxHxWxC), NHWC throughout.

The shared-weights networks of the CNN spaces are plain pytrees of these blocks' parameters, so
an operation chosen by `lax.switch` is just a different function of a different sub-tree. Batch
normalisation here always normalises with the batch's own statistics (the ENAS search does the
same when it trains and when it scores a sampled child: moving averages shared by every
architecture would describe none of them); the fixed networks for final training use Flax's
BatchNorm with moving averages instead.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

Params = dict[str, Any]
_DIMS = ("NHWC", "HWIO", "NHWC")


def he_init(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """He-normal (fan-in over all but the last axis), as the authors' `create_weight`."""
  fan_in = 1
  for s in shape[:-1]:
    fan_in *= s
  return jax.random.normal(key, shape, jnp.float32) * jnp.sqrt(2.0 / fan_in)


def conv2d(x_BxHxWxC: jax.Array, w_KxKxCxO: jax.Array, stride: int = 1,
           groups: int = 1) -> jax.Array:
  """SAME-padded 2-D convolution."""
  return jax.lax.conv_general_dilated(x_BxHxWxC, w_KxKxCxO, (stride, stride), "SAME",
                                      dimension_numbers=_DIMS, feature_group_count=groups)


def bn_params(channels: int) -> Params:
  return {"scale": jnp.ones((channels,)), "bias": jnp.zeros((channels,))}


def batch_norm(p: Params, x_BxHxWxC: jax.Array, eps: float = 1e-5) -> jax.Array:
  """Batch normalisation with the batch's statistics over (B, H, W)."""
  mean_C = jnp.mean(x_BxHxWxC, axis=(0, 1, 2))
  var_C = jnp.var(x_BxHxWxC, axis=(0, 1, 2))
  return (x_BxHxWxC - mean_C) * jax.lax.rsqrt(var_C + eps) * p["scale"] + p["bias"]


def conv_bn_params(key: jax.Array, k: int, c_in: int, c_out: int) -> Params:
  return {"w": he_init(key, (k, k, c_in, c_out)), "bn": bn_params(c_out)}


def conv_bn(p: Params, x: jax.Array, relu_after: bool = False) -> jax.Array:
  y = batch_norm(p["bn"], conv2d(x, p["w"]))
  return jax.nn.relu(y) if relu_after else y


def sep_conv_params(key: jax.Array, k: int, c_in: int, c_out: int) -> Params:
  k_d, k_p = jax.random.split(key)
  return {"depth": he_init(k_d, (k, k, 1, c_in)), "point": he_init(k_p, (1, 1, c_in, c_out)),
          "bn": bn_params(c_out)}


def sep_conv_bn(p: Params, x: jax.Array) -> jax.Array:
  """Depthwise k x k, pointwise 1 x 1, batch norm (depth multiplier 1, as the authors)."""
  y = conv2d(x, p["depth"], groups=x.shape[-1])
  return batch_norm(p["bn"], conv2d(y, p["point"]))


def max_pool3(x: jax.Array, stride: int = 1) -> jax.Array:
  """3 x 3, SAME."""
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, stride, stride, 1),
                               "SAME")


def avg_pool3(x: jax.Array, stride: int = 1) -> jax.Array:
  """3 x 3, SAME; the padding is not counted (TensorFlow's SAME average)."""
  window, strides = (1, 3, 3, 1), (1, stride, stride, 1)
  total = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, strides, "SAME")
  count = jax.lax.reduce_window(jnp.ones(x.shape[1:3] + (1,), x.dtype)[None], 0.0, jax.lax.add,
                                window, strides, "SAME")
  return total / count


def factorized_reduce_params(key: jax.Array, c_in: int, c_out: int) -> Params:
  k1, k2 = jax.random.split(key)
  half = c_out // 2
  return {"w1": he_init(k1, (1, 1, c_in, half)), "w2": he_init(k2, (1, 1, c_in, c_out - half)),
          "bn": bn_params(c_out)}


def factorized_reduce(p: Params, x_BxHxWxC: jax.Array) -> jax.Array:
  """Halves H and W: two stride-2 1 x 1 paths, the second shifted by one pixel, concatenated.

  The authors' factorized reduction; for even H and W the shifted path reads pixels (2i+1, 2j+1).
  """
  path1 = conv2d(x_BxHxWxC[:, ::2, ::2, :], p["w1"])
  shifted = jnp.pad(x_BxHxWxC, ((0, 0), (0, 1), (0, 1), (0, 0)))[:, 1:, 1:, :]
  path2 = conv2d(shifted[:, ::2, ::2, :], p["w2"])
  return batch_norm(p["bn"], jnp.concatenate([path1, path2], axis=-1))


def global_avg_pool(x_BxHxWxC: jax.Array) -> jax.Array:
  return jnp.mean(x_BxHxWxC, axis=(1, 2))


def relu_conv_bn(p: Params, x: jax.Array) -> jax.Array:
  """ReLU, then conv (1 x 1 to change channels in the micro cells), then batch norm."""
  return batch_norm(p["bn"], conv2d(jax.nn.relu(x), p["w"]))


def drop_path(key: jax.Array, x_BxHxWxC: jax.Array, keep_prob: jax.Array | float) -> jax.Array:
  """Zeroes whole examples' paths with probability 1 - keep_prob, scaling the rest (the authors'
  `drop_path`: `x / keep * floor(keep + U)`, one U per example)."""
  u_Bx1x1x1 = jax.random.uniform(key, (x_BxHxWxC.shape[0], 1, 1, 1), x_BxHxWxC.dtype)
  return x_BxHxWxC / keep_prob * jnp.floor(keep_prob + u_Bx1x1x1)


def aux_head_params(key: jax.Array, c_in: int, hw: tuple[int, int], num_classes: int) -> Params:
  """The auxiliary classifier for a feature map of spatial size `hw` (see `aux_head`)."""
  k1, k2, k3 = jax.random.split(key, 3)
  pooled = [(s - min(5, s)) // 3 + 1 for s in hw]
  return {"proj": conv_bn_params(k1, 1, c_in, 128),
          "conv": {"w": he_init(k2, (pooled[0], pooled[1], 128, 768)), "bn": bn_params(768)},
          "dense": {"w": he_init(k3, (768, num_classes)), "b": jnp.zeros((num_classes,))}}


def aux_head(p: Params, x_BxHxWxC: jax.Array) -> jax.Array:
  """ReLU, 5 x 5 average pool with stride 3 (VALID), 1 x 1 conv to 128, conv over the rest to
  768, classifier: the authors' auxiliary head, as pure functions."""
  window = (1, min(5, x_BxHxWxC.shape[1]), min(5, x_BxHxWxC.shape[2]), 1)
  y = jax.lax.reduce_window(jax.nn.relu(x_BxHxWxC), 0.0, jax.lax.add, window, (1, 3, 3, 1),
                            "VALID") / (window[1] * window[2])
  y = conv_bn(p["proj"], y, relu_after=True)
  y = jax.lax.conv_general_dilated(y, p["conv"]["w"], (1, 1), "VALID", dimension_numbers=_DIMS)
  y = jax.nn.relu(batch_norm(p["conv"]["bn"], y))
  return y.reshape((y.shape[0], -1)) @ p["dense"]["w"] + p["dense"]["b"]
