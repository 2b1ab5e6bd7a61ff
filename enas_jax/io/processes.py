"""Which process of a multi-host run writes files, the few host-side agreements between
processes, and how a failure on one process ends them all. On one host (every single-process run)
these are trivial: process 0 writes, a value agreed on is the value itself, and a failure ends the
one process as any program ends."""
from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from typing import Any, NoReturn

import jax
import numpy as np
from jax.experimental import multihost_utils

from enas_jax.io.errors import UserError, paragraph


def check_backend() -> None:
  """A UserError naming JAX_PLATFORMS and the fix when JAX cannot start the backend it is asked
  for (`JAX_PLATFORMS=cuda` where JAX's CUDA build is not installed or sees no GPU: an
  AssertionError or RuntimeError traceback inside JAX at the first array). After
  `parallel.start_processes` in a multi-host run."""
  try:
    jax.devices()
  except (RuntimeError, AssertionError) as err:
    asked = os.environ.get("JAX_PLATFORMS", "")
    why = " ".join(str(err).split())[:300] or f"no installed backend is one of {asked!r}"
    raise UserError(
        f"JAX cannot start its backend (JAX_PLATFORMS={asked!r}): {why}. For a GPU, install "
        f"JAX's CUDA build in this environment (pip install -U \"jax[cuda12]\") and check that "
        f"nvidia-smi lists the GPU; to run on the CPU, set JAX_PLATFORMS=cpu or unset it."
    ) from None


def is_primary() -> bool:
  """Whether this process writes the run's files (process 0; the only one on one host)."""
  return jax.process_index() == 0


def gather(value: int) -> list[int]:
  """Every process's `value`, in process order (`[value]` on one host)."""
  if jax.process_count() == 1:
    return [value]
  return [int(v) for v in multihost_utils.process_allgather(np.int64(value))]


def agree_max(value: int) -> int:
  """The largest of every process's `value` (`value` itself on one host): a host-side decision
  all processes must take together, such as stopping after a signal only some received."""
  return max(gather(value))


def sync(name: str) -> None:
  """Waits until every process reaches this point (no-op on one host)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


def host_copy(x: Any) -> np.ndarray:
  """`x`'s whole value as a NumPy array on this host, also for an array spread over several
  processes' devices (every process must call this for the same arrays, in the same order)."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    if x.is_fully_replicated:
      return np.asarray(x.addressable_data(0))
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(x)


# A failure on one process of a multi-host run (a user error such as its own copy of the data
# missing, a full disk on the process that writes, a traceback) would leave the others waiting in
# their next collective for ever, and the failed process itself in JAX's shutdown barrier, which
# waits for them. So the failed process posts its failure in the coordination service's key-value
# store and leaves at once; a thread in every process (`watch_peers`) reads it and ends that
# process too, with one paragraph naming the process that failed and why.
_FAILED_KEY = "enas_jax/failed"  # "<process id>\n<exit status>\n<message>" of the first failure
_LEFT_PREFIX = "enas_jax/left/"  # + process id: set by each process as it leaves after a failure
_DONE_PREFIX = "enas_jax/done/"  # + process id: set by each process that ends its run normally
_POLL_MS = 250  # how long the watcher waits for a failure at a time (so how long exits wait)
_GRACE_S = 5.0  # how long a process whose peer failed waits to fail by itself (the same mistake)
_WAIT_FOR_PEERS_S = 10.0  # how long process 0, which hosts the service, waits for the others
_leaving = threading.Event()  # set when this process leaves, after a failure or at its end
_stderr_fd = 2  # where the paragraph of a peer's failure goes (`watch_peers`)


def _joined() -> Any:
  """JAX's record of the joined multi-host run (JAX internal: its client, this process's id and
  the process count), or None on one host. Never starts a backend (a failure to start one is
  reported through here)."""
  from jax._src import distributed  # pylint: disable=import-outside-toplevel
  state = distributed.global_state
  return state if state.client is not None and state.num_processes > 1 else None


def shared_run() -> bool:
  """Whether this process is one of a joined multi-host run's."""
  return _joined() is not None


def watch_peers() -> None:
  """In a multi-host run, after joining it: a daemon thread that ends this process (one
  paragraph, the failed process's exit status) when another process posts a failure
  (`leave_after_failure`), unless this one fails by itself within a few seconds."""
  global _stderr_fd  # pylint: disable=global-statement
  joined = _joined()
  if joined is not None:
    _stderr_fd = os.dup(2)  # the stream the command started with: a checkpoint's save holds fd 2
    watcher = threading.Thread(target=_watch, args=(joined,), daemon=True, name="peer-failures")
    watcher.start()
    atexit.register(_stop_watching, watcher)  # runs before JAX's shutdown (registered earlier)


def _stop_watching(watcher: threading.Thread) -> None:
  """At a normal exit: this process is marked finished (a process failing after it then meets
  it in JAX's shutdown barrier), and the watcher ends before the interpreter does (a daemon
  thread coming back from JAX's C++ call during finalisation would abort the process)."""
  joined = _joined()
  try:
    joined.client.key_value_set(f"{_DONE_PREFIX}{joined.process_id}", "1", allow_overwrite=True)
  except Exception:  # pylint: disable=broad-except  # the service is gone
    pass
  _leaving.set()
  watcher.join(timeout=5.0)


def _watch(joined: Any) -> None:
  while not _leaving.is_set():
    asked = time.monotonic()
    try:
      posted = joined.client.blocking_key_value_get(_FAILED_KEY, _POLL_MS)
    except Exception:  # pylint: disable=broad-except  # nothing posted yet, or no service
      _leaving.wait(max(0.0, _POLL_MS / 1000 - (time.monotonic() - asked)))  # never a busy loop
      continue
    if _leaving.wait(_GRACE_S) or _another_finished(joined):  # this process failed too and
      return  # leaves by its own path, or it is past the collectives: it finishes as usual
    _leaving.set()
    failed, code, message = _parse(posted)
    _write(f"error: {_peer_failed(joined, failed, message)}")
    _leave(joined, code)


def _parse(posted: str) -> tuple[str, int, str]:
  failed, _, rest = posted.partition("\n")
  code, _, message = rest.partition("\n")
  return failed, int(code) if code.isdigit() else 1, message


def _peer_failed(joined: Any, failed: str, message: str) -> str:
  return (f"process {failed} of this multi-host run failed: {message} This process (process "
          f"{joined.process_id}) stops too; what was saved before is kept. See process "
          f"{failed}'s own output, then start the same commands again: they resume from the "
          f"newest checkpoint.")


def peer_failure() -> tuple[str, int] | None:
  """The failure another process of this multi-host run posted, as this process's paragraph,
  and that process's exit status; None when none did (always on one host)."""
  joined = _joined()
  if joined is None:
    return None
  try:
    failed, code, message = _parse(joined.client.key_value_try_get(_FAILED_KEY))
  except Exception:  # pylint: disable=broad-except  # none posted
    return None
  if failed == str(joined.process_id):
    return None
  return _peer_failed(joined, failed, message), code


# How a collective reports that a peer process went away (Gloo, on CPU hosts, as seen when a
# peer is killed; GPU collectives' words for it are not known here, so they keep the traceback).
_LOST_PEER = ("Connection closed by peer", "Connection reset by peer")


def lost_peer(err: BaseException) -> str | None:
  """The paragraph for `err` when it is a collective of this multi-host run that lost a peer
  (killed, out of memory, its host down: it could post no failure of its own), else None."""
  joined = _joined()
  text = " ".join(str(err).split())
  if joined is None or not any(words in text for words in _LOST_PEER):
    return None
  return (f"process {joined.process_id} lost its connection to another process of this "
          f"multi-host run ({text[:200]}): that process was killed, ran out of memory, or its "
          f"host went down; its own output or the cluster's log says which. This process stops "
          f"too; what was saved before is kept. Start the same commands again on every host: "
          f"they resume from the newest checkpoint.")


def leave_after_failure(code: int, message: str) -> None:
  """In a multi-host run: posts this process's failure (`message`, its exit status `code`) for
  the others and ends this process at once (standard streams flushed), skipping JAX's shutdown
  barrier, where the others would wait for it. Returns (the caller exits as usual) on one host,
  and when another process has already finished its run (`_another_finished`): the others are
  past the run's collectives and wait, or will, in that barrier, so this one meets them there."""
  joined = _joined()
  if joined is None:
    return
  _leaving.set()
  try:
    joined.client.key_value_set(_FAILED_KEY, f"{joined.process_id}\n{code}\n{message}")
  except Exception:  # pylint: disable=broad-except  # another process posted first
    pass
  if not _another_finished(joined):
    _leave(joined, code)


def _others(joined: Any, prefix: str) -> set[str]:
  """The other processes' ids under `prefix` in the key-value store."""
  return {key.rpartition("/")[2] for key, _ in joined.client.key_value_dir_get(prefix)} - {
      str(joined.process_id)}


def _another_finished(joined: Any) -> bool:
  """Whether another process has finished its run. A process finishes only after the run's
  last collective, which every process took part in, so then none waits for another in a
  collective: each finishes its own work and they all meet in JAX's shutdown barrier (a process
  leaving without it would leave those already there waiting, then aborting)."""
  try:
    return bool(_others(joined, _DONE_PREFIX))
  except Exception:  # pylint: disable=broad-except  # the service is gone
    return False


def _leave(joined: Any, code: int) -> NoReturn:
  """Marks this process as gone and exits with `code`. Process 0 hosts the coordination
  service, so it goes last: the others would otherwise see the service vanish and abort with
  XLA's fatal log before their own paragraph."""
  try:
    joined.client.key_value_set(f"{_LEFT_PREFIX}{joined.process_id}", "1", allow_overwrite=True)
    deadline = time.monotonic() + _WAIT_FOR_PEERS_S
    while (joined.process_id == 0 and time.monotonic() < deadline
           and len(_others(joined, _LEFT_PREFIX) | _others(joined, _DONE_PREFIX))
           < joined.num_processes - 1):
      time.sleep(0.05)
  except Exception:  # pylint: disable=broad-except  # the service is gone: leave all the same
    pass
  for stream in (sys.stdout, sys.stderr):
    try:
      stream.flush()
    except (OSError, ValueError):
      pass
  os._exit(code)  # pylint: disable=protected-access  # not SystemExit: no shutdown barrier


def _write(text: str) -> None:
  try:
    os.write(_stderr_fd, (paragraph(text) + "\n").encode())
  except OSError:
    pass
