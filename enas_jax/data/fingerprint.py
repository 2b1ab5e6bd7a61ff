"""A dataset's fingerprint: a hash of the arrays and words a run trains and scores on, kept in
each checkpoint, so that a run resumed on other data (a corpus regenerated, a folder of images
changed under the same `data.dir`) is refused instead of mixing two datasets in one run."""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np


def fingerprint(*parts: Any) -> str:
  """The SHA-256 (hex) of `parts`: arrays (their dtype, shape and bytes), strings, and tuples or
  lists of them; the same parts give the same text on every machine."""
  digest = hashlib.sha256()

  def add(part: Any) -> None:
    if isinstance(part, str):
      data = part.encode("utf-8")
      digest.update(b"s%d:" % len(data) + data)
    elif isinstance(part, (tuple, list)):
      digest.update(b"l%d:" % len(part))
      for item in part:
        add(item)
    else:
      array = np.ascontiguousarray(part)
      digest.update(f"a{array.dtype.str}{array.shape}:".encode())
      digest.update(array.data if array.size else b"")

  for part in parts:
    add(part)
  return digest.hexdigest()
