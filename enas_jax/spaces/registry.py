"""The one table from a search space's name to its implementation, and what reads any space's
architecture through it.

Adding a space: a package under `spaces/` with a `SPACE` object implementing
`spaces.base.SearchSpace`, and one line in `SPACES` below (docs/adding_a_search_space.md).
`load_any` serves the commands that take an architecture without a config
(`python -m enas_jax.show`, `python -m enas_jax.gif`): each space's loader is tried and the one
that accepts the input wins; an authors' string that fits more than one space needs `space`.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from enas_jax.io.errors import UserError
from enas_jax.spaces import arch_file
from enas_jax.spaces.base import Arch, SearchSpace
from enas_jax.spaces.macro.space import SPACE as MACRO
from enas_jax.spaces.micro.space import SPACE as MICRO
from enas_jax.spaces.nasbench201.space import SPACE as NASBENCH201
from enas_jax.spaces.rnn.space import SPACE as RNN

SPACES: dict[str, SearchSpace] = {"rnn": RNN, "macro": MACRO, "micro": MICRO,
                                  "nasbench201": NASBENCH201}
DEFAULT_SPACE = "rnn"  # a config without a `space` field


def get_space(name: str, where: str = "Config field `space`") -> SearchSpace:
  """The space called `name`, or a UserError listing the spaces."""
  if not isinstance(name, str) or name not in SPACES:  # a list was a TypeError traceback
    raise UserError(f"{where} is {name!r}; the search spaces are {', '.join(SPACES)}. Fix it in "
                    f"the config file or with --config.space.")
  return SPACES[name]


def load_any(spec: str, space: str | None = None) -> tuple[str, Arch]:
  """(space name, architecture) read from `spec`; `space` forces one space's loader."""
  arch_file.require_path_if_named(spec, "an authors' string", "the architecture")
  if space:
    return space, get_space(space, "--space").load(spec)
  arch_file.require_readable_path(spec)
  found, reasons = [], []
  for name, candidate in SPACES.items():
    try:
      found.append((name, candidate.load(spec)))
    except UserError as err:
      reasons.append(f"as {name}: {err}")
  if len(found) == 1:
    return found[0]
  if not found:
    raise UserError(f"{spec!r} is not an architecture of any search space. Give a search workdir, "
                    f"a JSON file written by a search, ENAS-pytorch's dag.json or an authors' "
                    f"string (with --space={'|'.join(SPACES)}). Tried " + " ".join(reasons))
  names = ", ".join(name for name, _ in found)
  raise UserError(f"The string {spec!r} is a valid architecture of several spaces ({names}); "
                  f"name one with --space.")


def from_json_any(data: Mapping[str, Any], where: str) -> tuple[str, Arch]:
  """(space name, architecture) from our JSON form, whose `space` field names the space."""
  space = data.get("space") if isinstance(data, Mapping) else None
  if not isinstance(space, str) or space not in SPACES:  # a list was a TypeError traceback
    raise UserError(f"The {where} has no valid `space` field (got {space!r}; expected one of "
                    f"{', '.join(SPACES)}): it is not an architecture written by a search.")
  return space, SPACES[space].from_json(data, where=where)


def read_json_file(path: str) -> dict[str, Any]:
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError) as err:
    raise UserError(f"Cannot read the architecture file {path}: {err}.") from None
