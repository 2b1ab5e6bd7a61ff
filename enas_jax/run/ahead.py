"""Compiling ahead: the programs a run needs next, compiled in a background thread while it runs
the programs it needs now.

XLA compiles on the CPU's cores while a step runs on the same cores (or on an accelerator), so a
program compiled while the search's first shared phase runs costs the run less wall time than
the same program compiled at its first call: the same executable either way (a jitted function's
first call reuses a program compiled for the same argument shapes and placements), only sooner.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable

import jax

from enas_jax.ops.shapes import abstract
from enas_jax.run.state import CONTROLLER

if TYPE_CHECKING:
  from enas_jax.run.program import SearchProgram
  from enas_jax.run.state import SearchState
  from enas_jax.tasks.base import SearchTask


class CompileAhead:
  """Runs `compile_fn()` in a daemon thread from construction; `wait()` joins it and re-raises
  what it raised, so an error shows at the point the programs are needed."""

  def __init__(self, compile_fn: Callable[[], None], name: str = "compile-ahead"):
    self._error: BaseException | None = None
    self._thread = threading.Thread(target=self._run, args=(compile_fn,), name=name,
                                    daemon=True)
    self._thread.start()

  def _run(self, compile_fn: Callable[[], None]) -> None:
    try:
      compile_fn()
    except BaseException as err:  # re-raised in the caller's thread by wait()
      self._error = err

  def join(self) -> None:
    """Blocks until the compilation has finished, ignoring its error (the run no longer needs
    the programs: it is ending)."""
    self._thread.join()

  def wait(self) -> None:
    """Blocks until the compilation has finished; raises its error, if any (once)."""
    self._thread.join()
    error, self._error = self._error, None
    if error is not None:
      raise error


def start_search(program: SearchProgram, task: SearchTask, parallel: Any, state: SearchState,
                 controller_key: jax.Array) -> CompileAhead:
  """Compiles, in the background, the controller phase's draw, score and update for the
  arguments the search will call them with (`state`'s arrays and a reward batch, placed as the
  loop places them: `parallel`, the run's `DataParallel` or None; `controller_key`, the
  controller stream's key), then the task's whole-split evaluation for `state`'s model."""
  args = (state.ctrl, state.model.params, state.model.batch_stats, controller_key,
          state.sums[CONTROLLER])
  batch = task.example_batches()[1]
  if parallel is None:
    ctrl, params, stats, key, sums = abstract(args)
    batch = abstract(batch)
  else:
    ctrl, params, stats, key, sums = parallel.abstract(args)
    batch = parallel.abstract_batch(batch, task.split_keys)
  model = abstract(state.model)

  def compile_next() -> None:  # in the order the epoch needs them
    program.compile_controller(ctrl, params, stats, batch, key, sums)
    task.compile_evaluate(model)
  return CompileAhead(compile_next)
