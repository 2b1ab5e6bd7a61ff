"""What orbax and tensorstore print around a checkpoint's save or restore, kept from the user:
the run reports a failure once, in its own words (`io/checkpoints.py`)."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import time
from typing import Any, Callable, Iterator

from absl import logging as absl_logging


@contextlib.contextmanager
def errors_unlogged() -> Iterator[None]:
  """Orbax's writer threads log each failed write with a traceback through absl's logger before
  the save raises; the caller reports the failure itself."""
  logger = absl_logging.get_absl_logger()
  level = logger.level
  logger.setLevel(logging.CRITICAL)
  try:
    yield
  finally:
    logger.setLevel(level)


STRAGGLERS_WAIT_S = 0.5  # after a failed save or restore, for its stragglers' output


class _UnretrievedTasks(logging.Filter):
  """Drops asyncio's "Task exception was never retrieved" records (with their tracebacks)."""

  def filter(self, record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Task exception was never retrieved")


def stragglers_dropped() -> None:
  """From now on, drops what a failed save or restore leaves behind to print: tensorstore's
  callbacks still reach orbax's closed event loop ("RuntimeError: Event loop is closed", through
  `sys.unraisablehook`), and orbax's abandoned tasks are logged by asyncio when they are
  collected ("Task exception was never retrieved", through the `asyncio` logger): a traceback
  each, a few hundred lines in all, some after any wait (under load, or when the collector
  runs). Other reports go where they went."""
  tasks = logging.getLogger("asyncio")
  if not any(isinstance(f, _UnretrievedTasks) for f in tasks.filters):
    tasks.addFilter(_UnretrievedTasks())
  previous = sys.unraisablehook
  if getattr(previous, "drops_closed_loop_reports", False):
    return

  def hook(unraisable: Any) -> None:
    value = unraisable.exc_value
    if not (isinstance(value, RuntimeError) and str(value) == "Event loop is closed"):
      previous(unraisable)

  hook.drops_closed_loop_reports = True  # type: ignore[attr-defined]
  sys.unraisablehook = hook


@contextlib.contextmanager
def stderr_held(dropped: Callable[[BaseException], bool]) -> Iterator[None]:
  """Holds what the process writes to stderr (file descriptor 2, every thread) during a save or
  a restore: passed on after success or a failure not `dropped`; dropped after a failure that
  is (a failed write, an unreadable checkpoint), whose stragglers are given
  `STRAGGLERS_WAIT_S` to finish first, and whose late tracebacks are dropped from
  then on (`stragglers_dropped`). The caller reports the failure once."""
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as held:
    os.dup2(held.fileno(), 2)
    failed = False
    try:
      yield
    except Exception as err:
      failed = dropped(err)
      if failed:
        stragglers_dropped()
        time.sleep(STRAGGLERS_WAIT_S)
      raise
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      if not failed:
        held.seek(0)
        text = held.read()
        if text:
          os.write(2, text)
