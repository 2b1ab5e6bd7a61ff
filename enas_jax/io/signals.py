"""SIGTERM, SIGINT, SIGHUP, SIGUSR1 and SIGUSR2 as a request to stop cleanly: the run loops
finish the step in progress, save a checkpoint and exit with 128 + the signal's number (143,
130, 129, 138, 140); a second signal (not a second hang-up) exits at once. A cluster scheduler
sends SIGTERM before it preempts a job, or the signal a job asks for ahead of its time limit
(Slurm's `--signal=B:USR1@120`); Ctrl-C sends SIGINT; a closed terminal or ssh connection sends
SIGHUP (then the terminal is gone, so the output that went to it goes nowhere; a run started
under `nohup` ignores SIGHUP, as asked)."""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


def _handled(signum: int) -> bool:
  """Whether `signum` is to be handled: not a SIGHUP this process was started to ignore
  (`nohup`)."""
  return signum != signal.SIGHUP or signal.getsignal(signum) != signal.SIG_IGN


def _file_id(fd: int) -> tuple[int, int] | None:
  """The file descriptor `fd` is open on, as its (device, inode); None if it is not open."""
  try:
    status = os.fstat(fd)
  except OSError:
    return None
  return status.st_dev, status.st_ino


def _terminal_outputs() -> set[tuple[int, int]]:
  """The terminal(s) standard output and error write to, each as its (device, inode)."""
  outputs = set()
  for fd in (1, 2):
    with contextlib.suppress(OSError):
      if os.isatty(fd):
        outputs.add(_file_id(fd))
  return outputs


def _open_descriptors() -> list[int]:
  try:
    return [int(name) for name in os.listdir("/dev/fd")]  # Linux and macOS
  except (OSError, ValueError):
    return [1, 2]


def to_null_device(fds: list[int]) -> None:
  """Points each of `fds` at the null device (one that is closed is opened there)."""
  null = os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: one of `fds`, if closed
  for fd in fds:
    if fd != null:
      os.dup2(null, fd)
  if null not in fds:
    os.close(null)


def _detach(terminals: set[tuple[int, int]]) -> None:
  """Points every descriptor of this process on `terminals` (a hung-up terminal) at the null
  device, so that what the run prints while it saves and stops does not fail with an I/O error
  (a write to a hung-up terminal does). Every one, not only 1 and 2: a checkpoint's save holds
  a copy of fd 2 while fd 2 collects what the save prints, and puts it back afterwards
  (`io/orbax_output.py::stderr_held`); a multi-host run's peer watcher writes to a copy too."""
  if terminals:
    with contextlib.suppress(OSError):
      to_null_device([fd for fd in _open_descriptors() if _file_id(fd) in terminals])


class StopSignals:
  """While entered (in the main thread), the first of `STOP_SIGNALS` is recorded in `received`
  for the loop to honour at its next step boundary; the second (not a SIGHUP) ends the process
  at once. A SIGHUP also detaches standard output and error from the terminal they wrote to."""

  def __init__(self) -> None:
    self.received: int | None = None
    # what the first signal leads to, in the line it prints (a loop past its last step says so)
    self.then = "saving a checkpoint after the current step, then stopping"
    self._previous: dict[int, Any] = {}
    self._terminals: set[tuple[int, int]] = set()
    self._stderr: int | None = None  # the command's standard error, as it was when entered

  def __enter__(self) -> "StopSignals":
    if threading.current_thread() is threading.main_thread():
      self._terminals = _terminal_outputs()
      # a copy: a checkpoint's save holds fd 2 (and a second signal during it would exit with
      # the lines said unseen)
      with contextlib.suppress(OSError):
        self._stderr = os.dup(2)
      for signum in filter(_handled, STOP_SIGNALS):
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc_info: Any) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous = {}
    if self._stderr is not None:
      os.close(self._stderr)
      self._stderr = None

  @property
  def name(self) -> str:
    return signal.Signals(self.received).name if self.received is not None else ""

  def _handle(self, signum: int, frame: FrameType | None) -> None:
    del frame
    _AGAIN.pop(signum, None)  # one `_deliver_again` sent before the loop began: handled here
    if signum == signal.SIGHUP:
      _detach(self._terminals)
      if self.received is not None:  # a hang-up comes twice (the shell's, then the kernel's
        return                       # as the shell exits): never a request to stop at once
    name = signal.Signals(signum).name
    if self.received is not None:
      self._tell(f"\n{name} again: stopping at once, without saving.\n")
      os._exit(128 + signum)
    self.received = signum
    self._tell(f"\n{name}: {self.then} (send it again to stop at once).\n")

  def _tell(self, text: str) -> None:
    with contextlib.suppress(OSError):  # stderr may be gone: the signal still stops the run
      os.write(2 if self._stderr is None else self._stderr, text.encode())


class Interrupted(KeyboardInterrupt):
  """A stop signal but SIGINT, outside a run's loop: raised where the program is, as Python
  raises KeyboardInterrupt for a Ctrl-C there, so that the command ends through its cleanup (a
  lock released, a temporary file removed) with one line instead of silently."""

  def __init__(self, signum: int):
    super().__init__(signal.Signals(signum).name)
    self.signum = signum


def interrupt_on_signals() -> dict[int, Any]:
  """From now on the stop signals but SIGINT (which Python raises as KeyboardInterrupt itself;
  SIGHUP unless ignored) raise `Interrupted` in the main thread, outside a `StopSignals` (a
  run's loop); a SIGHUP detaches the terminal's outputs first.
  Returns the handlers it replaced (none outside the main thread, where Python has none)."""
  if threading.current_thread() is not threading.main_thread():
    return {}
  terminals, hung_up = _terminal_outputs(), []
  _deliver_swallowed_interrupts_again()

  def interrupt(signum: int, frame: FrameType | None) -> None:
    del frame
    if _AGAIN.pop(signum, False):  # one `_deliver_again` sent: not a second hang-up
      raise Interrupted(signum)
    if signum == signal.SIGHUP:
      _detach(terminals)
      if hung_up:  # the second hang-up (see `StopSignals`): the command is already ending
        return
      hung_up.append(signum)
    raise Interrupted(signum)

  return {signum: signal.signal(signum, interrupt)
          for signum in STOP_SIGNALS if signum != signal.SIGINT and _handled(signum)}


# the signals `_deliver_again` sent, not yet handled (a hang-up among them raises again)
_AGAIN: dict[int, bool] = {}
AGAIN_AFTER_S = 0.05  # how long after a swallowed interrupt it is delivered again
_PREVIOUS_HOOK: list[Any] = [sys.unraisablehook]  # the hook `_deliver_again` replaced


def _deliver_again(unraisable: Any) -> None:
  """`sys.unraisablehook` while `interrupt_on_signals` is in force. Python hands a signal's
  exception to the code running when it is handled; in a garbage collector's callback (jax
  registers one), a `__del__` or a weakref callback it cannot be raised on: it was printed as
  "Exception ignored in ..." with a traceback, and lost, so the command ran on to its end and
  exited 0. Here an `Interrupted` (or Ctrl-C's KeyboardInterrupt) is sent to this process again
  shortly after, from another thread, so that it is handled outside that callback (were it
  swallowed again, this runs again); any other exception goes to the hook it replaced."""
  if not isinstance(unraisable.exc_value, KeyboardInterrupt):
    _PREVIOUS_HOOK[0](unraisable)
    return
  signum = getattr(unraisable.exc_value, "signum", signal.SIGINT)
  _AGAIN[signum] = True
  timer = threading.Timer(AGAIN_AFTER_S, os.kill, (os.getpid(), signum))
  timer.daemon = True
  timer.start()


def _deliver_swallowed_interrupts_again() -> None:
  """Installs `_deliver_again` as `sys.unraisablehook` (once; it stays for the process)."""
  if sys.unraisablehook is not _deliver_again:
    _PREVIOUS_HOOK[0] = sys.unraisablehook
    sys.unraisablehook = _deliver_again


def exit_at_once_on_signals() -> None:
  """From now on a stop signal (SIGHUP unless ignored) ends the process at once, silently,
  with 128 + its number: for a command that is already stopping (a second Ctrl-C while it
  exits, which otherwise raised KeyboardInterrupt inside Python's exit handlers and printed
  their traceback)."""
  for signum in filter(_handled, STOP_SIGNALS):
    signal.signal(signum, lambda n, frame: os._exit(128 + n))
