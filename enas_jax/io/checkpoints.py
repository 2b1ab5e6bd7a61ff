"""The run state <-> an orbax CheckpointManager in `<workdir>/checkpoints`.

A checkpoint is two items:
- `arrays`: the leaves of the run's state pytree (weights, optimizer states, baseline, metric
  sums), saved as a flat dict {"0": leaf, "1": leaf, ...}, so that empty optimizer states and
  custom pytree nodes need no special handling;
- `meta`: JSON with the loop position, data cursors, history, the config, and the path, shape and
  dtype of every leaf. On restore, the current run's state gives the tree structure; the leaf
  table is checked against it first, so a changed model is a clear error, not an orbax traceback.

Saves are synchronous (the caller's jitted steps donate their buffers) and atomic: orbax writes a
temporary directory and renames it when complete, so a kill during a save leaves the previous
checkpoints intact. In a multi-host run every process calls `save` and `restore_latest`
together; orbax writes the arrays (host copies of replicated values) and the JSON from process 0
and waits for every process before committing. A checkpoint that cannot be read is moved aside
(`<step>.unreadable`) with a message, and the run goes on from the one before it.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from absl import logging as absl_logging

from enas_jax.io import orbax_output, processes
from enas_jax.io.configuration import has_kind, require
from enas_jax.io.errors import WRITE_ERRNOS, UserError, memory_error_words, ran_out_of_memory

FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
  """The `checkpoint` section (see configs/ptb_rnn.py for comments)."""

  every_steps: int = 500
  keep: int = 3

  def validate(self, section: str = "checkpoint") -> None:
    require(self, section, ">= 0", "every_steps")  # 0: only at the end of each epoch
    require(self, section, ">= 1", "keep")


# What keeps a checkpoint's loop position from being a run's (in words), or None.
PositionCheck = Callable[[Any], "str | None"] | None


def leaf_table(tree: Any) -> list[list[Any]]:
  """[path, shape, dtype] of every leaf, in flattening order."""
  leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
  return [[jax.tree_util.keystr(path), list(leaf.shape), str(leaf.dtype)] for path, leaf in leaves]


def _float_leaves(tree: Any) -> list[Any]:
  return [x for x in jax.tree_util.tree_leaves(tree)
          if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]


# Trees of at most this many floating-point elements are checked as one vector (`tree_finite`).
_JOINED_MAX = 1 << 20


def tree_finite(tree: Any) -> jax.Array:
  """True when every floating-point leaf of `tree` is finite (no leaf: True). Traceable: the
  steps' NaN/Inf guard calls it inside their programs, `all_finite` as one program of its own.

  A small tree (at most `_JOINED_MAX` elements: a controller's state) is joined into one vector
  per dtype and checked by one reduction: one reduction per leaf made XLA's CPU compile of the
  quickstart's controller update 0.4 s (a sixth) slower (58 leaves: the parameters and Adam's
  two moments). A larger tree is checked leaf by leaf: joining copies it (5x slower at 35M
  elements; performance.md)."""
  leaves = _float_leaves(tree)
  if not leaves:
    return jnp.asarray(True)
  if sum(np.size(x) for x in leaves) > _JOINED_MAX:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))
  groups: dict[Any, list[jax.Array]] = {}
  for x in leaves:
    groups.setdefault(jnp.result_type(x), []).append(jnp.ravel(x))
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(jnp.concatenate(xs)))
                            for xs in groups.values()]))


# One program for the whole check (element-wise calls compiled a program per leaf shape: 0.8 s
# at the quickstart's first save); it is given the floating leaves only.
_tree_finite_program = jax.jit(tree_finite)


def all_finite(tree: Any) -> bool:
  """Whether a state may be saved: every floating-point leaf finite."""
  leaves = _float_leaves(tree)
  return bool(_tree_finite_program(leaves)) if leaves else True


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any],
                       defaults: Mapping[str, Any] | None = None, prefix: str = "") -> list[str]:
  """Dotted names of the fields whose values differ (nested dicts compared field by field).

  A field the saved config lacks (saved by an older version) is no difference when the current
  value is its default (`defaults`, same nesting): the old run behaved as that default.
  """
  out = []
  defaults = defaults or {}
  for key in sorted(set(saved) | set(current)):
    name = f"{prefix}{key}"
    a, b = saved.get(key, "<absent>"), current.get(key, "<absent>")
    if isinstance(a, Mapping) and isinstance(b, Mapping):
      out += config_differences(a, b, defaults.get(key) or {}, name + ".")
    elif key not in saved and key in defaults and b == defaults[key]:
      continue
    elif a != b:
      out.append(f"{name} ({a!r} -> {b!r})")
  return out


def check_resumable(saved: Mapping[str, Any], current: Any, allowed: tuple[str, ...],
                    workdir: str, what: str) -> list[str]:
  """Compares a checkpoint's config with the current one (a config dataclass instance).

  Returns the differences in `allowed` field prefixes (schedules, bookkeeping) for the caller to
  report; raises a UserError naming every other difference.
  """
  current_dict = dataclasses.asdict(current)
  saved_kind, current_kind = _kind(saved), _kind(current_dict)
  if saved_kind != current_kind:
    raise UserError(f"The workdir {workdir} holds a {saved_kind}'s checkpoints, and this is a "
                    f"{current_kind}: the two cannot share a workdir. Pass another --workdir.")
  diffs = config_differences(saved, current_dict, dataclasses.asdict(type(current)()))
  blocking = [d for d in diffs if not d.startswith(allowed)]
  if blocking:
    more = (f" and {len(blocking) - _LISTED} more" if len(blocking) > _LISTED else "")
    raise UserError(
        f"The workdir {workdir} holds checkpoints of a different {what}: config fields "
        f"{'; '.join(blocking[:_LISTED])}{more} differ from the saved run. Resume with the "
        f"original values, or pass a new --workdir to start another {what}.")
  return diffs


_LISTED = 8  # the differing fields a refused resume names (the rest counted)


def _kind(config: Mapping[str, Any]) -> str:
  """Which run a config (as saved) belongs to: a search has `search`, a training `train`."""
  return "search" if "search" in config else "final training" if "train" in config else "run"


class NonFiniteState(ValueError):
  """A state with NaN or Inf is never saved."""


_WRITE_FAILURE_TEXT = ("No space left on device", "Disk quota exceeded", "File too large",
                       "Read-only file system", "Permission denied", "Input/output error")


def is_write_failure(err: BaseException) -> bool:
  """Whether `err` (or an exception it wraps) is a failed write a user fixes outside the
  program: an OSError with a write errno, or orbax/tensorstore's text of one."""
  while err is not None:
    if isinstance(err, OSError) and err.errno in WRITE_ERRNOS:
      return True
    if any(text in str(err) for text in _WRITE_FAILURE_TEXT):
      return True
    err = err.__cause__ or err.__context__
  return False


def write_failure_reason(err: BaseException) -> str:
  """The operating system's words for `err` ("No space left on device")."""
  for text in _WRITE_FAILURE_TEXT:
    if text in str(err):
      return text
  return getattr(err, "strerror", None) or type(err).__name__


class Checkpointer:
  """Saves and restores the run state in `directory`, keeping the last `keep` checkpoints."""

  def __init__(self, directory: str, keep: int, say: Callable[[str], None] = print):
    self.directory = os.path.abspath(directory)
    self._say = say
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                           enable_async_checkpointing=False,
                                           cleanup_tmp_directories=True)
    try:
      self._manager = ocp.CheckpointManager(self.directory, options=options)
    except OSError as err:
      raise UserError(f"Cannot create the checkpoint directory {self.directory!r} "
                      f"({err.strerror}). Pass a writable --workdir.") from None
    # orbax removes old temporary folders in a thread it waits for only before the first save: a
    # run that ended before then (a config too large for memory) left the thread to fail as
    # Python shut down, and a traceback followed the run's paragraph. Waited for here.
    getattr(self._manager, "_maybe_await_cleanup_tmp_directory", lambda: None)()

  def steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def save(self, step: int, state: Any, meta: Mapping[str, Any],
           must_be_finite: Any = None) -> None:
    """Saves `state` (a pytree of arrays) and `meta` (JSON-able) as checkpoint `step`.

    Raises:
      NonFiniteState: if `must_be_finite` (default: all of `state`; metric sums may hold an
        infinite perplexity) holds NaN or Inf: a checkpoint is never poisoned.
    """
    if not all_finite(state if must_be_finite is None else must_be_finite):
      raise NonFiniteState(f"refusing to save checkpoint {step}: the state holds NaN or Inf")
    # Host copies: every process of a multi-host run holds the same replicated values, and
    # orbax writes NumPy arrays once, from process 0.
    leaves = jax.tree_util.tree_leaves(state)
    arrays = {str(i): processes.host_copy(leaf) for i, leaf in enumerate(leaves)}
    meta = dict(meta, format_version=FORMAT_VERSION, leaves=leaf_table(state))
    try:
      with orbax_output.errors_unlogged(), orbax_output.stderr_held(is_write_failure):
        self._manager.save(step, args=ocp.args.Composite(arrays=ocp.args.StandardSave(arrays),
                                                         meta=ocp.args.JsonSave(meta)))
        self._manager.wait_until_finished()
    except Exception as err:  # orbax and tensorstore wrap OS errors in their own types
      if not is_write_failure(err):
        raise
      raise self._write_failed(step, err) from None

  def _write_failed(self, step: int, err: BaseException) -> UserError:
    """Removes what the failed save of `step` left, and says what happened and what to do (the
    run ends here: the writes orbax abandoned are not logged again when the process exits)."""
    for name in ("asyncio", absl_logging.get_absl_logger().name):
      logging.getLogger(name).setLevel(logging.CRITICAL)
    for name in os.listdir(self.directory):
      if name.startswith(f"{step}.orbax-checkpoint-tmp"):
        shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)
    kept = sorted(int(name) for name in os.listdir(self.directory) if name.isdigit())
    earlier = (f"the earlier checkpoints ({', '.join(map(str, kept))}) are untouched"
               if kept else "there is no earlier checkpoint")
    return UserError(
        f"Cannot write checkpoint {step} in {self.directory}: {write_failure_reason(err)}. "
        f"The partial write was removed and {earlier}. Free space on that disk (or pass another "
        f"--workdir) and run the same command: it resumes from "
        f"{'checkpoint ' + str(kept[-1]) if kept else 'the start'}.")

  def _restore(self, step: int, position_problem: PositionCheck = None
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    return _restore_step(self._manager, step, position_problem)

  def restore_latest(self, template: Any, check_meta: Callable[[dict[str, Any]], None],
                     position_problem: PositionCheck = None
                     ) -> tuple[Any, dict[str, Any], int] | None:
    """The newest readable checkpoint as (state, meta, step), or None if there is none.

    `template` is the current run's state or its `jax.eval_shape` (structure, shapes, dtypes);
    `check_meta` raises a UserError when the checkpoint belongs to a different configuration;
    `position_problem` says what keeps a checkpoint's loop position from being the run's (that
    checkpoint is then unreadable)."""
    for step in reversed(self.steps()):
      try:
        arrays, meta = self._restore(step, position_problem)
      except Exception as err:  # any orbax/tensorstore failure: this checkpoint is unreadable
        if ran_out_of_memory(err):  # ... unless memory ran out: that says nothing about it
          raise _memory_ran_out(self.directory, step, err) from None
        aside = os.path.join(self.directory, f"{step}.unreadable")
        if processes.is_primary():
          os.replace(os.path.join(self.directory, str(step)), aside)
        processes.sync(f"checkpoint {step} moved aside")
        self._manager.reload()
        self._say(f"warning: checkpoint {step} could not be read ({type(err).__name__}: "
                  f"{' '.join(str(err).split())[:200]}); moved it to {aside} and trying the "
                  f"previous one.")
        continue
      check_meta(meta)
      _check_leaves(meta, template, step, self.directory,
                    "Resume with the config it was saved with, or use a new --workdir.")
      return _state_from(arrays, template), meta, step
    return None

  def close(self) -> None:
    self._manager.close()


def read_latest(directory: str, template: Any, position_problem: PositionCheck = None,
                passes: int = 10) -> tuple[Any, dict[str, Any], int] | None:
  """The newest readable checkpoint in `directory` as (state, meta, step), read without writing
  anything there (a search still running keeps saving beside the reader), or None if there is
  none; unreadable ones are skipped (`template` as for `Checkpointer.restore_latest`). A running
  search deletes its oldest checkpoint after each save: a reader slower than its saves that found
  all it listed gone (a report under load did) lists new ones, up to `passes` times."""
  if not os.path.isdir(directory):
    return None
  tried: set[int] = set()
  for _ in range(passes):
    manager = _read_only_manager(directory)
    try:
      steps = [s for s in sorted(manager.all_steps(), reverse=True) if s not in tried]
      for step in steps:
        tried.add(step)
        try:
          arrays, meta = _restore_step(manager, step, position_problem)
        except Exception as err:  # a checkpoint being written, deleted or damaged: the next
          if ran_out_of_memory(err):
            raise _memory_ran_out(directory, step, err) from None
          continue
        _check_leaves(meta, template, step, directory,
                      "This version of enas_jax cannot read it from the run's config.json.")
        return _state_from(arrays, template), meta, step
    finally:
      manager.close()
    if not steps:  # nothing new since the last listing
      break
  return None


def _memory_ran_out(directory: str, step: int, err: BaseException) -> UserError:
  """The paragraph for a read of checkpoint `step` that ran out of memory. The checkpoint is
  kept: moved aside as unreadable, a good one would be lost to a lack of memory (and then the
  one before it, and so on)."""
  words = memory_error_words(ran_out_of_memory(err) or err)
  path = os.path.join(directory, str(step))
  return UserError(f"Reading checkpoint {step} in {directory} ran out of memory ({words}); the "
                   f"checkpoint is kept as it is. Free memory (or raise this process's limit, "
                   f"`ulimit -v`, or use a device with more) and run the same command. If it "
                   f"fails so with memory to spare, the checkpoint is damaged: `mv {path} "
                   f"{path}.unreadable` and the run resumes from the one before it.")


def _restore_step(manager: ocp.CheckpointManager, step: int, position_problem: PositionCheck
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
  """Checkpoint `step`'s (arrays, meta); a damaged one raises, its stragglers' tracebacks
  dropped (`orbax_output.stderr_held`): the caller reports it in one line or skips it."""
  with orbax_output.errors_unlogged(), orbax_output.stderr_held(lambda err: True):
    restored = manager.restore(step, args=ocp.args.Composite(
        arrays=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()))
  problem = meta_problem(restored["meta"])
  if problem is None and position_problem is not None:
    problem = position_problem(restored["meta"]["position"])
  if problem:  # valid JSON, but not what a run saves: unreadable as well
    raise ValueError(f"its metadata {problem}")
  return restored["arrays"], restored["meta"]


def meta_problem(meta: Any) -> str | None:
  """What is wrong with a checkpoint's metadata as read (JSON that a run did not write: a
  `{}` or a list was a KeyError or AttributeError traceback on resume), or None: an object
  with the leaf table (a list of rows), the loop position and the config (objects)."""
  if not isinstance(meta, dict):
    return f"is {type(meta).__name__}, not an object"
  for key, kind in (("leaves", list), ("position", dict), ("config", dict)):
    if not isinstance(meta.get(key), kind):
      return f"has no {key} {'list' if kind is list else 'object'}"
  if not all(isinstance(row, list) for row in meta["leaves"]):
    return "has a leaf table whose rows are not lists"
  log, data = meta.get("log"), meta.get("data")  # absent from older checkpoints
  if log is not None and not (isinstance(log, dict) and has_kind(log.get("metrics_bytes"), int)
                              and isinstance(log.get("event_bytes", {}), dict)):
    return "has a log position that is not {metrics_bytes: int, event_bytes: {...}}"
  if data is not None and not isinstance(data, str):
    return "has a data fingerprint that is not text"
  return None


def _read_only_manager(directory: str, attempts: int = 10) -> ocp.CheckpointManager:
  """A read-only orbax manager of `directory`. A running search deletes its oldest checkpoint
  after each save; one that goes between the manager's listing and its look at each step is
  listed again."""
  # every saving option at its read-only value, so orbax has nothing to warn about
  options = ocp.CheckpointManagerOptions(read_only=True, create=False, save_interval_steps=0,
                                         max_to_keep=None, cleanup_tmp_directories=False)
  for _ in range(attempts):
    try:
      with orbax_output.errors_unlogged():  # its notes that a read-only manager will not save
        return ocp.CheckpointManager(os.path.abspath(directory), options=options)
    except FileNotFoundError:
      time.sleep(0.05)
  raise UserError(f"The checkpoints in {directory} changed under every one of {attempts} reads "
                  f"(a run saving and deleting them very fast?). Run the same command again.")


def _check_leaves(meta: Mapping[str, Any], template: Any, step: int, directory: str,
                  advice: str) -> None:
  """A UserError (ending with `advice`) when the checkpoint's leaf table is not `template`'s."""
  saved = [tuple(map(str, row)) for row in meta["leaves"]]
  current = [tuple(map(str, row)) for row in leaf_table(template)]
  if saved != current:
    differ = [f"{s[0]} {s[1]}->{c[1]}" for s, c in zip(saved, current) if s != c][:5]
    raise UserError(
        f"Checkpoint {step} in {directory} holds a state of a different shape than this run "
        f"builds ({len(saved)} against {len(current)} arrays; first differences: "
        f"{'; '.join(differ) or 'array count'}). {advice}")


def _state_from(arrays: Mapping[str, Any], template: Any) -> Any:
  """The restored flat {"0": leaf, ...} as `template`'s tree, through host memory: uncommitted
  arrays like a fresh run's, so no step recompiles."""
  leaves = [jnp.asarray(np.asarray(arrays[str(i)]), dtype=t.dtype)
            for i, t in enumerate(jax.tree_util.tree_leaves(template))]
  return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template), leaves)
