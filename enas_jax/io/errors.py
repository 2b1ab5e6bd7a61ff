"""User-facing errors: one clear paragraph and a non-zero exit instead of a traceback."""
from __future__ import annotations

import contextlib
import errno
import re
import signal
import sys
import textwrap
import traceback
from typing import Callable, NoReturn, Sequence, TextIO

from enas_jax.io.signals import (exit_at_once_on_signals, interrupt_on_signals,
                                 to_null_device)

# Exit status for a user mistake (bad input, bad config, missing data).
USER_ERROR_EXIT = 2


class UserError(Exception):
  """A mistake in the user's input: the message names the file or field and the fix."""

  def __init__(self, message: str):
    super().__init__(" ".join(message.split()))


class Stopped(Exception):
  """The run stopped on a signal (`io.signals.STOP_SIGNALS`) after saving a checkpoint; the
  process exits with `exit_code` (128 + the signal's number, as a shell reports a process the
  signal killed)."""

  def __init__(self, message: str, exit_code: int):
    super().__init__(" ".join(message.split()))
    self.exit_code = exit_code


# Write failures a user fixes outside the program (disk full, quota, a file-size limit such as
# `ulimit -f`, read-only or lost disk, permissions): one paragraph naming the file, not a
# traceback.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO, errno.EACCES,
                errno.EPERM}


def write_failure(err: OSError, resumes: bool = True) -> UserError:
  """The paragraph for an OSError from writing an output (`err.errno` in `WRITE_ERRNOS`);
  `resumes`: the command is a run that checkpoints into a --workdir (search, train), not one
  that writes a file or a folder of them (show, plot, gif, compare, report)."""
  where = f" {err.filename}" if err.filename else ""
  fix = (", or pass another --workdir) and run the same command; it resumes from the newest "
         "checkpoint" if resumes else ") and run the same command")
  return UserError(f"Cannot write{where}: {err.strerror or err}. Nothing saved before it is "
                   f"lost: free space on that disk (or fix its permissions{fix}.")


def out_of_device_memory(err: BaseException) -> bool:
  """Whether `err` is XLA's report that the device's memory ran out (a batch or a model too
  large for it): RESOURCE_EXHAUSTED, or on a CPU, where the allocation failed while a program
  was being dispatched, INTERNAL with "Out of memory allocating". JAX is not imported for the
  check: without it, no JAX error was raised."""
  jax = sys.modules.get("jax")
  if jax is None or not isinstance(err, jax.errors.JaxRuntimeError):
    return False
  text = str(err)
  return text.startswith("RESOURCE_EXHAUSTED") or (
      text.startswith("INTERNAL") and _OUT_OF_MEMORY.search(text) is not None)


_OUT_OF_MEMORY = re.compile(r"Out of memory allocating \d+ bytes")


_MEMORY_TEXT = ("RESOURCE_EXHAUSTED", "Cannot allocate memory", "Out of memory")


def ran_out_of_memory(err: BaseException | None) -> BaseException | None:
  """The exception in `err`'s chain (itself, or one it wraps: orbax and tensorstore wrap what
  they meet) that says memory ran out, this process's (MemoryError, ENOMEM) or the device's,
  or None."""
  while err is not None:
    if (isinstance(err, MemoryError) or (isinstance(err, OSError) and err.errno == errno.ENOMEM)
        or any(text in str(err) for text in _MEMORY_TEXT)):  # XLA's words (`out_of_device_memory`)
      return err
    err = err.__cause__ or err.__context__
  return None


def memory_error_words(err: BaseException) -> str:
  """An out-of-memory error's words for a message: its first line, at most 200 characters, with
  XLA's repeated "Error dispatching computation: " prefixes (one per program in flight) cut."""
  first = str(err).splitlines()[0] if str(err) else type(err).__name__
  return re.sub(r"(Error dispatching computation: )+", "", first)[:200]


# What to do about it, after the failure's own words.
OUT_OF_MEMORY_ADVICE = ("Lower `data.batch_size` or the model's size (`model.*`) in the config, "
                        "or use a device with more memory (on a GPU, JAX takes 75% of it unless "
                        "XLA_PYTHON_CLIENT_MEM_FRACTION says otherwise, e.g. .95).")


# The same for this process's own memory (Python's MemoryError: NumPy or the interpreter could
# not allocate, past the machine's free memory or the process's address-space limit).
PROCESS_MEMORY_ADVICE = ("Lower the sizes in the config (the data's, `data.*`, or the model's, "
                         "`model.*`), or run it where more memory is free (the machine's, or "
                         "under a higher address-space limit: `ulimit -v`).")


def paragraph(text: str) -> str:
  """`text` wrapped at 100 columns, never inside a word: a path or a flag (hyphens included)
  stays whole on one line, so it can be copied."""
  return textwrap.fill(text, width=100, break_on_hyphens=False, break_long_words=False)


def exit_with(err: UserError, stream: TextIO | None = None) -> NoReturn:
  """Prints the error as one wrapped paragraph and exits with `USER_ERROR_EXIT`."""
  stream = stream or sys.stderr
  stream.write(paragraph(f"error: {err}") + "\n")
  stream.flush()
  _leave_shared_run(USER_ERROR_EXIT, str(err))
  raise SystemExit(USER_ERROR_EXIT)


def _processes():
  """`io.processes` when this program loaded it (every command that joins a multi-host run
  does), else None: errors are reported without importing JAX."""
  return sys.modules.get("enas_jax.io.processes")


def _leave_shared_run(code: int, message: str) -> None:
  """In a multi-host run: the other processes are told of this failure and stop too, and this
  process ends at once (`io.processes.leave_after_failure`); returns on one host."""
  processes = _processes()
  if processes is not None:
    processes.leave_after_failure(code, message)


def _traceback_in_shared_run(err: BaseException) -> None:
  """An unforeseen error in a multi-host run: after another process's failure (most likely its
  consequence: a collective that lost a peer) or a peer lost without one (killed) one paragraph,
  else the traceback; either way the other processes stop too. Returns on one host, where the
  traceback comes as usual."""
  processes = _processes()
  if processes is None or not processes.shared_run():
    return
  peer, lost = processes.peer_failure(), processes.lost_peer(err)
  first = (str(err).splitlines() or [""])[0][:300]
  if peer:  # (no post of this process's own: the first failure's stands)
    sys.stderr.write(paragraph(f"error: {peer[0]}") + "\n")
    code, message = peer[1], first
  elif lost:
    sys.stderr.write(paragraph(f"error: {lost}") + "\n")
    code, message = USER_ERROR_EXIT, lost
  else:
    traceback.print_exception(err)
    code, message = 1, f"{type(err).__name__}: {first} (its traceback is in its error output)."
  processes.leave_after_failure(code, message)
  raise SystemExit(code)  # another process finished: exit as it did (reported above)


def run_main(main: Callable[[Sequence[str]], None], resumes: bool = True
             ) -> Callable[[Sequence[str]], None]:
  """Wraps an absl `main` so that a `UserError` ends the program cleanly; `resumes`: as
  `write_failure`'s, for the paragraph of a failed write."""

  def wrapped(argv: Sequence[str]) -> None:
    try:
      reported(argv)
    except SystemExit:
      raise
    except BaseException as err:  # a traceback: in a multi-host run the others must stop too
      _traceback_in_shared_run(err)
      raise

  def reported(argv: Sequence[str]) -> None:
    previous, stopping = interrupt_on_signals(), False
    try:
      main(argv)
    except UserError as err:
      exit_with(err)
    except Stopped as stop:
      stopping = True
      exit_at_once_on_signals()  # already stopping: a second signal needs no traceback
      sys.stdout.flush()
      sys.stderr.write(paragraph(str(stop)) + "\n")
      sys.stderr.flush()
      raise SystemExit(stop.exit_code) from None
    except KeyboardInterrupt as interrupt:  # a stop signal outside a run's loop (its setup; a
      stopping = True                         # report, a picture): `Interrupted` or Ctrl-C
      exit_at_once_on_signals()
      signum = getattr(interrupt, "signum", signal.SIGINT)
      # (the files the commands rewrite are replaced whole, so none is left half-written)
      with contextlib.suppress(OSError):
        sys.stderr.write(f"interrupted ({signal.Signals(signum).name}); what was saved before it "
                         f"is kept.\n")
      _leave_shared_run(128 + signum, f"interrupted ({signal.Signals(signum).name}).")
      raise SystemExit(128 + signum) from None
    except BrokenPipeError:  # the reader of the output went away (`... | head`): stop quietly
      with contextlib.suppress(OSError, ValueError):  # Python's flush at exit would fail again
        to_null_device([sys.stdout.fileno()])
      raise SystemExit(128 + signal.SIGPIPE) from None  # as a shell reports it
    except OSError as err:
      if err.errno not in WRITE_ERRNOS:
        raise
      exit_with(write_failure(err, resumes))
    except MemoryError as err:  # outside a run's loop, as below
      exit_with(UserError(f"This process ran out of memory ({memory_error_words(err)}). "
                          f"{PROCESS_MEMORY_ADVICE}"))
    except Exception as err:  # outside a run's loop (a report, a picture): the run says more
      if not out_of_device_memory(err):
        raise
      exit_with(UserError(f"The device ran out of memory ({memory_error_words(err)}). "
                          f"{OUT_OF_MEMORY_ADVICE}"))
    finally:  # the caller's handlers again, unless a stop made signals end the process at once
      if not stopping:
        for signum, handler in previous.items():
          signal.signal(signum, handler)

  return wrapped
