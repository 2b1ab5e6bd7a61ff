"""What every run (a search, a final training) does around its loop, written once: the workdir,
the messages, the metrics log, checkpoints and resume.

Building a run touches no file: its `execute` prepares the workdir (so the search report can
build a run's state template to read a running search's checkpoints without writing there).

A run opens its checkpointer only when first needed, after its data and architecture have been
checked: a user's mistake found there must not leave orbax's background threads behind.

In a multi-host run every process runs the same loop and saves checkpoints together (orbax writes
each array once into the shared workdir); only process 0 (`primary`) writes the other files:
config.json, metrics.jsonl, TensorBoard events, architecture files, pictures and summary.json.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import signal
from typing import Any, Iterator, TextIO

import jax

from enas_jax.io import checkpoints as ckpt_lib
from enas_jax.io import errors as errors_lib
from enas_jax.io import events as events_lib
from enas_jax.io import memory as memory_lib
from enas_jax.io import metrics as metrics_lib
from enas_jax.io import processes
from enas_jax.io import workdir as workdir_lib
from enas_jax.io.errors import Stopped, UserError
from enas_jax.io.memory import size_in_words
from enas_jax.io.signals import StopSignals
from enas_jax.run import outputs
from enas_jax.run.parallel import PER_PROCESS_FIELDS
from enas_jax.run.state import RunState
from enas_jax.spaces.base import Arch, SearchSpace


# What to do about a model too large for the memory (its batch not in question).
MODEL_SIZE_ADVICE = ("Lower the model's sizes in the config (the `model.*` widths and node or "
                     "layer counts), or run it where more memory is free.")


class Diverged(UserError):
  """The loss became NaN/Inf and the policy says stop."""


def software() -> dict[str, str]:
  """What a run's figures depend on besides the config and the data: JAX and the device."""
  return {"jax": jax.__version__, "device": jax.devices()[0].device_kind}


def describe(versions: Any) -> str:
  """`software()`'s figures (or what a checkpoint kept of them) in words."""
  return f"jax {versions.get('jax')} on {versions.get('device')}" if isinstance(
      versions, dict) else repr(versions)


class Runner:
  """The workdir, log, checkpointer and messages of one run of config `cfg`.

  `resumable_changes`: dotted config-field prefixes that may differ when a run is resumed
  (schedules, bookkeeping); any other difference means the checkpoint is another experiment's.
  `what`: "search" or "training", for messages.
  """

  # the files the run writes at the top of its workdir (none may be a folder there)
  OUTPUT_FILES = ("config.json", "metrics.jsonl", "summary.json")
  task: Any  # the subclass's SearchTask or FinalTask (tasks/base.py)

  def __init__(self, cfg: Any, workdir: str, out: TextIO, progress: metrics_lib.Progress,
               resumable_changes: tuple[str, ...], what: str):
    self.cfg, self.workdir, self.out, self.progress = cfg, workdir, out, progress
    self.resumable_changes, self.what = resumable_changes, what
    self.primary = processes.is_primary()  # the process that writes files
    self._checkpointer: ckpt_lib.Checkpointer | None = None
    self.log: metrics_lib.MetricsLog | metrics_lib.SilentLog | None = None
    self.stop_signals = StopSignals()  # entered by the subclass's `execute`
    self._identity: tuple[int, int] | None = None  # the workdir's, while the run holds it
    self._calls_checked: set[str] = set()  # the programs whose first call's memory was checked

  @contextlib.contextmanager
  def workdir_held(self) -> Iterator[None]:
    """Creates the workdir, checks it can be written, and holds its lock (`io.workdir.Lock`,
    process 0's) while the run is in it: a UserError, before anything is written, when another
    run holds it (every process of a multi-host run stops together). A failure inside whose
    cause is outside the program (`_explain`) becomes a UserError."""
    workdir_lib.prepare(self.workdir, self.OUTPUT_FILES + (workdir_lib.Lock.FILE,))
    lock = workdir_lib.Lock(self.workdir) if self.primary else None
    holder = lock.acquire() if lock else None
    if processes.agree_max(int(holder is not None)):
      raise UserError(
          f"The workdir {self.workdir} is in use by another run ({holder or 'see process 0'}; "
          f"{workdir_lib.Lock.FILE} there). Two runs in one workdir would interleave their "
          f"checkpoints and logs. Wait for that run to end (SIGTERM stops it at a checkpoint; "
          f"the same command resumes it), or pass another --workdir.")
    if lock:
      self._remove_leftovers()
    self._identity = workdir_lib.identity(self.workdir)
    try:
      yield
    except Exception as err:
      if not isinstance(err, UserError):
        self._explain(err)
      raise
    finally:
      if lock:
        lock.release()

  def _remove_leftovers(self) -> None:
    """The temporary files a killed run left (`io.workdir.remove_leftover_temporaries`)."""
    left = workdir_lib.remove_leftover_temporaries(self.workdir, self.OUTPUT_FILES)
    if left:
      names = ", ".join(os.path.basename(p) for p in left[:3]) + ", ..." * (len(left) > 3)
      self.say(f"note: removed {len(left)} temporary file(s) that a killed run left ({names})")

  def _explain(self, err: Exception) -> None:
    """A UserError for a failure whose cause is outside the program: the workdir removed under
    the run (whatever failed, that is why), or memory run out (the device's or this process's)."""
    self.check_workdir(f"{type(err).__name__}: {' '.join(str(err).split())[:200]}")
    if isinstance(err, MemoryError):
      whose, advice = "this process's", errors_lib.PROCESS_MEMORY_ADVICE
    elif errors_lib.out_of_device_memory(err):
      whose, advice = jax.default_backend().upper(), errors_lib.OUT_OF_MEMORY_ADVICE
    else:
      return
    raise UserError(
        f"The {self.what} ran out of {whose} memory ({errors_lib.memory_error_words(err)}). "
        f"{advice} The checkpoints saved so far are kept in "
        f"{self.checkpointer.directory}.") from None

  @property
  def checkpointer(self) -> ckpt_lib.Checkpointer:
    if self._checkpointer is None:
      self._checkpointer = ckpt_lib.Checkpointer(os.path.join(self.workdir, "checkpoints"),
                                                 self.cfg.checkpoint.keep, self.say)
    return self._checkpointer

  def say(self, text: str) -> None:
    self.progress.clear()
    self.out.write(text + "\n")
    self.out.flush()

  def check_workdir(self, failure: str = "") -> None:
    """A UserError when the workdir was removed (or replaced, or emptied: the log deleted) since
    the run took it: its checkpoints and log are gone, and writing on would leave a workdir
    without them."""
    if self._identity is None or (workdir_lib.identity(self.workdir) == self._identity
                                  and not (self.log and self.log.removed())):
      return
    raise UserError(f"The workdir {self.workdir} (or its metrics.jsonl) was removed while the "
                    f"{self.what} was using it"
                    f"{f' ({failure})' if failure else ''}. Its checkpoints and log went with "
                    f"it: run the same command to start again, with the workdir somewhere it is "
                    f"kept.")

  def save(self, state: RunState, must_be_finite: Any) -> None:
    """Checkpoint `state.save_index`; NaN/Inf in `must_be_finite` stops the run unsaved."""
    self.check_workdir()
    meta = {"position": state.position(), "log": self.log.position(),
            "config": dataclasses.asdict(self.cfg), "data": self.data_fingerprint,
            "software": software()}
    try:
      self.checkpointer.save(state.save_index, state.arrays(), meta,
                             must_be_finite=must_be_finite)
    except ckpt_lib.NonFiniteState as err:  # NaN/Inf in the state: never saved
      raise Diverged(f"Not saving a checkpoint: {err}. The run stops; it resumes from the last "
                     f"good checkpoint in {self.checkpointer.directory}.") from None

  def check_stop(self, state: RunState, where: str = "") -> None:
    """After a stop signal (`io.signals.STOP_SIGNALS`): saves `state` (a step boundary) unless
    just saved, closes the log and raises `Stopped` (exit 128 + the signal's number). `where`:
    the message's words for where it stopped (default: the epoch and step)."""
    signum = processes.agree_max(self.stop_signals.received or 0)  # every process stops together
    if not signum:
      return
    if state.save_index not in self.checkpointer.steps():
      self.save(state)  # the subclass's save: what must be finite
    self.log.close()
    self.checkpointer.close()
    where = where or f"at epoch {state.epoch + 1}, step {state.steps}"
    raise Stopped(f"stopped by {signal.Signals(signum).name} {where}; checkpoint "
                  f"{state.save_index} saved in {self.checkpointer.directory}; run the same "
                  f"command to resume.", 128 + signum)

  @functools.cached_property
  def data_fingerprint(self) -> str:
    """The hash of the data the subclass's task trains and scores on, computed once."""
    return self.task.data_fingerprint()

  def check_same_data(self, meta: dict[str, Any], harm: str) -> None:
    """A UserError, saying `harm`, when a checkpoint's metadata `meta` was saved on other data
    than this run reads (none kept in a checkpoint written before the fingerprint was)."""
    saved = meta.get("data")
    if saved is not None and saved != self.data_fingerprint:
      raise UserError(
          f"The data this {self.what} reads differs from the data its checkpoints in "
          f"{os.path.join(self.workdir, 'checkpoints')} were trained on (fingerprint "
          f"{saved[:12]}, now {self.data_fingerprint[:12]}): the files the config's `data` "
          f"section names changed since, or a generated corpus came out otherwise on other "
          f"software or another device. {harm}. Put the data it was saved with back (or run "
          f"where it was made), or use a new --workdir.")

  def _check_saved_config(self, meta: dict[str, Any]) -> None:
    moved = self.task.data_location if meta.get("data") else ()  # content: by fingerprint
    diffs = ckpt_lib.check_resumable(meta["config"], self.cfg, self.resumable_changes + moved,
                                     self.workdir, self.what)
    diffs = [d for d in diffs if not d.startswith(PER_PROCESS_FIELDS)]
    if diffs:
      self.say(f"note: resuming with changed fields: {'; '.join(diffs)}")
    self.check_same_data(meta, "A resumed run would mix the two")
    now = software()
    if meta.get("software", now) != now:
      self.say(f"note: the checkpoint was saved under {describe(meta['software'])}; this run "
               f"uses {describe(now)}: it goes on, but need not round as the saved run would "
               f"have (a resume is bit-exact under the same software and device)")

  def fresh_state(self, compiled: bool = True) -> RunState:
    """A new state (the subclass's); `compiled=False` when only its shapes will be used."""
    raise NotImplementedError

  def state_shapes(self) -> dict[str, Any]:
    """A fresh state's arrays as shapes, a checkpoint's template: traced, nothing computed or
    compiled."""
    return jax.eval_shape(lambda: self.fresh_state(compiled=False).arrays())

  def restore(self, state_class: type[RunState]
              ) -> tuple[RunState, int, dict[str, Any]] | None:
    """(state, checkpoint step, the log's position then) of the newest readable checkpoint, or
    None."""
    shapes = self.state_shapes()
    self.check_memory(shapes)
    found = self.checkpointer.restore_latest(shapes, self._check_saved_config,
                                             state_class.position_problem)
    if found is None:
      return None
    arrays, meta, step = found
    log = meta.get("log") or {"metrics_bytes": meta.get("metrics_bytes", 0)}  # older checkpoints
    return state_class.from_saved(arrays, meta["position"]), step, log

  def copies(self) -> int:
    """How many replicas of the state this process's memory holds: one per local device with
    data parallelism on a CPU (each simulated device's in host memory), else one."""
    return (jax.local_device_count() if jax.default_backend() == "cpu" and getattr(
        getattr(self.cfg, "parallel", None), "data_parallel", False) else 1)

  def check_memory(self, shapes: Any) -> None:
    """A UserError, before the state is made or restored, when the state alone (`shapes`) cannot
    fit in the memory this process may still take (host memory on a CPU, one device's on an
    accelerator; every process of a multi-host run stops together); a note when it fits without
    room for a step's gradients as well."""
    room, copies = memory_lib.headroom(), self.copies()
    need = copies * sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(shapes))
    on_each = f", on each of {copies} devices" if copies > 1 else ""
    short = room is not None and need > room.free_bytes
    if processes.agree_max(int(short)):
      raise UserError(
          f"The {self.what}'s state alone (weights and optimizer states{on_each}) takes "
          f"{size_in_words(need)}, more than {self._where(room, short)}, so it cannot run here. "
          f"{MODEL_SIZE_ADVICE} No checkpoint or log in "
          f"{self.workdir} was changed.")
    if room is not None and 2 * need > room.free_bytes:
      self.say(f"note: the {self.what}'s state takes {size_in_words(need)} and this process may "
               f"still use {size_in_words(room.free_bytes)} ({room.bound}); a step needs room "
               f"for the gradients too (up to the weights again), so it may run out of memory")

  def check_call_memory(self, program: Any, args: tuple[Any, ...], what: str) -> None:
    """At `program`'s first call here (`what` names it: "shared step"): compiles it for `args`
    (the call then reuses the executable) and checks its memory (`check_compiled`). Without
    this a CPU run whose state fitted went on to the kernel's OOM killer, or a C++ abort and a
    thread dump. A program that is not a jitted function (no `lower`: a test's wrapper) is
    not checked."""
    if what in self._calls_checked or not hasattr(program, "lower"):
      return
    self._calls_checked.add(what)
    self.check_compiled(program.lower(*args).compile(),
                        f"One {what} of the {self.what} needs {{size}} of working memory "
                        f"besides the state it updates (activations, gradients and "
                        f"temporaries, by XLA's count)")

  def check_init_memory(self, program: Any) -> None:
    """`check_compiled` for the compiled initialiser of a fresh state's weights."""
    self.check_compiled(program, f"Making the {self.what}'s fresh weights needs {{size}} (the "
                                 f"weights and the initialiser's scratch, by XLA's count)",
                        per_device=False, advice=MODEL_SIZE_ADVICE)  # made once, then placed

  def check_compiled(self, program: Any, needs: str, per_device: bool = True,
                     advice: str = errors_lib.OUT_OF_MEMORY_ADVICE) -> None:
    """A UserError, every process together, when one call of the compiled `program` takes more
    memory than this process may still take: `memory.call_bytes` (XLA's buffer assignment; the
    arguments are in memory already) against `memory.headroom()`; a note when less than a
    quarter would be left (threads' stacks and allocator arenas take memory too, and under
    `ulimit -v` a step of 5.84 GiB failed with 6.32 GiB left). `needs`: the refusal's first
    sentence, `{size}` standing for the figure. `per_device`: each of `copies()` replicas runs
    the program (a data-parallel step)."""
    need, room = memory_lib.call_bytes(program), memory_lib.headroom()
    need = None if need is None else (self.copies() if per_device else 1) * need
    short = need is not None and room is not None and need > room.free_bytes
    sentence = needs.format(size=size_in_words(need) if need is not None else "an amount")
    if processes.agree_max(int(short)):
      raise UserError(
          f"{sentence}, more than {self._where(room, short)}, so it cannot run here. "
          f"{advice} No checkpoint in {self.workdir} was changed.")
    if need is not None and room is not None and 4 * need > 3 * room.free_bytes:
      self.say(f"note: {sentence[0].lower()}{sentence[1:]} and this process may still use "
               f"{size_in_words(room.free_bytes)} ({room.bound}): less than a quarter to spare, "
               f"so it may run out of memory")

  @staticmethod
  def _where(room: memory_lib.Headroom | None, short: bool) -> str:
    """What a refusal says bounds the memory: this process's headroom, or another's."""
    if short and room is not None:
      return f"this process may still use ({size_in_words(room.free_bytes)}: {room.bound})"
    return "another process of this multi-host run may use (its message says)"

  def open_log(self, resumed: dict[str, Any] | None) -> None:
    """Opens metrics.jsonl and a new events file, after cutting the log back to where the
    checkpoint being resumed had seen it (`resumed`: its `log.position()`), or emptying it (a
    fresh start, None)."""
    if not self.primary:
      self.log = metrics_lib.SilentLog()
      return
    resumed = resumed or {"metrics_bytes": 0, "event_bytes": {}}
    path, size = os.path.join(self.workdir, "metrics.jsonl"), resumed["metrics_bytes"]
    kept = workdir_lib.cut_log(path, size)
    if kept < size:
      self.say(f"warning: {path} holds {kept:,} whole bytes of the {size:,} this checkpoint had "
               f"written (lost in a crash, or cut): the records after byte {kept:,} up to the "
               f"checkpoint are missing from it; the run appends after them.")
    if "event_bytes" in resumed:  # checkpoints before this record: the events are kept
      events_lib.cut_back(os.path.join(self.workdir, "tb"), resumed["event_bytes"])
    self.log = metrics_lib.MetricsLog(self.workdir)

  def write_config(self) -> None:
    if self.primary:
      workdir_lib.write_json(os.path.join(self.workdir, "config.json"),
                             dataclasses.asdict(self.cfg))

  def write_arch(self, space: SearchSpace, name: str, arch: Arch, extra: dict[str, Any],
                 title: str) -> dict[str, str]:
    """`outputs.write_arch` at `<workdir>/<name>` on process 0; {} (no picture) elsewhere."""
    if not self.primary:
      return {}
    return outputs.write_arch(space, os.path.join(self.workdir, name), arch, extra, title,
                              self.say, self.cfg.model)

  def close(self, summary: dict[str, Any]) -> None:
    """Writes summary.json, closes the log and the checkpointer."""
    if self.primary:
      workdir_lib.write_json(os.path.join(self.workdir, "summary.json"), summary)
    self.log.close()
    self.checkpointer.close()
