"""Where a run's figures go: JSON lines, TensorBoard events (`io/events.py`) and the progress
of each phase."""
from __future__ import annotations

import json
import os
import shlex
import sys
import time
from typing import Any, Callable, Mapping, TextIO

from enas_jax.io import events as events_lib
from enas_jax.io import workdir as workdir_lib
from enas_jax.io.configuration import has_kind
from enas_jax.io.errors import UserError


# --- the run's metric log ------------------------------------------------------------------------

class MetricsLog:
  """Writes each record to `metrics.jsonl` and its numbers to TensorBoard under `tb/`.

  A record is `{"phase": ..., "step": ..., <name>: <number>, ...}`; TensorBoard tags are
  `phase/name`.
  """

  def __init__(self, workdir: str, filename: str = "metrics.jsonl"):
    self.path = os.path.join(workdir, filename)
    self.events_dir = os.path.join(workdir, "tb")
    self._jsonl = open(self.path, "a")
    self.events = events_lib.EventWriter(self.events_dir)

  def write(self, phase: str, step: int, values: Mapping[str, Any]) -> None:
    record = {"phase": phase, "step": int(step)}
    record.update(workdir_lib.jsonable(dict(values)))  # NaN/Inf as text, kept visible
    with workdir_lib.naming(self.path):
      self._jsonl.write(json.dumps(record, allow_nan=False) + "\n")
    numbers = {f"{phase}/{k}": float(v) for k, v in values.items()
               if has_kind(v, (int, float))}
    if numbers:
      self.events.scalars(int(step), numbers)

  def flush(self) -> None:
    with workdir_lib.naming(self.path):
      self._jsonl.flush()
    self.events.flush()

  def removed(self) -> bool:
    """Whether the log file was deleted (a workdir emptied under the run) while open here."""
    try:
      return os.fstat(self._jsonl.fileno()).st_nlink == 0
    except (OSError, ValueError):  # closed
      return False

  def position(self) -> dict[str, Any]:
    """What a checkpoint records to cut the log back to it on resume: the bytes of
    `metrics.jsonl` and of every events file written so far."""
    self.flush()
    return {"metrics_bytes": self._jsonl.tell(), "event_bytes": events_lib.sizes(self.events_dir)}

  def close(self) -> None:
    with workdir_lib.naming(self.path):
      self._jsonl.close()
    self.events.close()


class _NoEvents:
  """`events.EventWriter`'s calls, writing nothing."""

  def scalars(self, step: int, values: Mapping[str, float]) -> None:
    del step, values

  def image(self, step: int, tag: str, png: bytes, height: int, width: int) -> None:
    del step, tag, png, height, width

  def flush(self) -> None:
    pass

  def close(self) -> None:
    pass


class SilentLog:
  """`MetricsLog`'s calls, writing nothing: the log of a process that writes no files (every
  process but process 0 of a multi-host run; process 0 logs the same figures)."""

  def __init__(self) -> None:
    self.events = _NoEvents()

  def removed(self) -> bool:
    return False

  def write(self, phase: str, step: int, values: Mapping[str, Any]) -> None:
    del phase, step, values

  def flush(self) -> None:
    pass

  def position(self) -> dict[str, Any]:
    return {}

  def close(self) -> None:
    pass


def read_metrics(path: str) -> list[dict[str, Any]]:
  """metrics.jsonl's records ([] when there is no such file); a last line that a running search
  or training is still writing is skipped. A damaged line before it is a UserError naming it:
  one that is not JSON, or JSON that is not a record (an object with a text `phase` and an
  integer `step`, as `MetricsLog.write` writes every one; the readers index both)."""
  if not os.path.isfile(path):
    return []
  with open(path, "rb") as f:
    lines = f.read().split(b"\n")
  records = []
  for i, line in enumerate(lines):
    if not line.strip():
      continue
    try:
      record = json.loads(line)  # bytes: UTF-8, and bytes that are not are damage too
      damage = None if _is_record(record) else (
          "is not a record of the log (a JSON object with a text `phase` and an integer `step`)")
    except ValueError:
      damage = "is not JSON"
    if damage is None:
      records.append(record)
      continue
    if i >= len(lines) - 2:  # the line being written
      break
    raise UserError(f"{path} line {i + 1} {damage}: the metrics log is damaged. Resume the run "
                    f"from its checkpoint (the same command; it rewrites the log after the point "
                    f"that checkpoint reached, and cuts a crash's damage at the end); a line "
                    f"damaged before that point stays: delete it (sed -i '{i + 1}d' "
                    f"{shlex.quote(path)}) to read the others.")
  return records


def _is_record(value: Any) -> bool:
  """Whether a parsed line is a log record: an object with a text phase and an integer step."""
  return (isinstance(value, dict) and isinstance(value.get("phase"), str)
          and isinstance(value.get("step"), int) and not isinstance(value.get("step"), bool))


# --- progress bar --------------------------------------------------------------------------------

class Progress:
  """Progress of a loop's phases on a stream (stderr): on a terminal, a bar redrawn in place (at
  most every `min_interval_s`); elsewhere (a cluster log, a pipe), one plain line every
  `every_s` seconds; each with the phase's rate and the time it has left.

  `enabled`: None picks by the stream (bar on a terminal, lines elsewhere), True forces the bar,
  False shows nothing; `lines=True` forces lines.
  """

  def __init__(self, stream: TextIO | None = None, enabled: bool | None = None,
               min_interval_s: float = 0.1, every_s: float = 30.0, lines: bool = False,
               clock: Callable[[], float] = time.monotonic):
    self._stream = stream or sys.stderr
    self.enabled = (enabled is not False) or lines
    self.lines = lines or (enabled is None and not self._stream.isatty())
    self._min_interval = every_s if self.lines else min_interval_s
    self._clock = clock
    self._last = -float("inf")
    self._width = 0
    self._phase: tuple[str, float, int] | None = None  # (label, start time, steps done then)

  def rate_and_left(self, label: str, done: int, total: int) -> str:
    """"12.5 steps/s, 0:42 left" for the phase `label` (measured since its first call)."""
    now = self._clock()
    if self._phase is None or self._phase[0] != label or done < self._phase[2]:
      self._phase = (label, now, done)
      return ""
    _, start, done0 = self._phase
    if done <= done0 or now <= start:
      return ""
    rate = (done - done0) / (now - start)
    left = int(round((total - done) / rate))
    return f"{rate:.3g} steps/s, {left // 3600}:{left % 3600 // 60:02d}:{left % 60:02d} left"

  def show(self, label: str, done: int, total: int, figures: Mapping[str, float] | None = None,
           force: bool = False) -> None:
    if not self.enabled:
      return
    timing = self.rate_and_left(label, done, total)
    now = self._clock()
    if (self.lines or not force) and now - self._last < self._min_interval:
      return
    self._last = now
    frac = done / total if total else 1.0
    text = f"{label} {done}/{total}" if self.lines else (
        f"{label} [{'#' * int(20 * frac)}{'-' * (20 - int(20 * frac))}] {done}/{total}")
    if timing:
      text += f"  ({timing})"
    if figures:
      text += "  " + " ".join(f"{k}={v:.4g}" for k, v in figures.items())
    if self.lines:
      self._stream.write(text + "\n")
    else:
      self._stream.write("\r" + text.ljust(self._width))
      self._width = len(text)
    self._stream.flush()

  def clear(self) -> None:
    if self.enabled and self._width:
      self._stream.write("\r" + " " * self._width + "\r")
      self._stream.flush()
      self._width = 0
