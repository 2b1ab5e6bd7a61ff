"""A run's TensorBoard events as TensorBoard itself reads them (its own loaders, no TensorFlow):
the scalar curves and images of a run directory, and every event of every file."""
import pathlib
from typing import Any

from tensorboard.backend.event_processing import event_accumulator, event_file_loader

_ALL = {event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0}  # keep every point


def curves(logdir: Any) -> dict[str, list[tuple[int, float]]]:
  """{tag: [(step, value), ...]} as TensorBoard's Python loader serves a run directory (its
  files in order; orphaned-data purging off, so that a stale point would show)."""
  acc = event_accumulator.EventAccumulator(str(logdir), size_guidance=_ALL,
                                           purge_orphaned_data=False)
  acc.Reload()
  return {tag: [(e.step, e.value) for e in acc.Scalars(tag)]
          for tag in acc.Tags()[event_accumulator.SCALARS]}


def images(logdir: Any) -> dict[str, list[tuple[int, int, int, bytes]]]:
  """{tag: [(step, width, height, png), ...]}."""
  acc = event_accumulator.EventAccumulator(str(logdir), size_guidance=_ALL,
                                           purge_orphaned_data=False)
  acc.Reload()
  return {tag: [(e.step, e.width, e.height, e.encoded_image_string) for e in acc.Images(tag)]
          for tag in acc.Tags()[event_accumulator.IMAGES]}


def events(logdir: Any) -> list[Any]:
  """Every event of every events file in `logdir`, files in name order (each record's framing
  and checksums checked by TensorBoard's reader)."""
  out = []
  for path in sorted(pathlib.Path(logdir).glob("events.out.tfevents.*")):
    out += list(event_file_loader.EventFileLoader(str(path)).Load())
  return out
