"""DOT text to PNG and SVG through the system Graphviz `dot` program.

`write_picture(dot_source, stem)` always writes `stem.dot`; when `dot` is on the PATH it also
writes `stem.png` and `stem.svg`. When it is missing, one line says so (once per process) and
how to install it; nothing else fails, the DOT source is there to render later.
"""
from __future__ import annotations

import io
import os
import shutil
import signal
import struct
import subprocess
import sys
from typing import Any, Callable, Sequence

from enas_jax.io import workdir as workdir_lib
from enas_jax.io.errors import UserError

FORMATS = ("png", "svg")
INSTALL_HINT = ("install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install "
                "graphviz; conda: conda install graphviz)")
_warned = [False]


def dot_program() -> str | None:
  """The path of Graphviz's `dot`, or None."""
  return shutil.which("dot")


def warn_once(say: Callable[[str], None] | None = None) -> None:
  if _warned[0]:
    return
  _warned[0] = True
  text = (f"warning: Graphviz `dot` was not found, so architecture pictures are written as .dot "
          f"files only; {INSTALL_HINT} and render them with `dot -Tpng FILE.dot -o FILE.png`.")
  (say or (lambda t: print(t, file=sys.stderr)))(text)


def render(dot_source: str, fmt: str) -> bytes:
  """The picture as bytes (`fmt`: png or svg); a UserError when `dot` is missing or fails."""
  program = dot_program()
  if program is None:
    raise UserError(f"Graphviz `dot` is needed to draw architectures and was not found on the "
                    f"PATH; {INSTALL_HINT}.")
  result = _run_dot(program, fmt, dot_source)
  if result.returncode < 0:  # killed by a signal: a scheduler signals each process of a job
    result = _run_dot(program, fmt, dot_source)  # (this one stops at its next step boundary)
  if result.returncode != 0:
    why = (f"killed by {signal.Signals(-result.returncode).name}" if result.returncode < 0 else
           result.stderr.decode(errors="replace").strip() or f"exit status {result.returncode}")
    raise UserError(f"Graphviz `dot -T{fmt}` failed: {why}.")
  return result.stdout


def _run_dot(program: str, fmt: str, dot_source: str) -> subprocess.CompletedProcess[bytes]:
  """`dot` in a session of its own: a Ctrl-C (SIGINT to the terminal's process group) or a
  `timeout`'s signal reaches this process, which stops cleanly, and not `dot` mid-picture."""
  return subprocess.run([program, f"-T{fmt}"], input=dot_source.encode(), capture_output=True,
                        check=False, start_new_session=True)


def write_picture(dot_source: str, stem: str, formats: Sequence[str] = FORMATS,
                  say: Callable[[str], None] | None = None) -> dict[str, str]:
  """Writes `stem.dot` and, with Graphviz, `stem.<fmt>` for each format. Returns {ext: path} of
  the files written."""
  workdir_lib.make_folders(os.path.dirname(os.path.abspath(stem)))
  written = {"dot": stem + ".dot"}
  workdir_lib.write_atomically(written["dot"], dot_source)
  if dot_program() is None:
    warn_once(say)
    return written
  for fmt in formats:
    path = f"{stem}.{fmt}"
    workdir_lib.write_atomically(path, render(dot_source, fmt))
    written[fmt] = path
  return written


def write_figure(fig: Any, path: str, dpi: int) -> None:
  """A matplotlib figure written to `path` atomically, in the format its ending names (png
  without one); its folder made."""
  picture = io.BytesIO()
  fig.savefig(picture, dpi=dpi, format=os.path.splitext(path)[1][1:].lower() or "png")
  workdir_lib.make_folders(os.path.dirname(os.path.abspath(path)))
  workdir_lib.write_atomically(path, picture.getvalue())


def png_size(png: bytes) -> tuple[int, int]:
  """(height, width) from a PNG's IHDR chunk."""
  if png[:8] != b"\x89PNG\r\n\x1a\n":
    raise ValueError("not a PNG")
  width, height = struct.unpack(">II", png[16:24])
  return height, width
