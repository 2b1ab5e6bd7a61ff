"""SIGTERM and SIGINT as a request to stop cleanly: the run loops finish the step in progress,
save a checkpoint and exit with 128 + the signal's number (143, 130); a second signal exits at
once. A cluster scheduler sends SIGTERM before it preempts a job; Ctrl-C sends SIGINT."""
from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
  """While entered (in the main thread), the first SIGTERM or SIGINT is recorded in `received`
  for the loop to honour at its next step boundary; the second ends the process at once."""

  def __init__(self) -> None:
    self.received: int | None = None
    # what the first signal leads to, in the line it prints (a loop past its last step says so)
    self.then = "saving a checkpoint after the current step, then stopping"
    self._previous: dict[int, Any] = {}

  def __enter__(self) -> "StopSignals":
    if threading.current_thread() is threading.main_thread():
      for signum in STOP_SIGNALS:
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc_info: Any) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous = {}

  @property
  def name(self) -> str:
    return signal.Signals(self.received).name if self.received is not None else ""

  def _handle(self, signum: int, frame: FrameType | None) -> None:
    del frame
    name = signal.Signals(signum).name
    if self.received is not None:
      os.write(2, f"\n{name} again: stopping at once, without saving.\n".encode())
      os._exit(128 + signum)
    self.received = signum
    os.write(2, f"\n{name}: {self.then} (send it again to stop at once).\n".encode())


def exit_at_once_on_signals() -> None:
  """From now on SIGTERM or SIGINT ends the process at once, silently, with 128 + its number: for
  a command that is already stopping (a second Ctrl-C while it exits, which otherwise raised
  KeyboardInterrupt inside Python's exit handlers and printed their traceback)."""
  for signum in STOP_SIGNALS:
    signal.signal(signum, lambda n, frame: os._exit(128 + n))
