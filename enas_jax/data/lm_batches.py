"""Language-model batches: token streams to [batch, tokens], cut into truncated-BPTT windows.

Every window has the same width (so one compiled step serves them all); a `valid_W` mask marks
the steps that hold data, which covers the last, shorter window and AWD-LSTM's variable lengths.
The window schedule is a pure function of (seed, epoch).
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np

from enas_jax.data.cursor import Cursor
from enas_jax.io.errors import UserError


@dataclasses.dataclass(frozen=True)
class Window:
  """One truncated-BPTT window: predict `targets_BxW` from `inputs_BxW` where `valid_W`."""

  inputs_BxW: np.ndarray
  targets_BxW: np.ndarray
  valid_W: np.ndarray
  length: int  # number of valid steps
  start: int  # position of the window's first input in the batched stream


def batchify(tokens_N: np.ndarray, batch_size: int, split: str = "data",
             min_steps: int = 1, fields: str = "`data.batch_size` or `data.bptt`") -> np.ndarray:
  """Lays a token stream out as `batch_size` contiguous rows, dropping the remainder.

  `min_steps`: the window length the rows must hold (a longer window is all padding past its
  row: a BPTT length mistyped as 100000000 made every window [batch, 100000000], 24 GB, before
  any check); `fields`: the config fields that set the two, for the message.

  Raises:
    UserError: if each row would hold fewer than `min_steps` + 1 tokens.
  """
  steps = len(tokens_N) // batch_size
  if steps < min_steps + 1:
    raise UserError(
        f"The {split} split has {len(tokens_N)} tokens, too few for batch size {batch_size} "
        f"with windows of {min_steps} steps (each of the {batch_size} rows needs at least "
        f"{min_steps + 1} tokens, {batch_size * (min_steps + 1)} in all). Use a longer split, "
        f"or a smaller {fields}.")
  return np.ascontiguousarray(tokens_N[:steps * batch_size].reshape(batch_size, steps))


def window_lengths(num_steps: int, bptt: int, seed: int, epoch: int, variable: bool,
                   max_len: int) -> list[int]:
  """The window lengths covering `num_steps` predictions.

  Fixed: `bptt` each (the last may be shorter). Variable (AWD-LSTM): `bptt` with probability 0.95,
  else `bptt / 2`, then Normal(that, 5), at least 5 and at most `max_len`. Pure in (seed, epoch).
  """
  if not variable:
    return [min(bptt, num_steps - s) for s in range(0, num_steps, bptt)]
  rng = np.random.default_rng([seed, epoch, 0x5EED])
  lengths, pos = [], 0
  while pos < num_steps:
    base = bptt if rng.random() < 0.95 else bptt / 2
    length = int(np.clip(round(rng.normal(base, 5)), 5, max_len))
    length = min(length, num_steps - pos)
    lengths.append(length)
    pos += length
  return lengths


def windows(data_BxN: np.ndarray, bptt: int, seed: int = 0, epoch: int = 0,
            variable: bool = False, width: int | None = None,
            start_window: int = 0) -> Iterator[Window]:
  """Yields the epoch's windows, each padded to `width` (default: `bptt`, or the variable max).

  Args:
    data_BxN: batched stream from `batchify`.
    bptt: nominal window length.
    seed, epoch: the variable-length schedule's randomness.
    variable: AWD-LSTM's variable lengths.
    width: padded width; variable windows are capped to it.
    start_window: skip this many windows (to resume inside an epoch).
  """
  width = width or (bptt + 20 if variable else bptt)
  if width < bptt:
    raise ValueError(f"width {width} < bptt {bptt}")
  num_steps = data_BxN.shape[1] - 1
  pos = 0
  for i, length in enumerate(window_lengths(num_steps, bptt, seed, epoch, variable, width)):
    if i >= start_window:
      inputs = np.zeros((data_BxN.shape[0], width), np.int32)
      targets = np.zeros_like(inputs)
      inputs[:, :length] = data_BxN[:, pos:pos + length]
      targets[:, :length] = data_BxN[:, pos + 1:pos + 1 + length]
      valid = np.arange(width) < length
      yield Window(inputs, targets, valid, length, pos)
    pos += length


def num_windows(data_BxN: np.ndarray, bptt: int, seed: int = 0, epoch: int = 0,
                variable: bool = False, width: int | None = None) -> int:
  width = width or (bptt + 20 if variable else bptt)
  return len(window_lengths(data_BxN.shape[1] - 1, bptt, seed, epoch, variable, width))


@dataclasses.dataclass(frozen=True)
class WindowStream:
  """Endless windows over a batched split, pass after pass; the state resets at each pass."""

  data_BxN: np.ndarray
  bptt: int
  seed: int
  variable: bool
  width: int

  def take(self, cursor: Cursor, n: int) -> Iterator[tuple[Window, bool]]:
    """Yields `n` (window, starts_a_pass) pairs from `cursor`, advancing it in place."""
    taken = 0
    while taken < n:
      for window in windows(self.data_BxN, self.bptt, self.seed, cursor.pass_index,
                            self.variable, self.width, start_window=cursor.window):
        starts = cursor.window == 0
        cursor.window += 1
        taken += 1
        yield window, starts
        if taken == n:
          break
      else:
        cursor.pass_index, cursor.window = cursor.pass_index + 1, 0

  def windows_per_pass(self, pass_index: int) -> int:
    return num_windows(self.data_BxN, self.bptt, self.seed, pass_index, self.variable, self.width)
