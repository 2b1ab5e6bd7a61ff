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
