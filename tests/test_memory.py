"""`io/memory.py`: with freed memory kept, a second block as large as the first reuses its pages
(no page faults), also one of more than 2 GiB; without, glibc maps it afresh and faults every
page in again."""
import platform
import subprocess
import sys

import pytest

from enas_jax.io import memory

PROBE = """
import ctypes, resource, sys
from enas_jax.io import memory
kept = memory.keep_freed_memory(sys.argv[1] == "on")
size = int(sys.argv[2])
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
def touch_and_free(size):  # as XLA's CPU runtime does with a step's temporaries
  block = libc.malloc(size)
  ctypes.memset(block, 1, size)
  libc.free(ctypes.c_void_p(block))
touch_and_free(size)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch_and_free(size)  # the same size again
print(kept, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

def faults(setting: str, size: int) -> tuple[str, int]:
  out = subprocess.run([sys.executable, "-c", PROBE, setting, str(size)], capture_output=True,
                       text=True, check=True).stdout.split()
  return out[0], int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
@pytest.mark.parametrize("size", [50_000_000, 2_300_000_000])  # 2.3 GB: over 2 GiB freed at once
def test_kept_memory_reuses_pages_instead_of_faulting_them_in(size):
  kept, with_kept = faults("on", size)
  default, without = faults("off", size)
  assert (kept, default) == ("True", "False")
  pages = size // 4096
  assert without > 0.9 * pages  # every page of the new mapping faulted in
  assert with_kept < 0.05 * pages  # the freed block's pages reused


def test_off_or_elsewhere_does_nothing(monkeypatch):
  assert memory.keep_freed_memory(False) is False
  monkeypatch.setattr(memory.platform, "libc_ver", lambda: ("", ""))
  assert memory.keep_freed_memory(True) is False


def _write(path, text):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(text)


GIB = 2 ** 30


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_headroom_is_the_least_of_the_machine_and_each_limited_cgroup(tmp_path, version):
  """MemAvailable + SwapFree; each cgroup up the process's path with a limit: the limit less
  what it uses besides its page cache; a cgroup with no limit, or whose memory.stat cannot be
  read, left out."""
  proc, root = tmp_path / "proc", tmp_path / "cgroup"
  _write(proc / "meminfo", f"MemTotal: {64 * GIB // 1024} kB\nMemAvailable: {8 * GIB // 1024} "
                           f"kB\nSwapFree: {GIB // 1024} kB\n")
  if version == "v2":
    _write(proc / "self" / "cgroup", "0::/job/step\n")
    base, files = root, ("memory.max", "memory.current", "file")
  else:
    _write(proc / "self" / "cgroup", "5:cpu:/\n4:memory:/job/step\n")
    base, files = root / "memory", ("memory.limit_in_bytes", "memory.usage_in_bytes",
                                    "total_cache")
  limit, usage, cache = files
  _write(base / "job" / "step" / limit, f"{4 * GIB}\n")  # 3 GiB used, 2 of them page cache
  _write(base / "job" / "step" / usage, f"{3 * GIB}\n")
  _write(base / "job" / "step" / "memory.stat", f"anon 5\n{cache} {2 * GIB}\n")
  _write(base / "job" / limit, "max\n" if version == "v2" else f"{2 ** 63 - 4096}\n")
  _write(base / "job" / usage, f"{5 * GIB}\n")
  _write(base / "job" / "memory.stat", f"{cache} 0\n")
  room = memory.host_headroom(str(proc), str(root))
  assert room == memory.Headroom(3 * GIB, f"its cgroup's memory limit, "
                                          f"{base / 'job' / 'step' / limit}")
  (base / "job" / "step" / "memory.stat").unlink()  # unreadable: the machine's figure
  assert memory.host_headroom(str(proc), str(root)) == memory.Headroom(
      9 * GIB, "the memory the machine has available, MemAvailable + SwapFree")
  _write(base / "job" / limit, f"{6 * GIB}\n")  # a parent's limit binds
  _write(base / "job" / "memory.stat", f"{cache} {GIB}\n")
  assert memory.host_headroom(str(proc), str(root)).free_bytes == 2 * GIB
  assert memory.host_headroom(str(tmp_path / "none"), str(root)) is None  # not Linux


LIMITED = """
import resource, sys
from enas_jax.io import memory
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]), resource.RLIM_INFINITY))
room = memory.host_headroom()
used = [int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize")][0]
print(room.free_bytes, int(sys.argv[1]) - used, room.bound)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="/proc is Linux's")
def test_headroom_under_an_address_space_limit_is_what_the_limit_leaves():
  out = subprocess.run([sys.executable, "-c", LIMITED, str(6 * GIB)], capture_output=True,
                       text=True, check=True).stdout.split(maxsplit=2)
  assert abs(int(out[0]) - int(out[1])) < 2 ** 20, out  # the limit less the process's size
  assert out[2].strip() == "its address-space limit, ulimit -v"


def test_device_headroom_is_the_devices_limit_less_its_use():
  class Device:
    device_kind, id = "NVIDIA H100 80GB HBM3", 1

    def memory_stats(self):
      return {"bytes_limit": 60 * GIB, "bytes_in_use": 10 * GIB, "peak_bytes_in_use": 11 * GIB}

  assert memory.device_headroom(Device()) == memory.Headroom(
      50 * GIB, "the free memory of NVIDIA H100 80GB HBM3 1")
  import jax
  assert memory.device_headroom(jax.devices("cpu")[0]) is None  # keeps no figures


BLAS_LOADED = """
import jax
from enas_jax.io import memory
def scipy_blas():
  return any("scipy.libs" in line and "openblas" in line for line in open("/proc/self/maps"))
before = scipy_blas()
memory.load_lapack()
print(before, scipy_blas())
"""


@pytest.mark.skipif(sys.platform != "linux", reason="/proc is Linux's")
def test_lapack_is_loaded_before_the_run_needs_it():
  """jaxlib's CPU LAPACK (SciPy's OpenBLAS, which takes its buffers as it loads) is not loaded
  with JAX; `load_lapack` loads it (the search does so at its start)."""
  out = subprocess.run([sys.executable, "-c", BLAS_LOADED], capture_output=True, text=True,
                       check=True).stdout.split()
  assert out == ["False", "True"]


def test_a_calls_memory_is_its_temporaries_and_outputs_not_donated():
  """`call_bytes` against hand counts: an elementwise program's output (4 bytes x 1000); none
  when the output is written over a donated argument; a product of products holds the inner one
  (256 x 256 float32) besides its output; None where the backend has no analysis."""
  import jax
  import jax.numpy as jnp
  x_N, m_NxN = jnp.ones((1000,), jnp.float32), jnp.ones((256, 256), jnp.float32)
  assert memory.call_bytes(jax.jit(lambda a: a + 1).lower(x_N).compile()) == 4000
  donated = jax.jit(lambda a: a + 1, donate_argnums=0)
  assert memory.call_bytes(donated.lower(x_N).compile()) == 0
  chain = jax.jit(lambda a: jnp.tanh(a @ a) @ a)
  assert memory.call_bytes(chain.lower(m_NxN).compile()) == 2 * 256 * 256 * 4

  class NoAnalysis:
    def __init__(self, answer):
      self.answer = answer

    def memory_analysis(self):
      if isinstance(self.answer, Exception):
        raise self.answer
      return self.answer
  assert memory.call_bytes(NoAnalysis(NotImplementedError())) is None
  assert memory.call_bytes(NoAnalysis(None)) is None
