"""JAX's persistent compilation cache for the commands: a run's compiled steps are kept on disk, so
the next run of the same shapes (a resumed search, a second quickstart, the report of a search)
loads them instead of compiling again.

Where (the first that applies):
  1. `--compilation_cache=off` or `=DIR` on the command line;
  2. JAX's own `JAX_COMPILATION_CACHE_DIR` (JAX reads it itself: left as it is);
  3. `ENAS_JAX_COMPILATION_CACHE` in the environment (a directory, or `off`);
  4. the per-user default `$XDG_CACHE_HOME/enas_jax/xla` (`~/.cache/enas_jax/xla`).
With the `filelock` package installed the cache holds at most `MAX_BYTES` (least recently used
entries go first; JAX needs filelock for that); without it, it grows: delete the directory to
empty it. Entries written without the limit get the access times the limit needs when it is
turned on (`complete_access_times`). An unwritable directory turns the cache off with a warning,
and JAX's warnings when it cannot read or write an entry later (a full disk) become one line
each (`report_failures_once`); an entry JAX cannot read is removed so that the program
compiled in its stead is kept (`heal_unreadable_entries`); the run itself never depends on the
cache (a cached program is the same program).
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import warnings
from typing import Any, Callable, Mapping

import jax

from enas_jax.io.errors import UserError
from enas_jax.io.workdir import make_folders

MAX_BYTES = 4 * 1024 ** 3  # the cache's size limit
# JAX's size-limited cache (`jax._src.lru_cache`): entry KEY is the file KEY-cache, its last use
# the file KEY-atime (nanoseconds since the epoch, 8 bytes, little-endian)
CACHE_SUFFIX, ATIME_SUFFIX = "-cache", "-atime"
MIN_COMPILE_SECONDS = 0.2  # programs that compile faster are not worth a file
OFF = "off"
AUTO = "auto"


def directory(setting: str, environ: Mapping[str, str]) -> str | None:
  """The cache directory `setting` (`auto`, `off` or a directory) and the environment ask for;
  None when the cache is off or JAX's own variable already chose (JAX then uses that)."""
  if setting == OFF:
    return None
  if not setting.strip():  # abspath("") is the working directory: entries were written there
    raise UserError("--compilation_cache is empty; pass auto (the default), off, or a directory "
                    "for JAX's compiled programs.")
  if setting != AUTO:
    return os.path.abspath(os.path.expanduser(setting))
  if environ.get("JAX_COMPILATION_CACHE_DIR"):
    return None
  ours = environ.get("ENAS_JAX_COMPILATION_CACHE", "")
  if ours == OFF:
    return None
  if ours:
    return os.path.abspath(os.path.expanduser(ours))
  base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "enas_jax", "xla")


def enable(setting: str, environ: Mapping[str, str] | None = None,
           warn: Callable[[str], None] = print) -> str | None:
  """Points JAX's persistent cache at `directory(setting, environ)` (before the first compile);
  returns the directory in use, or None."""
  environ = os.environ if environ is None else environ
  path = directory(setting, environ)
  if path is None:
    if setting == AUTO and environ.get("JAX_COMPILATION_CACHE_DIR"):
      heal_unreadable_entries()
      return environ["JAX_COMPILATION_CACHE_DIR"]  # JAX's own setting stands
    jax.config.update("jax_enable_compilation_cache", False)  # asked for off
    return None
  try:
    make_folders(path)
    if not os.access(path, os.W_OK):
      raise PermissionError(path)
  except OSError as err:
    warn(f"warning: the compilation cache directory {path} cannot be written "
         f"({getattr(err, 'strerror', None) or err}); compiling without it. Pass "
         f"--compilation_cache=DIR (or off) to choose.")
    return None
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
  report_failures_once(path, warn)
  heal_unreadable_entries()
  if importlib.util.find_spec("filelock") is not None:  # JAX's size limit needs it
    complete_access_times(path)
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
  return path


def complete_access_times(path: str) -> int:
  """Gives each entry of the cache at `path` that has no access-time file one (its file's
  modification time); returns how many it gave. JAX's size-limited cache reads every entry's
  access time before it writes a new entry, and an entry without one (written while the cache
  had no limit: `filelock` was not installed then) made it fail every write with a warning
  per compilation, the cache no longer growing. A file that vanishes meanwhile (another
  process evicting it) or cannot be written is left to JAX, as before."""
  try:
    names = set(os.listdir(path))
  except OSError:
    return 0
  given = 0
  for name in sorted(names):
    key = name[:-len(CACHE_SUFFIX)]
    if not name.endswith(CACHE_SUFFIX) or key + ATIME_SUFFIX in names:
      continue
    try:
      used_ns = os.stat(os.path.join(path, name)).st_mtime_ns
      with open(os.path.join(path, key + ATIME_SUFFIX), "wb") as f:
        f.write(used_ns.to_bytes(8, "little"))
      given += 1
    except OSError:
      continue
  return given


def heal_unreadable_entries() -> bool:
  """Makes an entry JAX cannot read be deleted (with its access time) before JAX compiles the
  program in its stead, so that the new program is kept. JAX writes an entry in place and never
  replaces one that exists: an entry cut short (a full disk, a file-size limit, a process killed
  while writing it) stayed unreadable for good, every later run warning and compiling that
  program again. Wraps `jax._src.compilation_cache.get_executable_and_time` (once); returns
  whether it could (a JAX without it: nothing done, as before)."""
  try:
    from jax._src import compilation_cache as jax_cache
  except ImportError:
    return False
  read = getattr(jax_cache, "get_executable_and_time", None)
  if read is None or getattr(read, "enas_jax_heals", False):
    return read is not None

  def read_or_remove(cache_key: str, *args: Any, **kwargs: Any) -> Any:
    try:
      return read(cache_key, *args, **kwargs)
    except Exception:
      folder = str(getattr(getattr(jax_cache, "_cache", None), "path", "")
                   or jax.config.jax_compilation_cache_dir or "")
      for suffix in (CACHE_SUFFIX, ATIME_SUFFIX):
        with contextlib.suppress(OSError, TypeError):
          os.remove(os.path.join(folder, cache_key + suffix))
      raise  # JAX warns (`report_failures_once`) and compiles

  read_or_remove.enas_jax_heals = True  # type: ignore[attr-defined]
  jax_cache.get_executable_and_time = read_or_remove
  return True


# How JAX words its warning when it cannot read or write an entry (`jax._src.compiler`)
JAX_FAILURES = {"read": "Error reading persistent compilation cache entry for ",
                "write": "Error writing persistent compilation cache entry for "}


def report_failures_once(path: str, warn: Callable[[str], None]) -> None:
  """Turns JAX's warnings about the cache at `path` (one per compiled program when it cannot
  write there: a full disk, a vanished directory; one per entry it cannot read) into one line
  through `warn` for each kind, the first time; other warnings show as before. The run goes on
  either way: a program JAX cannot read is compiled, one it cannot write is not kept."""
  previous = getattr(warnings.showwarning, "enas_jax_previous", warnings.showwarning)
  shown: set[str] = set()

  def show(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    text = str(message)
    kind = next((k for k, start in JAX_FAILURES.items() if text.startswith(start)), None)
    if kind is None:
      return previous(message, category, *args, **kwargs)
    if kind not in shown:
      shown.add(kind)
      why = text.split("': ", 1)[-1]
      verb, then = (("read", ", compiling the programs it cannot read and keeping them in "
                     "their stead") if kind == "read" else
                    ("written", " without keeping its programs there (further failures not "
                     "shown)"))
      warn(f"warning: the compilation cache in {path} could not be {verb} ({why}); the run goes "
           f"on{then}. Check that directory (free space, what is in it), or pass "
           f"--compilation_cache=off or another.")
  show.enas_jax_previous = previous  # type: ignore[attr-defined]
  warnings.showwarning = show
