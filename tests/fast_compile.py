"""`call(f, *args)`: `f(*args)` compiled at XLA's lowest optimisation level, for a test that
compiles a large program once to compare its numbers (an unrolled reference, a grouped
initialiser): a few seconds to compile instead of most of a minute at the default level, the
same arithmetic (the product compiles its initialisers so, `enas_jax/ops/initialize.py`)."""
from typing import Any, Callable

import jax

from enas_jax.ops.initialize import FAST_COMPILE


def call(f: Callable[..., Any], *args: Any) -> Any:
  return jax.jit(f).lower(*args).compile(compiler_options=FAST_COMPILE)(*args)
