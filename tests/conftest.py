"""Test-session settings: one persistent XLA compilation cache shared by every test, every
parallel worker (pytest-xdist) and every subprocess a test starts, so that the many tiny searches
compile their steps once per session (the compiled code is the same either way; only the waiting
differs). The session's cache is deleted when the session ends."""
import os
import shutil
import tempfile

import pytest

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


# Files whose programs are compiled with most of XLA's optimisations off
# (`jax_disable_most_optimizations`: LLVM at its lowest level, no expensive passes), in the
# test process and in every process a test starts. Each of them compiles many programs and runs
# each for a few steps, so an optimised kernel never pays back its compile. The same programs
# (the same HLO: the spaces, the steps, the sharding) are checked; only the machine code differs,
# and the bit-for-bit comparisons there compare runs compiled alike. Everything else, the
# recurrent search's resumes and reproducibility among them (`test_resume.py`, whose
# `test_speed_only_fields_may_change_on_resume` holds at the default level only), runs as users
# run it. Each file alone (`-n 0`) on a 2-core VM, 2026-12-06, default -> this, in seconds:
# data-parallel 104 -> 86, CNN searches 130 -> 118, CNN training 36 -> 30, NAS-Bench-201 39 -> 33,
# micro space 58 -> 36, macro space 54 -> 39, recurrent cell 72 -> 50, controller 69 -> 62,
# search steps 72 -> 53, multi-host 90 -> 81 (134 test-seconds in all); the files that run whole
# searches for more steps got slower or no faster (experiments/results/performance.md).
_FAST_COMPILE = ("test_cnn_search.py", "test_cnn_train.py", "test_controller.py",
                 "test_data_parallel.py", "test_macro_space.py", "test_micro_space.py",
                 "test_multihost.py", "test_nasbench201.py", "test_rnn_cell.py",
                 "test_rnn_search_steps.py")
_FLAG_VARIABLE = "JAX_DISABLE_MOST_OPTIMIZATIONS"  # read by JAX when it starts


@pytest.fixture(autouse=True, scope="module")
def _compile_level(request):
  """Most XLA optimisations off for the files in `_FAST_COMPILE`. The in-memory caches are
  cleared on the way in and out: the flag is not part of a jitted function's cache key, so a
  program compiled in such a file must not serve another file's test (the persistent cache keys
  on the compile options, so its entries never mix)."""
  if request.path.name not in _FAST_COMPILE:
    yield
    return
  flag = jax.config.read("jax_disable_most_optimizations")
  variable = os.environ.get(_FLAG_VARIABLE)
  jax.clear_caches()
  jax.config.update("jax_disable_most_optimizations", True)
  os.environ[_FLAG_VARIABLE] = "1"  # the processes its tests start
  try:
    yield
  finally:
    jax.clear_caches()
    jax.config.update("jax_disable_most_optimizations", flag)
    if variable is None:
      os.environ.pop(_FLAG_VARIABLE, None)
    else:
      os.environ[_FLAG_VARIABLE] = variable


def pytest_collection_modifyitems(session, config, items):
  """Runs the heaviest files first (a stable sort: each file's tests keep their order)."""
  del session, config
  rank = {name: i for i, name in enumerate(_HEAVY_FIRST)}
  items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
