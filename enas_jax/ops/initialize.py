"""Running a model's or controller's initialiser: compiled once, fast.

An initialiser is hundreds of random draws (threefry, the inverse error function) and no heavy
arithmetic, and XLA's optimising backend spends most of its time on that code: on 2 CPU cores the
tiny macro network's initialiser took 10.7 s to compile at the default optimisation level and 1.8 s
at level 0 (the micro network's 8.0 s and 3.4 s). The drawn values differ from the default
level's by float rounding only, and are the same on every call, process and resume, as long as
every fresh state is made here (the search, final training and the report all call this).
XLA also compiles each draw as kernels of its own, so a network's initialiser draws the weights
of one shape together (`by_shape`).
"""
from __future__ import annotations

from typing import Any, Callable, Hashable, TypeVar

import jax
import jax.numpy as jnp

T = TypeVar("T")

FAST_COMPILE = {"xla_backend_optimization_level": 0}


def initialize(init: Callable[..., T], *args: Any, compiled: bool = True,
               check: Callable[[Any], None] | None = None) -> T:
  """`init(*args)`, compiled at XLA's lowest optimisation level; `compiled=False` only calls it,
  for a trace that wants the shapes (compiling there would be seconds of wasted work). `check`:
  called with the compiled program before it runs (a run's memory check)."""
  if not compiled:
    return init(*args)
  program = _compile(init, *args)
  if check is not None:
    check(program)
  return program(*args)


def _compile(init: Callable[..., T], *args: Any) -> Callable[..., T]:
  """`init` compiled for `args` at XLA's lowest optimisation level."""
  return jax.jit(init).lower(*args).compile(compiler_options=FAST_COMPILE)


class Initializer:
  """`init(key)` as `initialize` runs it, compiled at the first call and the program reused by
  later ones (a run that makes fresh weights more than once: a search's start and the answer's
  screen, `run/screen.py`); `compiled=False` only calls it, as `initialize` does."""

  def __init__(self, init: Callable[[jax.Array], T]):
    self._init, self._compiled = init, None

  def __call__(self, key: jax.Array, compiled: bool = True,
               check: Callable[[Any], None] | None = None) -> T:
    if not compiled:
      return self._init(key)
    if self._compiled is None:
      self._compiled = _compile(self._init, key)
    if check is not None:
      check(self._compiled)
    return self._compiled(key)


def by_shape(requests: dict[Hashable, tuple[jax.Array, tuple]], make: Callable[..., Any]
             ) -> dict[Hashable, Any]:
  """`make(key, *shape)` for every request `name: (key, shape)`, the requests of one shape made
  in one vmapped call over their keys. The same numbers as one call each (a random draw is
  elementwise in its key), in fewer kernels: one call per weight made the paper-size image
  networks' initialisers 3-4x slower to compile (performance.md)."""
  groups: dict[tuple, list[Hashable]] = {}
  for name, (_, shape) in requests.items():
    groups.setdefault(shape, []).append(name)
  out = {}
  for shape, names in groups.items():
    keys = jnp.stack([requests[n][0] for n in names])
    made = jax.vmap(lambda k, shape=shape: make(k, *shape))(keys)
    out.update({n: jax.tree_util.tree_map(lambda x, i=i: x[i], made) for i, n in enumerate(names)})
  return out
