"""The run directory: created and probed for writing up front, JSON files, and the metrics file
cut back to what the checkpoint being resumed had seen."""
from __future__ import annotations

import contextlib
import json
import math
import os
import socket
from typing import Any

from enas_jax.io.errors import UserError


def prepare(workdir: str) -> None:
  """Creates `workdir` and checks it can be written, or raises a UserError naming it."""
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, f".write_test.{socket.gethostname()}.{os.getpid()}")
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as err:
    raise UserError(f"The workdir {workdir!r} cannot be written ({err.strerror}). Pass a "
                    f"writable directory with --workdir=DIR.") from None


def jsonable(value: Any) -> Any:
  """`value` with each float that is not finite as its text ("nan", "inf", "-inf"): JSON has no
  such numbers, and strict readers reject the `NaN` Python's json would write."""
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)
  if isinstance(value, dict):
    return {k: jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [jsonable(v) for v in value]
  return value


def write_json(path: str, data: Any) -> None:
  """`data` (`jsonable`) as indented JSON, written atomically."""
  write_atomically(path, json.dumps(jsonable(data), indent=2, allow_nan=False))


def write_atomically(path: str, data: str | bytes) -> None:
  """Writes `data` (text as UTF-8) to `path` through a temporary file beside it and a rename: a
  write that fails (a full disk, a file-size limit) leaves an earlier `path` as it was, never cut
  short, and removes the temporary file. Its OSError names `path`."""
  temp = f"{path}.tmp{os.getpid()}"
  try:
    with open(temp, "wb") as f:
      f.write(data.encode("utf-8") if isinstance(data, str) else data)
    os.replace(temp, path)
  except OSError as err:
    with contextlib.suppress(OSError):
      os.remove(temp)
    raise OSError(err.errno, err.strerror, path) from None


def truncate(path: str, size: int) -> None:
  """Cuts `path` (if it exists) to `size` bytes: records after a checkpoint are dropped."""
  if os.path.exists(path):
    with open(path, "r+b") as f:
      f.truncate(size)
