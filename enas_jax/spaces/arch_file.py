"""Reading an architecture given on the command line as a search workdir or a JSON file."""
from __future__ import annotations

import json
import os
import re
from typing import Any, Callable, Mapping

from enas_jax.io.errors import UserError


def read_arch_json(spec: str, space: str) -> tuple[str, Any] | None:
  """(path, parsed JSON) when `spec` is a search workdir (its best_arch.json) or a file; None
  when it names neither (then it is an architecture string). Unreadable JSON is a UserError."""
  if not os.path.isdir(spec):
    require_path_if_named(spec, f"the authors' {space} string")
  path = os.path.join(spec, "best_arch.json") if os.path.isdir(spec) else spec
  if not os.path.isfile(path):
    return None
  give = f"Give our JSON (written by the search as best_arch.json) or the authors' {space} string."
  try:
    with open(path, encoding="utf-8") as f:
      return path, json.load(f)
  except ValueError as err:
    raise UserError(f"The architecture file {path} is not valid JSON ({err}). {give}") from None
  except OSError as err:
    raise UserError(f"Cannot read the architecture file {path}: {err}. {give}") from None


def integer(token: str) -> int:
  """A token of an architecture string as an integer: ASCII digits with an optional minus, no
  more (Python's `int` also takes "0_1_1" as 11 and "+3"), else ValueError."""
  if not re.fullmatch(r"-?[0-9]+", token):
    raise ValueError(f"not an integer: {token!r}")
  return int(token)


def require_path_if_named(spec: str, string: str, given_as: str = "--config.arch") -> None:
  """A UserError when `spec` reads as a path (a directory separator, or a .json or .txt ending)
  but names nothing there, or names an empty file: otherwise it would be parsed as an
  architecture string, and the error would be about its tokens, not the file."""
  looks_like_path = os.sep in spec or "/" in spec or spec.endswith((".json", ".txt"))
  if looks_like_path and not os.path.exists(spec):
    raise UserError(f"There is no file or directory {spec!r} (given as {given_as}). Give a "
                    f"finished search's workdir, an architecture file, or {string} itself.")
  if os.path.isfile(spec) and os.path.getsize(spec) == 0:
    raise UserError(f"The architecture file {spec!r} (given as {given_as}) is empty. Give a "
                    f"finished search's workdir, a file holding an architecture, or {string} "
                    f"itself.")


def require_readable_path(spec: str) -> None:
  """For a command that tries every space on `spec`: a UserError, said once, when `spec` is a
  directory without best_arch.json or a .json file (or a workdir's best_arch.json) that is not
  JSON (`read_arch_json`'s); no space could read it, and each space's own reason would repeat
  the same fault."""
  if os.path.isdir(spec) and not os.path.isfile(os.path.join(spec, "best_arch.json")):
    raise UserError(f"The directory {spec!r} is not a finished search workdir: it has no "
                    f"best_arch.json (a search writes it when it ends). Give it after the search "
                    f"ends, or give an architecture file (archs/epoch_*.json while it runs) or "
                    f"string.")
  if os.path.isdir(spec) or spec.endswith(".json"):
    read_arch_json(spec, "rnn, macro or micro")


def load_arch(spec: str, space: str, size: int | None,
              from_authors_string: Callable[..., Any], from_json: Callable[..., Any],
              validate: Callable[..., None]) -> Any:
  """A search workdir (its best_arch.json), a JSON file, or the authors' string, read with the
  space's own functions; `size` (layers or nodes, None: any) is checked either way."""
  found = read_arch_json(spec, space)
  if found is None:
    return from_authors_string(spec, size, where="architecture string")
  path, data = found
  arch = from_json(data, where=path)
  validate(arch, size, path)
  return arch


def check_space_field(data: Any, space: str, what: str, where: str) -> None:
  """A UserError unless `data` is a JSON object whose `space` is `space` (`what`: the space's
  architectures in words, e.g. "a macro-space architecture")."""
  if not isinstance(data, Mapping) or data.get("space") != space:
    found = data.get("space") if isinstance(data, Mapping) else None
    raise UserError(f"The {where} is not {what} (its `space` is {found!r}, expected {space!r}). "
                    f"Give one found by a {space} search.")
