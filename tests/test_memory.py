"""`io/memory.py`: with freed memory kept, a second block as large as the first reuses its pages
(no page faults); without, glibc maps it afresh and faults every page in again."""
import platform
import subprocess
import sys

import pytest

from enas_jax.io import memory

PROBE = """
import ctypes, resource, sys
from enas_jax.io import memory
kept = memory.keep_freed_memory(sys.argv[1] == "on")
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
def touch_and_free(size):  # as XLA's CPU runtime does with a step's temporaries
  block = libc.malloc(size)
  ctypes.memset(block, 1, size)
  libc.free(ctypes.c_void_p(block))
touch_and_free(50_000_000)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch_and_free(50_000_000)  # the same size again
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

def faults(setting: str) -> tuple[str, int]:
  out = subprocess.run([sys.executable, "-c", PROBE, setting], capture_output=True, text=True,
                       check=True).stdout.split()
  return out[0], int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_kept_memory_reuses_pages_instead_of_faulting_them_in():
  kept, with_kept = faults("on")
  default, without = faults("off")
  assert (kept, default) == ("True", "False")
  pages = 50_000_000 // 4096
  assert without > 0.9 * pages  # every page of the new mapping faulted in
  assert with_kept < 0.05 * pages  # the freed block's pages reused


def test_off_or_elsewhere_does_nothing(monkeypatch):
  assert memory.keep_freed_memory(False) is False
  monkeypatch.setattr(memory.platform, "libc_ver", lambda: ("", ""))
  assert memory.keep_freed_memory(True) is False
