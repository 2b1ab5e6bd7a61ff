"""The compiled search program: the controller and the phase functions of any (space, task),
each compiled once for the whole search.

- shared phase: the shared draw samples the architectures of `SHARED_BLOCK` consecutive shared
  steps from the controller in one call (a small program, at XLA's lowest optimisation level on
  the CPU), and the shared step trains the shared weights on one of them (the task's step);
- controller phase: sample `num_samples` architectures (the draw program), reward them (the
  score program: the task's score), one REINFORCE update (the update program);
- derive: sample and score `derive_samples` architectures, `num_samples` at a time, with the
  controller phase's draw and score programs.

Why three programs for the controller phase: inlined into one program per phase, the
controller's LSTM and the model's forward pass were compiled once for the controller step and
again for the derive step, at XLA's full optimisation. Separate, the draw compiles once (on the
CPU at XLA's lowest optimisation level: a draw is a few hundred small operations, where the
optimiser's time is wasted) and the score once, for both phases. The values are those of the pure
composed `controller_steps.make_controller_step`; arrays stay on the device between the programs.
The shared step's architectures come from a draw per block of steps, not from sampling inside
the step: inlined, the controller's sampling was compiled into the shared step at XLA's full
optimisation (0.85 s of the quickstart's first epoch); a draw per step would cost a second
program call per step (7% of the quickstart's step time, experiments/results/performance.md).
Step s's architecture is a function of (controller parameters and step, key, s) only, so the
block a draw starts at does not change it.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from enas_jax.controller import policy as ctl
from enas_jax.controller import steps as controller_steps
from enas_jax.ops import guards
from enas_jax.ops.initialize import FAST_COMPILE
from enas_jax.run.state import CONTROLLER, SHARED
from enas_jax.spaces.base import SearchSpace
from enas_jax.tasks.base import SearchTask
from enas_jax.types import Batch, Metrics, ScoreFn


def fast_jit(fn: Callable[..., Any]) -> Any:
  """`jax.jit(fn)` compiled at XLA's lowest optimisation level on the CPU (the quickstart's
  controller draw: 0.96 -> 0.55 s of compilation, 0.15 -> 0.31 ms a call); the default level
  on accelerators."""
  return jax.jit(fn, compiler_options=FAST_COMPILE if jax.default_backend() == "cpu" else None)


class _Programs:
  """A phase run as jitted programs in turn. `_cache_size()` answers as a jitted function's
  does: the most compilations of any of its programs (1: each compiled once)."""

  def programs(self) -> tuple[Any, ...]:
    fields = (getattr(self, f.name) for f in dataclasses.fields(self))
    return tuple(p for p in fields if hasattr(p, "_cache_size"))

  def _cache_size(self) -> int:
    return max(p._cache_size() for p in self.programs())


@dataclasses.dataclass(frozen=True)
class ControllerPhase(_Programs):
  """`(ctrl_state, params, batch_stats, batch, key, sums) -> (ctrl_state, sums)`."""

  draw: Any  # (ctrl_state, key, index) -> values_SxD
  score: Any  # the task's ScoreFn, jitted
  update: Any  # guarded (ctrl_state, values_SxD, reward_S, figures, key, sums)

  def __call__(self, ctrl: Any, params: Any, batch_stats: Any, batch: Batch, key: jax.Array,
               sums: Metrics) -> tuple[Any, Metrics]:
    values_SxD = self.draw(ctrl, key, ctrl.step)
    reward_S, figures = self.score(params, batch_stats, batch, values_SxD)
    return self.update(ctrl, values_SxD, reward_S, figures, key, sums)


@dataclasses.dataclass(frozen=True)
class DerivePhase(_Programs):
  """`(ctrl_state, params, batch_stats, batch, key) -> (values_SxD, reward_S, figures)`, NumPy
  arrays of `samples` rows: chunk c of `chunk` rows drawn from `key` folded with c."""

  draw: Any  # the controller phase's
  score: Any  # the controller phase's
  samples: int
  chunk: int
  sample_keys: tuple[str, ...]  # batch entries with a row per architecture (the task's)

  def __call__(self, ctrl: Any, params: Any, batch_stats: Any, batch: Batch,
               key: jax.Array) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    chunks = -(-self.samples // self.chunk)
    rows, pending = _HostRows(self.samples), []
    for c in range(chunks):
      values_SxD = self.draw(ctrl, key, _placed_like(key, c))
      pending.append((values_SxD, *self.score(params, batch_stats, self._rows(batch, c),
                                              values_SxD)))
      if len(pending) * self.chunk >= HOST_ROWS or c == chunks - 1:  # while later chunks run
        rows.put((c + 1 - len(pending)) * self.chunk, pending)
        pending = []
    return rows.all()

  def _rows(self, batch: Batch, c: int) -> Batch:
    """The batch of chunk `c`: its architectures' rows of each sample key (the last row
    repeated past the end, so every chunk has one shape)."""
    if not self.sample_keys:
      return batch
    out = dict(batch)
    for name in self.sample_keys:
      rows = np.asarray(batch[name])[c * self.chunk:(c + 1) * self.chunk]
      out[name] = np.concatenate([rows, np.repeat(rows[-1:], self.chunk - len(rows), axis=0)])
    return out


# Derive rows copied to the host together (`DerivePhase`; at least one chunk): few enough that
# their device arrays take little memory (a chunk's about 7.5 KB, however small), enough that
# the copies do not hold the chunks up.
HOST_ROWS = 256


class _HostRows:
  """A phase's outputs (a pytree of arrays with a leading row axis) gathered a block of chunks
  at a time into NumPy arrays of `total` rows, made at the first block: the host holds the rows
  and nothing per chunk. (Kept as device arrays until the end, the quickstart's derive of
  20,000 cells took 150 MB, 7.5 KB a cell.)"""

  def __init__(self, total: int):
    self.total = total
    self.arrays: list[np.ndarray] = []
    self.treedef: Any = None

  def put(self, start: int, parts: list[Any]) -> None:
    """Copies the rows of `parts` (consecutive chunks, in one transfer) to rows `start`, ...;
    rows past `total` (the last chunk's padding) are dropped."""
    leaves = [jax.tree_util.tree_flatten(p) for p in jax.device_get(parts)]
    self.treedef = leaves[0][1]
    if not self.arrays:
      self.arrays = [np.empty((self.total, *x.shape[1:]), x.dtype) for x in leaves[0][0]]
    for i, array in enumerate(self.arrays):
      block = np.concatenate([part[i] for part, _ in leaves])
      array[start:start + len(block)] = block[:self.total - start]

  def all(self) -> Any:
    """The rows, as the parts' pytree."""
    return jax.tree_util.tree_unflatten(self.treedef, self.arrays)


def _placed_like(x: jax.Array, value: int) -> jax.Array:
  """`value` as an int32 scalar placed as `x` is (replicated in a data-parallel run), so that
  derive calls the draw program with the argument placement it was compiled for."""
  if x.committed:
    return jax.device_put(np.int32(value), x.sharding)
  return jax.device_put(np.int32(value))  # (jnp.asarray compiles a conversion the first time)


@dataclasses.dataclass(frozen=True)
class SearchProgram:
  """The controller, its optimizer and the phase functions."""

  controller: ctl.Controller
  ctrl_optimizer: optax.GradientTransformation
  shared_step: Any  # jitted, guarded (model_state, values, batch, key, sums)
  shared_draw: Any  # (ctrl_state, key, first) -> values of shared steps first..first+block-1
  shared_values: tuple[int, ...]  # one shared step's values' shape: [D], or [C, D] (C cells)
  controller_step: ControllerPhase
  derive_step: DerivePhase
  warmup_draw: Any | None  # the shared draw with uniform sampling (warm-up)
  shared_metric_shapes: Callable[..., Any]  # shared_step's arguments less sums -> sums' shapes
  controller_metric_shapes: Callable[..., Any]  # likewise for controller_step
  compile_controller: Callable[..., Any]  # controller_step's arguments -> its programs compiled


def metric_shapes(step: Callable[..., Any]) -> Callable[..., Any]:
  """A function of `step`'s arguments (less the sums) giving its guarded metric sums' shapes.
  With `step` the jitted step that `guarded_jit` wraps, the trace made here is the one the
  program's first call reuses (jax caches a jitted function's trace by argument types)."""
  def shapes(*args):
    return sums_shapes(jax.eval_shape(step, *args)[1])
  return shapes


def phase_sums_shapes(prog: SearchProgram, task: SearchTask, model: Any, ctrl: Any,
                      parallel: Any) -> dict[str, Any]:
  """Each phase's metric sums' shapes (`{SHARED: ..., CONTROLLER: ...}`) for a state of these
  shapes (`model`, `ctrl`: a fresh one's, `jax.eval_shape` of the initialisers), traced through
  the phases' programs with the arguments placed as the loop places them (`parallel`: the run's
  `DataParallel` or None), so that their first calls reuse these traces."""
  train_batch, reward_batch = task.example_batches()
  key = jax.random.key(0)
  values = jax.ShapeDtypeStruct(prog.shared_values, jnp.int32)
  if parallel is not None:
    model, ctrl, key, values = parallel.abstract((model, ctrl, key, values))
    train_batch, reward_batch = (parallel.abstract_batch(b, task.split_keys)
                                 for b in (train_batch, reward_batch))
  return {SHARED: prog.shared_metric_shapes(model, values, train_batch, key),
          CONTROLLER: prog.controller_metric_shapes(ctrl, model.params, model.batch_stats,
                                                    reward_batch, key)}


def sums_shapes(metrics: Any) -> Any:
  """The guarded metric sums' shapes for a step's metrics' shapes (`guards.guarded`'s)."""
  f32 = jax.ShapeDtypeStruct((), jnp.float32)
  return {**metrics, "ok_steps": f32, "steps": f32}


def controller_arguments(phase: ControllerPhase, update: Any, ctrl: Any, params: Any,
                         batch_stats: Any, batch: Batch, key: jax.Array) -> dict[str, tuple]:
  """Each controller-phase program's arguments as shapes, traced through the phase's own
  programs (`update` the jitted step its guarded update wraps; the guarded update's own also
  take the sums): `{"draw": ..., "score": ..., "update": ...}` (data-parallel: given the
  shardings the loop places the arguments with, each program's outputs placed as the
  controller state, as they come)."""
  def placed(tree):
    sharding = getattr(ctrl.step, "sharding", None)
    return tree if sharding is None else jax.tree_util.tree_map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), tree)

  draw_args = (ctrl, key, ctrl.step)
  values_SxD = placed(jax.eval_shape(phase.draw, *draw_args))
  score_args = (params, batch_stats, batch, values_SxD)
  reward_S, figures = placed(jax.eval_shape(phase.score, *score_args))
  return {"draw": draw_args, "score": score_args,
          "update": (ctrl, values_SxD, reward_S, figures, key)}


def controller_metric_shapes(phase: ControllerPhase, update: Any) -> Callable[..., Any]:
  """`(ctrl, params, batch_stats, batch, key) -> the controller phase's metric sums' shapes`,
  traced through the phase's own programs (`controller_arguments`), so their first calls reuse
  these traces."""
  def shapes(ctrl, params, batch_stats, batch, key):
    args = controller_arguments(phase, update, ctrl, params, batch_stats, batch, key)
    return sums_shapes(jax.eval_shape(update, *args["update"])[1])
  return shapes


def derive_row_bytes(phase: ControllerPhase, ctrl: Any, params: Any, batch_stats: Any,
                     batch: Batch, key: jax.Array) -> int:
  """The host bytes of one derive sample's row of results (`DerivePhase`: its decision values,
  reward and figures), from the controller phase's output shapes for these arguments."""
  args = controller_arguments(phase, None, ctrl, params, batch_stats, batch, key)
  leaves = jax.tree_util.tree_leaves(args["update"][1:4])
  return sum(x.dtype.itemsize * math.prod(x.shape[1:]) for x in leaves)


def compile_controller_phase(phase: ControllerPhase, update: Any) -> Callable[..., Any]:
  """`(ctrl, params, batch_stats, batch, key, sums) -> {name: compiled program}`: compiles the
  phase's draw, score and guarded update for these arguments (shapes placed as the loop places
  the arrays: `ops.shapes.abstract`) without running them; their first calls then reuse the
  programs, and so does a second compile (JAX's cache). The names are as a message says them
  ("controller draw")."""
  def compile_all(ctrl, params, batch_stats, batch, key, sums):
    args = controller_arguments(phase, update, ctrl, params, batch_stats, batch, key)
    return {"controller draw": phase.draw.lower(*args["draw"]).compile(),
            "controller score": phase.score.lower(*args["score"]).compile(),
            "controller update": phase.update.lower(*args["update"], sums).compile()}
  return compile_all


# Shared steps whose architectures one call of the shared draw samples.
SHARED_BLOCK = 64
# The fair stream's key: the shared stream's key folded with a step count no search reaches.
FAIR_FOLD = 2**32 - 1


def shared_train_step(from_decisions: Callable[[Any], Any], train_step: Callable[..., Any]
                      ) -> Callable[..., Any]:
  """The pure shared step `(state, values, batch, key) -> (state, metrics)`: trains on the
  architecture of decision values `values` (the shared draw's for this step: `[D]`, or `[C, D]`
  for C cells, whose architectures go to `train_step` stacked on a leading axis) with `key`
  folded with 1 (`key`: the shared stream's key folded with the step, as the guard folds it)."""
  def shared_step(state, values, batch, key):
    arch = (from_decisions(values) if values.ndim == 1 else jax.vmap(from_decisions)(values))
    return train_step(state, batch, arch, jax.random.fold_in(key, 1))
  return shared_step


def shared_draw(controller: ctl.Controller, block: int = SHARED_BLOCK, fair_every: int = 0,
                cells: int = 1) -> Callable[..., Any]:
  """`(ctrl, key, first) -> values_KxD` (K = `block`), or `values_KxCxD` with `cells` = C > 1:
  the architectures of shared steps first, ..., first + K - 1. Step s's is the controller's
  sample at its step from the shared stream's `key` folded with s, then with 0 (the step trains
  with it folded with s, then 1), its C cells' from that key folded with 0, ..., C - 1; with
  `fair_every` > 0 (one cell a step only), every step with s % fair_every == 0 instead trains
  the fair stream's architecture s // fair_every (`search.fair_every`, `fair_values`)."""
  num_choices = tuple(d.num_choices for d in controller.decisions)

  def one(ctrl, key, s):
    step_key = jax.random.fold_in(jax.random.fold_in(key, s), 0)
    if cells > 1:
      return jax.vmap(lambda c: ctl.sample(controller, ctrl.params, jax.random.fold_in(
          step_key, c), ctrl.step).values)(jnp.arange(cells))
    values = ctl.sample(controller, ctrl.params, step_key, ctrl.step).values
    if fair_every:
      fair = fair_values(num_choices, jax.random.fold_in(key, FAIR_FOLD), s // fair_every)
      values = jnp.where(s % fair_every == 0, fair, values)
    return values

  def block_draw(ctrl, key, first):
    steps_K = jnp.asarray(first, jnp.int32) + jnp.arange(block, dtype=jnp.int32)
    return jax.vmap(lambda s: one(ctrl, key, s))(steps_K)
  return block_draw


def fair_values(num_choices: tuple[int, ...], key: jax.Array, index: jax.Array) -> jax.Array:
  """The `index`-th architecture of the fair stream, as decision values `[D]` (int32): decision
  d's values run through a fresh random permutation of its `num_choices[d]` choices every
  `num_choices[d]` architectures (permutation `index // c` from `key` folded with d), so any
  `c` consecutive architectures aligned to a multiple of `c` take each of its choices once
  (FairNAS's strict fairness, decision by decision)."""
  values = []
  for d, c in enumerate(num_choices):
    block_key = jax.random.fold_in(jax.random.fold_in(key, d), index // c)
    values.append(jax.random.permutation(block_key, c)[index % c])
  return jnp.stack(values).astype(jnp.int32)


def stepped_draw(controller: ctl.Controller, n: int) -> Callable[..., Any]:
  """`(ctrl, key, index) -> values_nxD` at the controller's step (its temperature), `key` folded
  with `index` (the controller phase: the step, as `guards.guarded` folds a step's key; derive:
  the chunk)."""
  def draw(ctrl, key, index):
    return ctl.sample_many(controller, ctrl.params, jax.random.fold_in(key, index), n,
                           ctrl.step).values
  return draw


def guarded_jit(step: Callable[..., Any], loss_name: str, donate: tuple[int, ...]) -> Any:
  """`step` guarded (`guards.guarded`) and jitted. Pass `step` jitted to share its trace with
  `metric_shapes`: a jitted function called inside another is inlined when compiled (one
  program, as before) and traced once for both."""
  return jax.jit(guards.guarded(step, loss_name), donate_argnums=donate)


def build_program(space: SearchSpace, task: SearchTask, model_cfg: Any,
                  ctrl_cfg: ctl.ControllerConfig, derive_samples: int,
                  warmup: bool = False, fair_every: int = 0) -> SearchProgram:
  """`warmup`: also compile the shared draw that samples uniformly (the uniform controller
  takes the same parameters and ignores them), for the search's warm-up epochs. `fair_every`
  (> 0): every this many shared steps train the fair stream's architecture instead
  (`shared_draw`)."""
  controller = ctl.Controller(space.decisions(model_cfg), ctrl_cfg)
  ctrl_opt = controller_steps.make_controller_optimizer(ctrl_cfg)
  shared_step = jax.jit(shared_train_step(space.from_decisions, task.train_step))
  warmup_draw = None
  if warmup:
    uniform = ctl.Controller(space.decisions(model_cfg),
                             dataclasses.replace(ctrl_cfg, kind="random"))
    warmup_draw = fast_jit(shared_draw(uniform, cells=task.cells_per_step))
  draw = fast_jit(stepped_draw(controller, ctrl_cfg.num_samples))
  score_S: ScoreFn = task.score()
  score = jax.jit(score_S)
  update_step = jax.jit(controller_steps.make_controller_update(controller, ctrl_cfg, ctrl_opt))
  controller_phase = ControllerPhase(draw=draw, score=score,
                                     update=guarded_jit(update_step, "controller_loss", (0, 5)))
  return SearchProgram(
      controller=controller, ctrl_optimizer=ctrl_opt,
      shared_step=guarded_jit(shared_step, "loss", (0, 4)),
      shared_draw=fast_jit(shared_draw(controller, fair_every=fair_every,
                                       cells=task.cells_per_step)),
      shared_values=((len(controller.decisions),) if task.cells_per_step == 1
                     else (task.cells_per_step, len(controller.decisions))),
      controller_step=controller_phase,
      derive_step=DerivePhase(draw=draw, score=score, samples=derive_samples,
                              chunk=ctrl_cfg.num_samples, sample_keys=task.sample_keys),
      warmup_draw=warmup_draw,
      shared_metric_shapes=metric_shapes(shared_step),
      controller_metric_shapes=controller_metric_shapes(controller_phase, update_step),
      compile_controller=compile_controller_phase(controller_phase, update_step))
