"""Keeping freed memory in the process, so that each step does not fault its buffers in again.

XLA's CPU backend allocates a step's temporaries afresh at every call (one block: 1.1 GB for
the PTB shared step at width 1000). glibc hands an allocation that large to `mmap` and gives it
back with `munmap` when the step ends, so every step faults its whole working memory in again,
page by page (about 270,000 page faults and 0.45 s of kernel time a step at width 1000;
`experiments/results/performance.md`). `keep_freed_memory` tells glibc (`mallopt`) to serve
every allocation from the main heap and never return freed memory to the system: the second
step reuses the first one's pages. The costs: compiling is about 45% slower (XLA's compiler
threads then share one heap and its lock: 4.8-5.1 s against 7.2-7.5 s for one step's program),
and the process keeps its peak memory until it exits; so it is opt-in (`--keep_freed_memory`),
worth it for a long CPU run whose steps are compiled once. Other C libraries (macOS, musl) are
left alone. Call it before the first computation (before XLA's threads allocate), as the commands
do.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_MAX = -4
M_ARENA_MAX = -8
NEVER_TRIM = 2 ** 31 - 1  # the largest value mallopt takes (an int): 2 GiB of free top kept


def keep_freed_memory(enabled: bool = True) -> bool:
  """Asks glibc to keep freed memory; True when it did (glibc, each setting accepted)."""
  if not enabled or platform.libc_ver()[0] != "glibc":
    return False
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
  except OSError:
    return False
  settings = ((M_ARENA_MAX, 1),  # every thread allocates from the main heap...
              (M_MMAP_MAX, 0),  # ...which grows for large blocks instead of mapping each one...
              (M_TRIM_THRESHOLD, NEVER_TRIM))  # ...and keeps what is freed
  return all(libc.mallopt(param, value) == 1 for param, value in settings)
