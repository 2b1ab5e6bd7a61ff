"""Counting calls in a traced function: how many times a named jitted function (for example
`jax.random.normal`'s `_normal`) is called, through nested jits and vmaps."""
from typing import Any, Callable

import jax


def named_calls(fn: Callable[..., Any], *args: Any, name: str = "_normal") -> int:
  """Call sites of the jitted function `name` in `fn(*args)`'s jaxpr (not counting inside it)."""
  return _count(jax.make_jaxpr(fn)(*args).jaxpr, name)


def _count(jaxpr: Any, name: str) -> int:
  n = 0
  for eqn in jaxpr.eqns:
    if eqn.params.get("name") == name:
      n += 1
      continue
    for value in eqn.params.values():
      inner = getattr(value, "jaxpr", None)
      if hasattr(inner, "eqns"):
        n += _count(inner, name)
  return n
