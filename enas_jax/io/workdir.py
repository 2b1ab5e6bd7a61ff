"""The run directory: created and probed for writing up front, JSON files, and the metrics file
cut back to what the checkpoint being resumed had seen."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import json
import math
import os
import re
import socket
import stat
import time
from typing import Any, Iterator

from enas_jax.io.configuration import has_kind
from enas_jax.io.errors import UserError


# The folders the commands keep in a workdir, in words.
FOLDERS = {"checkpoints": "checkpoints", "archs": "per-epoch architectures",
           "tb": "TensorBoard events", "report": "search report"}
RUN_FOLDERS = ("checkpoints", "archs", "tb")  # what a search or a final training writes


def check_folders(workdir: str, names: tuple[str, ...]) -> None:
  """A UserError when one of `names` (keys of `FOLDERS`) in `workdir` is there and is not a
  folder: a file of that name would make the run's first write there fail with a traceback."""
  for name in names:
    path = os.path.join(workdir, name)
    if os.path.lexists(path) and not os.path.isdir(path):
      raise UserError(f"{path} is a file, but the commands keep the {FOLDERS[name]} in a folder "
                      f"of that name there. Move or delete that file (none of the commands "
                      f"writes it), then run the same command.")


def check_files(workdir: str, names: tuple[str, ...]) -> None:
  """A UserError when one of `names`, files a run writes in `workdir`, is a folder there: the
  write would fail with a traceback, perhaps hours later (summary.json at the end)."""
  for name in names:
    path = os.path.join(workdir, name)
    if os.path.isdir(path):
      raise UserError(f"{path} is a folder, but the run writes a file of that name there. Move "
                      f"or rename that folder (the run writes nothing in it), then run the same "
                      f"command.")


def prepare(workdir: str, files: tuple[str, ...] = ()) -> None:
  """Creates `workdir` and checks it can be written, that what should be a folder in it is one
  (`RUN_FOLDERS`) and that none of `files` is a folder, or raises a UserError naming it. The
  filesystem's root is refused: `--workdir=$DIR/` with DIR unset names it, and as root a run
  wrote its files and folders there."""
  if os.path.realpath(workdir) == os.path.realpath(os.sep):
    raise UserError(f"The workdir {workdir!r} is the filesystem's root: a run writes config.json, "
                    f"metrics.jsonl, checkpoints/ and more at the top of its workdir. Pass a "
                    f"folder of the run's own with --workdir=DIR (a variable left unset in "
                    f"--workdir=$DIR/ names the root).")
  too_long = path_too_long(workdir)
  if too_long:
    raise UserError(f"The workdir {shortened(workdir)!r} cannot be made: {too_long}. Pass a "
                    f"shorter path with --workdir=DIR.")
  try:
    make_folders(workdir)
    probe = os.path.join(workdir, f".write_test.{socket.gethostname()}.{os.getpid()}")
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as err:
    raise UserError(f"The workdir {workdir!r} cannot be written ({err.strerror}). Pass a "
                    f"writable directory with --workdir=DIR.") from None
  check_folders(workdir, RUN_FOLDERS)
  check_files(workdir, files)


def path_too_long(path: str) -> str | None:
  """Why `path` is longer than its filesystem allows (asked of its nearest existing folder), in
  words, or None: a name in it over NAME_MAX bytes, or the whole over PATH_MAX. Checked before
  making folders, which would otherwise make the first thousands of bytes' worth and fail."""
  existing = os.path.abspath(path)
  while not os.path.isdir(existing) and os.path.dirname(existing) != existing:
    existing = os.path.dirname(existing)
  try:
    name_max, path_max = (os.pathconf(existing, f"PC_{n}_MAX") for n in ("NAME", "PATH"))
  except (OSError, ValueError):  # not known there
    return None
  full = os.fsencode(os.path.abspath(path))
  longest = max(len(name) for name in full.split(b"/"))
  if longest > name_max:
    return f"a name in it is {longest} bytes long, and the filesystem allows {name_max}"
  if len(full) >= path_max:
    return f"it is {len(full)} bytes long, and the system allows fewer than {path_max}"
  return None


def shortened(path: str) -> str:
  """`path` for a message: whole up to 200 characters, else its start and end."""
  return path if len(path) <= 200 else f"{path[:100]}...{path[-40:]}"


def make_folders(path: str) -> None:
  """`os.makedirs(path, exist_ok=True)` without its recursion: a path with more missing folders
  than Python's recursion limit (about 1,000: `--workdir=a/a/a/...`) raised RecursionError, a
  traceback, instead of making them or failing with the OSError that its callers explain."""
  missing, folder = [], os.path.abspath(path)
  while not os.path.exists(folder) and os.path.dirname(folder) != folder:
    missing.append(folder)
    folder = os.path.dirname(folder)
  for folder in reversed(missing):
    try:
      os.mkdir(folder)
    except FileExistsError:  # made meanwhile (fine), or a file in the way (as makedirs raises)
      if not os.path.isdir(folder):
        raise
  if not missing and not os.path.isdir(path):  # the path itself a file, as makedirs raises
    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)


def output_folder(path: str, flag: str = "--out") -> str:
  """`path`, a command's output folder given by `flag`, made if missing (`make_folders`); a
  file in its way is a UserError naming the flag (it was a FileExistsError or
  NotADirectoryError traceback)."""
  try:
    make_folders(path)
  except (FileExistsError, NotADirectoryError):
    raise UserError(f"{flag}={path}: that path, or a folder on its way, is a file. Give a folder "
                    f"path (it is made if missing).") from None
  return path


def identity(path: str) -> tuple[int, int] | None:
  """(device, inode) of `path`, None when it is gone: a folder removed and made again (as
  orbax makes a checkpoint's parents) has another."""
  try:
    info = os.stat(path)
  except OSError:
    return None
  return info.st_dev, info.st_ino


class Lock:
  """An exclusive `flock` on `<workdir>/.lock` while a run writes there, so that a second run
  started in the same workdir (a job requeued while the first still runs) is refused instead of
  interleaving its checkpoints and logs with the first's. The operating system releases it when
  the process ends, however it ends (a SIGKILL included), so a stale lock cannot block a resume.
  The file keeps the words of the last process that held it."""

  FILE = ".lock"

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, self.FILE)
    self._fd: int | None = None

  def acquire(self) -> str | None:
    """Takes the lock: None when taken (or when the filesystem has no locks, where nothing can
    be checked), else the holder's words ("process 123 on host h, since ...")."""
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
      if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):  # ENOLCK, EOPNOTSUPP: no locks
        os.close(fd)
        return None
      holder = os.pread(fd, 500, 0).decode("utf-8", "replace").strip()
      os.close(fd)
      return holder or "another process"
    self._fd = fd
    with contextlib.suppress(OSError):  # held either way; a full disk shows at the next write
      os.ftruncate(fd, 0)
      os.pwrite(fd, (f"process {os.getpid()} on host {socket.gethostname()}, since "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n").encode(), 0)
    return None

  def release(self) -> None:
    if self._fd is not None:
      os.close(self._fd)  # closing the file releases the lock
      self._fd = None


def jsonable(value: Any) -> Any:
  """`value` with each float that is not finite as its text ("nan", "inf", "-inf"): JSON has no
  such numbers, and strict readers reject the `NaN` Python's json would write."""
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)
  if isinstance(value, dict):
    return {k: jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [jsonable(v) for v in value]
  return value


def from_jsonable(value: Any) -> Any:
  """A value as `jsonable` wrote it: "nan", "inf" and "-inf" back to floats, the rest as is."""
  return _NON_FINITE.get(value, value) if isinstance(value, str) else value


_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def as_number(value: Any) -> float | None:
  """A figure read back from a file that `jsonable` wrote, as a float: a JSON number (not a
  bool) or the text of a non-finite one; None for anything else (missing, or damaged)."""
  value = from_jsonable(value)
  return float(value) if has_kind(value, (int, float)) else None


@contextlib.contextmanager
def naming(path: str) -> Iterator[None]:
  """An OSError raised inside without a file name (a failed `write()` or `flush()` on an open
  file has none) is raised again naming `path`, so that its paragraph says which file."""
  try:
    yield
  except OSError as err:
    if err.filename:
      raise
    raise OSError(err.errno, err.strerror, path) from None


def write_json(path: str, data: Any) -> None:
  """`data` (`jsonable`) as indented JSON, written atomically."""
  write_atomically(path, json.dumps(jsonable(data), indent=2, allow_nan=False))


def write_atomically(path: str, data: str | bytes) -> None:
  """Writes `data` (text as UTF-8) to `path` through a temporary file beside it and a rename: a
  write that fails (a full disk, a file-size limit) leaves an earlier `path` as it was, never cut
  short, and removes the temporary file. Its OSError names `path`. A `path` that is a symbolic
  link has its target rewritten (the link stays), and an earlier file's permissions are kept."""
  path = os.path.realpath(path) if os.path.islink(path) else path
  if os.path.isdir(path):  # the rename would fail (IsADirectoryError) after the whole write
    raise UserError(f"{path} is a folder, but this command writes a file of that name. Move or "
                    f"rename that folder, then run the same command; nothing saved before is "
                    f"lost.")
  temp = f"{path}.tmp{os.getpid()}"
  try:
    with open(temp, "wb") as f:
      f.write(data.encode("utf-8") if isinstance(data, str) else data)
    if os.path.exists(path):
      os.chmod(temp, stat.S_IMODE(os.stat(path).st_mode))
    os.replace(temp, path)
  except BaseException as err:  # a failed write, or a signal's exception (Ctrl-C, SIGTERM)
    with contextlib.suppress(OSError):
      os.remove(temp)
    if isinstance(err, OSError):
      raise OSError(err.errno, err.strerror, path) from None
    raise


def remove_leftover_temporaries(workdir: str, names: tuple[str, ...]) -> list[str]:
  """Removes the temporary files (`NAME.tmpPID`, see `write_atomically`) that a killed run (a
  SIGKILL, a host crash) left beside `names` at the top of `workdir` and in its `archs`
  folder; returns their paths. Only for the run that holds the workdir's `Lock`: no other
  process writes those files then, so every such file is a leftover."""
  patterns = [os.path.join(glob.escape(workdir), f"{glob.escape(name)}.tmp[0-9]*")
              for name in names]
  patterns.append(os.path.join(glob.escape(workdir), "archs", "*.tmp[0-9]*"))
  removed = []
  for path in sorted({p for pattern in patterns for p in glob.glob(pattern)}):
    if re.fullmatch(r".*\.tmp[0-9]+", path) and os.path.isfile(path):
      with contextlib.suppress(OSError):
        os.remove(path)
        removed.append(path)
  return removed


def cut_log(path: str, size: int) -> int:
  """Cuts the JSON-lines log `path` (if it exists) back to the `size` bytes a checkpoint saw, so
  that the records written after it are dropped; returns the bytes kept. When the file holds
  less than that (a host that crashed before the system wrote it out, a log cut by hand) or
  zero bytes inside it (a crash's unwritten blocks), it is cut at the last whole line before the
  gap instead: never extended with zeros, which would join the next record and damage the log."""
  if not os.path.exists(path):
    return 0
  with open(path, "r+b") as f:
    kept = f.read(size)
    if b"\0" in kept or len(kept) < size:
      kept = kept.split(b"\0", 1)[0]
      kept = kept[:kept.rfind(b"\n") + 1]
    f.truncate(len(kept))
  return len(kept)
