"""User-facing errors: one clear paragraph and a non-zero exit instead of a traceback."""
from __future__ import annotations

import sys
import textwrap
from typing import Callable, NoReturn, Sequence, TextIO

# Exit status for a user mistake (bad input, bad config, missing data).
USER_ERROR_EXIT = 2


class UserError(Exception):
  """A mistake in the user's input: the message names the file or field and the fix."""

  def __init__(self, message: str):
    super().__init__(" ".join(message.split()))


def exit_with(err: UserError, stream: TextIO | None = None) -> NoReturn:
  """Prints the error as one wrapped paragraph and exits with `USER_ERROR_EXIT`."""
  stream = stream or sys.stderr
  stream.write(textwrap.fill(f"error: {err}", width=100) + "\n")
  stream.flush()
  raise SystemExit(USER_ERROR_EXIT)


def run_main(main: Callable[[Sequence[str]], None]) -> Callable[[Sequence[str]], None]:
  """Wraps an absl `main` so that a `UserError` ends the program cleanly."""

  def wrapped(argv: Sequence[str]) -> None:
    try:
      main(argv)
    except UserError as err:
      exit_with(err)

  return wrapped
