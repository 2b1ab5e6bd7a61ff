"""Test-session settings: one persistent XLA compilation cache shared by every test, every
parallel worker (pytest-xdist) and every subprocess a test starts, so that the many tiny searches
compile their steps once per session (the compiled code is the same either way; only the waiting
differs). The session's cache is deleted when the session ends."""
import os
import shutil
import tempfile

# The first process to load this (pytest-xdist's controller, or the one process of a serial run)
# makes the directory; the workers and subprocesses it starts inherit the variable.
_OWNED = "JAX_COMPILATION_CACHE_DIR" not in os.environ
if _OWNED:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="enas_jax_test_xla_cache_")
_CACHE = os.environ["JAX_COMPILATION_CACHE_DIR"]
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # noqa: E402  (after the environment is set)

jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def pytest_sessionfinish(session, exitstatus):
  """The process that made the cache directory deletes it (a parallel run's controller finishes
  after its workers)."""
  del session, exitstatus
  if _OWNED:
    shutil.rmtree(_CACHE, ignore_errors=True)


# The heaviest test files, heaviest first (their tests' seconds in one run on a 2-core VM,
# 2026-12-05: 191, 157, 147, 127, 117, 109, 107; the other 25 files 96 s or less; the macro and
# micro space files were 244 and 177 s until their initialisers and references were compiled at
# XLA's lowest level, `ops.initialize.initialize`). pytest-xdist's `--dist loadfile` hands whole
# files to the workers in collection order (with `--no-loadscope-reorder`, pyproject.toml; its
# default orders files by their number of tests, which sent the one-test data-parallel file out
# last, to run alone for the suite's last three minutes); with these first, the short files fill
# in at the end: 14 min 36 s -> 13 min 13 s for the same tests (2026-12-04).
_HEAVY_FIRST = ("test_cnn_search.py", "test_resume.py", "test_data_parallel.py",
                "test_science_stats.py", "test_multihost.py", "test_rnn_cell.py",
                "test_controller.py")


def pytest_collection_modifyitems(session, config, items):
  """Runs the heaviest files first (a stable sort: each file's tests keep their order)."""
  del session, config
  rank = {name: i for i, name in enumerate(_HEAVY_FIRST)}
  items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
