"""Compiling ahead: the programs a run needs next, compiled in a background thread while it runs
the programs it needs now.

XLA compiles on the CPU's cores while a step runs on the same cores (or on an accelerator), so a
program compiled while the search's first shared phase runs costs the run less wall time than
the same program compiled at its first call: the same executable either way (a jitted function's
first call reuses a program compiled for the same argument shapes and placements), only sooner.
The controller's programs are checked against memory as they are compiled (`SearchAhead`), so
that one too large is refused a shared step later, not after the whole first shared phase.
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


# What to lower when a controller program cannot fit (its size grows with the architectures one
# call draws and scores).
CONTROLLER_ADVICE = ("Lower `controller.num_samples` (the architectures one controller step, and "
                     "one chunk of a derive, draws and scores at once), `data.batch_size` or the "
                     "model's size (`model.*`) in the config, or run it where more memory is "
                     "free.")


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

  def done(self) -> bool:
    """Whether the compilation has finished."""
    return not self._thread.is_alive()

  def wait(self) -> None:
    """Blocks until the compilation has finished; raises its error, if any (once)."""
    self._thread.join()
    error, self._error = self._error, None
    if error is not None:
      raise error


def controller_shapes(task: SearchTask, parallel: Any, state: SearchState,
                      controller_key: jax.Array) -> tuple[Any, ...]:
  """The controller phase's arguments `(ctrl, params, batch_stats, batch, key, sums)` as shapes,
  placed as the loop places the arrays (`state`'s and a reward batch; `parallel`: the run's
  `DataParallel` or None; `controller_key`: the controller stream's key)."""
  args = (state.ctrl, state.model.params, state.model.batch_stats, controller_key,
          state.sums[CONTROLLER])
  batch = task.example_batches()[1]
  if parallel is None:
    ctrl, params, stats, key, sums = abstract(args)
    batch = abstract(batch)
  else:
    ctrl, params, stats, key, sums = parallel.abstract(args)
    batch = parallel.abstract_batch(batch, task.split_keys)
  return ctrl, params, stats, batch, key, sums


class SearchAhead:
  """The programs a search's epoch needs after its shared phase: the controller phase's draw,
  score and update and the task's whole-split evaluation. `start` compiles them in the
  background (`CompileAhead`), once, when `enabled`, and checks the controller's programs'
  memory there (`check`: `Runner.check_compiled`), so that `poll`, at the shared steps that
  follow, refuses a program that cannot fit within seconds of the search's start rather than
  after its first shared phase. `ready` waits for them; if nothing compiled them ahead, it
  compiles and checks the controller's programs itself (their calls reuse them)."""

  def __init__(self, program: SearchProgram, task: SearchTask, parallel: Any,
               controller_key: jax.Array, enabled: bool, check: Callable[..., None]):
    self.program, self.task, self.parallel, self.key = program, task, parallel, controller_key
    self.enabled, self.check, self.checked = enabled, check, False
    self.running: CompileAhead | None = None

  def start(self, state: SearchState) -> None:
    """Starts compiling in the background (the first call only, when enabled)."""
    if self.enabled:
      self.enabled = False
      args = controller_shapes(self.task, self.parallel, state, self.key)
      model = abstract(state.model)

      def compile_next() -> None:  # in the order the epoch needs them
        self.check_controller(args)
        self.task.compile_evaluate(model)
      self.running = CompileAhead(compile_next)

  def poll(self) -> None:
    """Raises what the background compilation raised (a refusal), if it has ended."""
    if self.running is not None and self.running.done():
      self._wait()

  def ready(self, state: SearchState) -> None:
    """Waits for the programs compiled ahead, if any (raising what their compilation raised);
    if nothing checked the controller phase's programs yet, compiles and checks them."""
    self.enabled = False  # too late to compile ahead
    self._wait()
    if not self.checked:
      self.check_controller(controller_shapes(self.task, self.parallel, state, self.key))

  def _wait(self) -> None:
    if self.running is not None:
      running, self.running = self.running, None
      running.wait()

  def check_controller(self, args: tuple[Any, ...]) -> None:
    """Compiles the controller phase's programs for `args` (`controller_shapes`) and checks each
    one's memory."""
    for what, program in self.program.compile_controller(*args).items():
      self.check(program, f"One {what} of the search needs {{size}} of working memory (its "
                          f"temporaries and outputs, by XLA's count)", advice=CONTROLLER_ADVICE)
    self.checked = True

  def join(self) -> None:
    """Waits for a compilation still running, ignoring its error (the run is ending)."""
    if self.running is not None:
      self.running.join()
