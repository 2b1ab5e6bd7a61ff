"""Running a model's or controller's initialiser: compiled once, fast.

An initialiser is hundreds of random draws (threefry, the inverse error function) and no heavy
arithmetic, and XLA's optimising backend spends most of its time on that code: on 2 CPU cores the
tiny macro network's initialiser took 10.7 s to compile at the default optimisation level and 1.8 s
at level 0 (the micro network's 8.0 s and 3.4 s). The drawn values differ from the default
level's by float rounding only, and are the same on every call, process and resume, as long as
every fresh state is made here (the search, final training and the report all call this).
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

import jax

T = TypeVar("T")

FAST_COMPILE = {"xla_backend_optimization_level": 0}


def initialize(init: Callable[..., T], *args: Any, compiled: bool = True) -> T:
  """`init(*args)`, compiled at XLA's lowest optimisation level; `compiled=False` only calls it,
  for a trace that wants the shapes (compiling there would be seconds of wasted work)."""
  if not compiled:
    return init(*args)
  return jax.jit(init).lower(*args).compile(compiler_options=FAST_COMPILE)(*args)
