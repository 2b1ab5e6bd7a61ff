"""TensorBoard event files through tensorboardX (no TensorFlow), and cutting them back to a
checkpoint.

Each launch of a run writes its own events file in `<workdir>/tb` (tensorboardX's synchronous
`EventsWriter`, so a failed write raises here, in the loop's thread). A checkpoint records the
size of every events file (`sizes`); resuming from it cuts the files back to those sizes and
deletes the files written after it (`cut_back`), so that TensorBoard, with any of its loaders,
shows each curve once, without the points a resumed run writes again.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import sys
import time
from typing import Iterator, Mapping

from enas_jax.io.workdir import naming


@contextlib.contextmanager
def _torch_hidden() -> Iterator[None]:
  """tensorboardX's package imports torch when it is installed (its SummaryWriter takes torch
  tensors): 1.4-1.8 s and 200 MB more for every command with torch 2.13.0 on a 2-core VM. The
  event file writer used here needs none of it, so while tensorboardX loads, `import torch`
  fails as if torch were absent (tensorboardX expects that) unless torch is loaded already."""
  if "torch" in sys.modules:
    yield
    return
  sys.modules["torch"] = None  # type: ignore[assignment]
  try:
    yield
  finally:
    if "torch" in sys.modules and sys.modules["torch"] is None:
      del sys.modules["torch"]


with _torch_hidden():
  from tensorboardX.event_file_writer import EventsWriter
  from tensorboardX.proto import event_pb2, summary_pb2

_PREFIX = "events.out.tfevents."
_OPENED = itertools.count()
_RGBA = 4  # Summary.Image colorspace


class EventWriter:
  """Appends scalar and image summaries to a new events file in `logdir`."""

  def __init__(self, logdir: str):
    os.makedirs(logdir, exist_ok=True)
    # tensorboardX names the file by the second and the host, and opens it for writing afresh:
    # the process id and a count keep two writers within one second (a relaunch, a rollback
    # reopening the log) from overwriting each other, in the order they were opened.
    suffix = f".{os.getpid()}.{next(_OPENED):04d}"
    with naming(os.path.join(logdir, f"{_PREFIX}*{suffix}")):
      self._writer = EventsWriter(os.path.join(logdir, "events"), suffix)
    self.path = self._writer._file_name  # a failed write names it

  def _write(self, step: int, values: list[summary_pb2.Summary.Value]) -> None:
    with naming(self.path):
      self._writer.write_event(event_pb2.Event(wall_time=time.time(), step=int(step),
                                               summary=summary_pb2.Summary(value=values)))

  def scalars(self, step: int, values: Mapping[str, float]) -> None:
    self._write(step, [summary_pb2.Summary.Value(tag=tag, simple_value=float(v))
                       for tag, v in values.items()])

  def image(self, step: int, tag: str, png: bytes, height: int, width: int) -> None:
    image = summary_pb2.Summary.Image(height=height, width=width, colorspace=_RGBA,
                                      encoded_image_string=png)
    self._write(step, [summary_pb2.Summary.Value(tag=tag, image=image)])

  def flush(self) -> None:
    with naming(self.path):
      self._writer.flush()

  def close(self) -> None:
    with naming(self.path):
      self._writer.close()


def sizes(logdir: str) -> dict[str, int]:
  """{file name: bytes} of every events file in `logdir` (after the writer's flush)."""
  if not os.path.isdir(logdir):
    return {}
  return {name: os.path.getsize(os.path.join(logdir, name))
          for name in sorted(os.listdir(logdir)) if name.startswith(_PREFIX)}


def cut_back(logdir: str, recorded: Mapping[str, int]) -> None:
  """Cuts every events file in `logdir` back to its `recorded` size and deletes the ones the
  record does not name (written after it)."""
  for name, size in sizes(logdir).items():
    path = os.path.join(logdir, name)
    if name not in recorded:
      os.remove(path)
    elif size > recorded[name]:
      with open(path, "r+b") as f:
        f.truncate(recorded[name])
