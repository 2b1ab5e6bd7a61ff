"""The commands' persistent compilation cache: where it goes, how it is turned off, and that an
unwritable directory is a warning, never a failure."""
import importlib.util
import os
import subprocess
import sys

import jax
import pytest

from enas_jax.io import compile_cache
from enas_jax.io.errors import UserError


def test_where_the_cache_goes():
  d = compile_cache.directory
  home = os.path.expanduser("~")
  assert d("auto", {}) == os.path.join(home, ".cache", "enas_jax", "xla")
  assert d("auto", {"XDG_CACHE_HOME": "/c"}) == "/c/enas_jax/xla"
  assert d("auto", {"ENAS_JAX_COMPILATION_CACHE": "/mine", "XDG_CACHE_HOME": "/c"}) == "/mine"
  assert d("auto", {"ENAS_JAX_COMPILATION_CACHE": "off"}) is None
  # JAX's own variable: JAX reads it itself, ours stays out of the way
  assert d("auto", {"JAX_COMPILATION_CACHE_DIR": "/jax", "ENAS_JAX_COMPILATION_CACHE": "/m"}) \
      is None
  # the flag wins over the environment
  assert d("/flag", {"JAX_COMPILATION_CACHE_DIR": "/jax"}) == "/flag"
  assert d("off", {"XDG_CACHE_HOME": "/c"}) is None
  for empty in ("", " "):  # was the working directory (abspath of ""): entries written there
    with pytest.raises(UserError, match="^--compilation_cache is empty; pass auto"):
      d(empty, {})


def test_an_empty_cache_flag_is_one_paragraph_and_writes_nothing(tmp_path):
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, PYTHONPATH=root)
  out = subprocess.run(
      [sys.executable, "-m", "enas_jax.search", f"--config={root}/configs/quickstart.py:tiny",
       "--workdir=run", "--compilation_cache="], env=env, cwd=tmp_path, capture_output=True,
      text=True, timeout=120)
  assert out.returncode == 2, out.stderr
  assert "\n\n" not in out.stderr and " ".join(out.stderr.split()) == (
      "error: --compilation_cache is empty; pass auto (the default), off, or a directory for "
      "JAX's compiled programs.")
  assert not os.listdir(tmp_path)


@pytest.fixture
def restore_jax_cache_settings():
  names = ("jax_compilation_cache_dir", "jax_enable_compilation_cache",
           "jax_persistent_cache_min_compile_time_secs", "jax_compilation_cache_max_size")
  saved = {n: getattr(jax.config, n) for n in names}
  yield
  for name, value in saved.items():
    jax.config.update(name, value)


def test_enable_points_jax_at_the_directory_or_warns(tmp_path, restore_jax_cache_settings):
  path = compile_cache.enable(str(tmp_path / "xla"), environ={})
  assert path == str(tmp_path / "xla") and os.path.isdir(path)
  assert jax.config.jax_compilation_cache_dir == path
  if importlib.util.find_spec("filelock"):
    assert jax.config.jax_compilation_cache_max_size == compile_cache.MAX_BYTES
  blocker = tmp_path / "file"
  blocker.write_text("not a directory")
  warnings = []
  assert compile_cache.enable(str(blocker / "xla"), environ={}, warn=warnings.append) is None
  assert len(warnings) == 1 and "cannot be written" in warnings[0] and "--compilation_cache" \
      in warnings[0]
  assert compile_cache.enable("off", environ={}) is None
  assert jax.config.jax_enable_compilation_cache is False


def test_entries_without_access_times_get_them_so_the_size_limit_keeps_working(
    tmp_path, restore_jax_cache_settings):
  """Entries written while the cache had no size limit (no filelock) have no `-atime` file;
  JAX's size-limited cache reads one for every entry before it writes a new one, so without the
  repair every write failed (a warning per compilation, the cache frozen)."""
  path = tmp_path / "xla"
  path.mkdir()
  (path / "old-cache").write_bytes(b"program")
  (path / "kept-cache").write_bytes(b"program")
  (path / "kept-atime").write_bytes((7).to_bytes(8, "little"))
  (path / ".lockfile").write_bytes(b"")
  os.utime(path / "old-cache", ns=(10**18, 1_234_567_890_123_456_789))
  assert compile_cache.complete_access_times(str(path)) == 1
  assert int.from_bytes((path / "old-atime").read_bytes(), "little") == 1_234_567_890_123_456_789
  assert int.from_bytes((path / "kept-atime").read_bytes(), "little") == 7  # left as it was
  assert compile_cache.complete_access_times(str(path)) == 0
  assert compile_cache.complete_access_times(str(tmp_path / "none")) == 0
  if importlib.util.find_spec("filelock"):  # JAX's own size-limited cache writes again
    from jax._src import lru_cache
    (path / "older-cache").write_bytes(b"program")
    with pytest.raises(FileNotFoundError):  # what JAX does without the repair
      lru_cache.LRUCache(str(path), max_size=compile_cache.MAX_BYTES).put("new", b"x")
    compile_cache.enable(str(path), environ={})
    lru_cache.LRUCache(str(path), max_size=compile_cache.MAX_BYTES).put("new", b"x")
    assert (path / "new-cache").read_bytes() == b"x" and (path / "older-atime").is_file()


def test_jax_cache_failures_become_one_line_each(tmp_path, restore_jax_cache_settings):
  """A full disk makes JAX warn once per compiled program; the commands show one line."""
  import warnings
  lines, other = [], []
  with warnings.catch_warnings():
    warnings.simplefilter("always")
    warnings.showwarning = lambda message, *args, **kwargs: other.append(str(message))
    path = compile_cache.enable(str(tmp_path / "xla"), environ={}, warn=lines.append)
    compile_cache.enable(path, environ={}, warn=lines.append)  # a second enable: one hook
    for name in ("jit_a", "jit_b", "jit_c"):
      warnings.warn(f"Error writing persistent compilation cache entry for '{name}': OSError: "
                    f"[Errno 28] No space left on device")
    warnings.warn("Error reading persistent compilation cache entry for 'jit_a': "
                  "ValueError: truncated")
    warnings.warn("something else")
  assert other == ["something else"]
  assert len(lines) == 2, lines
  assert lines[0].startswith(f"warning: the compilation cache in {path} could not be written "
                             "(OSError: [Errno 28] No space left on device); the run goes on")
  assert "could not be read (ValueError: truncated)" in lines[1]
  assert all("--compilation_cache=off" in line for line in lines)


_COMPILE_ONE = """
import sys
from enas_jax.io import compile_cache
from enas_jax.io.errors import UserError
compile_cache.MIN_COMPILE_SECONDS = 0.0  # keep every program, however quick
said = []
compile_cache.enable(sys.argv[1], environ={}, warn=said.append)
import jax, jax.numpy as jnp
print(float(jax.jit(lambda x: jnp.sin(x) * 2.0)(1.0)), said)
"""


def test_an_entry_cut_short_is_compiled_again_and_replaced_not_warned_of_forever(tmp_path):
  """JAX writes a cache entry in place and never replaces one that exists: an entry a full disk
  or a kill cut short was unreadable for good (a warning and a compile in every later run).
  Now the first run after it warns once and keeps the program again; the next reads it."""
  path = tmp_path / "xla"
  env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env["PYTHONPATH"] = root

  def run():
    out = subprocess.run([sys.executable, "-c", _COMPILE_ONE, str(path)], env=env, cwd=root,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()

  first = run()
  assert first.endswith("[]")
  entries = sorted(path.glob("*-cache"))
  assert entries
  whole = {p.name: p.stat().st_size for p in entries}
  for entry in entries:  # what a full disk or a kill mid-write leaves
    entry.write_bytes(entry.read_bytes()[:entry.stat().st_size // 2])
  second = run()
  assert second.startswith(first.split()[0]) and "could not be read" in second
  assert {p.name: p.stat().st_size for p in sorted(path.glob("*-cache"))} == whole
  assert run() == first  # read from the cache, no warning
