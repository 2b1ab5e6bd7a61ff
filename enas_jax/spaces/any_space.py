"""Any architecture of any search space, from whatever the user has: a search workdir, our JSON,
ENAS-pytorch's dag.json, the authors' strings (recurrent, macro, micro) or an `enas_lm:` string.

Used by the commands that take an architecture without a config (`python -m enas_jax.show`,
`python -m enas_jax.gif`): each space's own loader is tried and the one that accepts the input
wins; an authors' string that fits more than one space needs `space` named.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Mapping

from enas_jax.errors import UserError
from enas_jax.spaces.cnn import CNN_SPACES
from enas_jax.spaces.macro import arch as macro_arch
from enas_jax.spaces.micro import arch as micro_arch
from enas_jax.spaces.rnn import formats as rnn_formats

SPACE_NAMES = ("rnn", "macro", "micro")
_LOADERS: dict[str, Callable[[str], Any]] = {
    "rnn": lambda spec: rnn_formats.load_arch_spec(spec).arch,
    "macro": macro_arch.load_arch,
    "micro": micro_arch.load_arch,
}
_FROM_JSON: dict[str, Callable[..., Any]] = {
    "rnn": rnn_formats.from_json, "macro": macro_arch.from_json, "micro": micro_arch.from_json}
_TO_JSON: dict[str, Callable[[Any], dict[str, Any]]] = {
    "rnn": rnn_formats.to_json, **{name: s.to_json for name, s in CNN_SPACES.items()}}
_TO_AUTHORS: dict[str, Callable[[Any], str]] = {
    "rnn": rnn_formats.to_authors_string,
    **{name: s.to_authors_string for name, s in CNN_SPACES.items()}}


def check_space(space: str, where: str = "--space") -> None:
  if space not in SPACE_NAMES:
    raise UserError(f"{where} is {space!r}; the search spaces are {', '.join(SPACE_NAMES)}.")


def load_any(spec: str, space: str | None = None) -> tuple[str, Any]:
  """(space, architecture) read from `spec`; `space` forces one space's loader."""
  if space:
    check_space(space)
    return space, _LOADERS[space](spec)
  found, reasons = [], []
  for name in SPACE_NAMES:
    try:
      found.append((name, _LOADERS[name](spec)))
    except UserError as err:
      reasons.append(f"as {name}: {err}")
  if len(found) == 1:
    return found[0]
  if not found:
    raise UserError(f"{spec!r} is not an architecture of any search space. Give a search workdir, "
                    f"a JSON file written by a search, ENAS-pytorch's dag.json or an authors' "
                    f"string (with --space=rnn|macro|micro). Tried " + " ".join(reasons))
  names = ", ".join(name for name, _ in found)
  raise UserError(f"The string {spec!r} is a valid architecture of several spaces ({names}); "
                  f"name one with --space.")


def from_json_any(data: Mapping[str, Any], where: str) -> tuple[str, Any]:
  """(space, architecture) from our JSON form, whose `space` field names the space."""
  space = data.get("space") if isinstance(data, Mapping) else None
  if space not in _FROM_JSON:
    raise UserError(f"The {where} has no valid `space` field (got {space!r}; expected one of "
                    f"{', '.join(SPACE_NAMES)}): it is not an architecture written by a search.")
  return space, _FROM_JSON[space](data, where=where)


def to_json(space: str, arch: Any) -> dict[str, Any]:
  return _TO_JSON[space](arch)


def to_authors_string(space: str, arch: Any) -> str:
  return _TO_AUTHORS[space](arch)


def read_json_file(path: str) -> dict[str, Any]:
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError) as err:
    raise UserError(f"Cannot read the architecture file {path}: {err}.") from None
