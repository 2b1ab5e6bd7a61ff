"""Image batches: data order as a pure function of (seed, stream, pass), and CIFAR augmentation.

- `ImageStream.take(cursor, n)`: the next `n` training (or reward) batches, pass after pass, each
  pass a fresh permutation drawn from (seed, stream, pass) and the last partial batch dropped
  (fixed shapes: one compilation). The cursor (pass, batch) is all a checkpoint needs.
- `eval_batches`: a whole split in fixed-size batches, the last one padded and masked.
- `augment` (traced, inside the jitted step): pad by `pad_crop` pixels and crop back at a random
  offset, flip horizontally with probability 1/2, cut out a `cutout` x `cutout` square (DeVries and
  Taylor) at a random centre, each per image from the step's key: deterministic per (seed, step).
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from enas_jax.data.cursor import Cursor


def pass_order(seed: int, stream: int, pass_index: int, n: int) -> np.ndarray:
  """The order of the `n` examples in pass `pass_index` of stream `stream`."""
  return np.random.default_rng([seed, stream, pass_index]).permutation(n)


@dataclasses.dataclass(frozen=True)
class ImageStream:
  """Endless shuffled batches over one split; `Cursor.window` counts batches within the pass."""

  x: np.ndarray
  y: np.ndarray
  batch_size: int
  seed: int
  stream: int

  @property
  def batches_per_pass(self) -> int:
    return max(len(self.x) // self.batch_size, 1)

  def take(self, cursor: Cursor, n: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yields `n` (images, labels) batches from `cursor`, advancing it in place."""
    size = min(self.batch_size, len(self.x))
    for _ in range(n):
      if cursor.window >= self.batches_per_pass:
        cursor.pass_index, cursor.window = cursor.pass_index + 1, 0
      order = pass_order(self.seed, self.stream, cursor.pass_index, len(self.x))
      idx = order[cursor.window * size:(cursor.window + 1) * size]
      cursor.window += 1
      yield self.x[idx], self.y[idx]


def whole_split_note(batch_size: int, images: int) -> str:
  """For a run's description: a note when `batch_size` is more than the training split's
  `images` (`ImageStream.take` then makes every batch the whole split, reshuffled), else ""."""
  if batch_size <= images:
    return ""
  return (f"; note: data.batch_size ({batch_size}) is more than the {images} training images, so "
          f"every batch is all of them")


def eval_batches(x: np.ndarray, y: np.ndarray, batch_size: int
                 ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
  """(images, labels, mask) in order; the last batch padded with copies of image 0, mask 0."""
  for start in range(0, len(x), batch_size):
    xb, yb = x[start:start + batch_size], y[start:start + batch_size]
    mask = np.ones((len(xb),), np.float32)
    short = batch_size - len(xb)
    if short and len(x) >= batch_size:  # pad to the fixed batch size
      xb = np.concatenate([xb, np.repeat(x[:1], short, 0)])
      yb = np.concatenate([yb, np.repeat(y[:1], short, 0)])
      mask = np.concatenate([mask, np.zeros((short,), np.float32)])
    yield xb, yb, mask


def normalize(x_BxHxWxC: jax.Array, mean_C: jax.Array, std_C: jax.Array) -> jax.Array:
  """uint8 pixels -> float32, per-channel standardised."""
  return (x_BxHxWxC.astype(jnp.float32) / 255.0 - mean_C) / std_C


def augment(key: jax.Array, x_BxHxWxC: jax.Array, pad_crop: int, flip: bool,
            cutout: int) -> jax.Array:
  """Random crop after zero padding, horizontal flip and cutout, per image (normalised input)."""
  b, h, w, _ = x_BxHxWxC.shape
  k_crop, k_flip, k_cut = jax.random.split(key, 3)
  x = x_BxHxWxC
  if pad_crop:
    padded = jnp.pad(x, ((0, 0), (pad_crop, pad_crop), (pad_crop, pad_crop), (0, 0)))
    off_Bx2 = jax.random.randint(k_crop, (b, 2), 0, 2 * pad_crop + 1)
    x = jax.vmap(lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h, w, img.shape[-1]))
                 )(padded, off_Bx2)
  if flip:
    flip_B = jax.random.bernoulli(k_flip, 0.5, (b,))
    x = jnp.where(flip_B[:, None, None, None], x[:, :, ::-1, :], x)
  if cutout:
    centre_Bx2 = jax.random.randint(k_cut, (b, 2), 0, jnp.array([h, w]))
    rows_BxH = jnp.abs(jnp.arange(h)[None, :] - centre_Bx2[:, :1]) <= (cutout - 1) // 2
    cols_BxW = jnp.abs(jnp.arange(w)[None, :] - centre_Bx2[:, 1:]) <= (cutout - 1) // 2
    if cutout % 2 == 0:  # an even side: one more row and column after the centre
      rows_BxH |= jnp.arange(h)[None, :] - centre_Bx2[:, :1] == cutout // 2
      cols_BxW |= jnp.arange(w)[None, :] - centre_Bx2[:, 1:] == cutout // 2
    hole = rows_BxH[:, :, None] & cols_BxW[:, None, :]
    x = jnp.where(hole[..., None], 0.0, x)
  return x
