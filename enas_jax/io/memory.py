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
import dataclasses
import importlib
import os
import platform
import resource
from typing import Any

import jax

from enas_jax.io.errors import UserError

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_MAX = -4
M_ARENA_MAX = -8
# -1 is SIZE_MAX to glibc ("disables trimming completely"); the largest positive int, 2 GiB, let
# a float32 step at width 1000 (more than 2 GiB freed at its end) give its pages back in about
# half of its steps, and fault them in again (performance.md, 2026-12-08)
NEVER_TRIM = -1


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


def load_lapack() -> None:
  """Loads now the LAPACK that jaxlib's CPU linear algebra calls (SciPy's OpenBLAS), which JAX
  would load at the first lowering of a decomposition (in a search: the controller's orthogonal
  initialiser, after the shared weights exist). OpenBLAS takes its buffers as it loads and, when
  an allocation fails (the process near an address-space limit, `ulimit -v` or a cluster's
  h_vmem), retries for ever: the search then hung at 100% CPU, deaf to SIGTERM. Loaded at the
  start, the buffers come before the run's arrays (measured: with 1 GiB of address space left,
  the first lowering of a QR hangs without this and finishes with it)."""
  try:
    importlib.import_module("scipy.linalg.cython_lapack")
  except ImportError:  # no SciPy: jaxlib has no CPU LAPACK to load either
    pass


def size_in_words(n: int) -> str:
  """A byte count in MiB, GiB or TiB."""
  unit = next(u for u in (("MiB", 20), ("GiB", 30), ("TiB", 40)) if n < 2 ** (u[1] + 10)
              or u[0] == "TiB")
  return f"{n / 2 ** unit[1]:.2f} {unit[0]}"


def check_host_room(need: int, subject: str, purpose: str, lower: str) -> None:
  """A UserError when making something of `need` bytes in host memory (`subject` needs it
  `purpose`: "The planted corpus (data.planted) needs", "to generate") cannot fit in what this
  process may still take (`host_headroom`); `lower` names the config fields to lower."""
  room = host_headroom()
  if room is not None and need > room.free_bytes:
    raise UserError(
        f"{subject} about {size_in_words(need)} {purpose}, more than this process may still use "
        f"({size_in_words(room.free_bytes)}: {room.bound}). Lower {lower} in the config, or run "
        f"it where more memory is free.")


@dataclasses.dataclass(frozen=True)
class Headroom:
  """How much more memory this process may take, and what bounds it (in words)."""

  free_bytes: int
  bound: str


def _kib_fields(path: str, names: tuple[str, ...]) -> dict[str, int] | None:
  """The named "Name: N kB" fields of /proc/meminfo or /proc/self/status, in bytes."""
  try:
    with open(path) as f:
      lines = [line.split() for line in f]
  except OSError:
    return None
  found = {w[0].rstrip(":"): int(w[1]) * 1024 for w in lines if len(w) >= 2
           and w[0].rstrip(":") in names and w[1].isdigit()}
  return found if len(found) == len(names) else None


def _cgroup_limits(proc: str, root: str) -> list[Headroom]:
  """Each memory-limited cgroup (v2, or v1's memory controller) this process is in, up to the
  root: what its limit leaves. Its page cache counts as free (the kernel reclaims it before it
  fails an allocation), so a cgroup whose memory.stat cannot be read is left out."""
  out = []
  try:
    with open(os.path.join(proc, "self", "cgroup")) as f:
      entries = [line.strip().split(":", 2) for line in f if line.count(":") >= 2]
  except OSError:
    return out
  for _, controllers, path in entries:
    if controllers == "":  # v2
      base, files = root, ("memory.max", "memory.current", "file")
    elif "memory" in controllers.split(","):  # v1
      base = os.path.join(root, "memory")
      files = ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_cache")
    else:
      continue
    parts = [p for p in path.split("/") if p]
    for depth in range(len(parts), -1, -1):
      folder = os.path.join(base, *parts[:depth])
      left = _cgroup_left(folder, *files)
      if left is not None:
        out.append(Headroom(left, f"its cgroup's memory limit, "
                                  f"{os.path.join(folder, files[0])}"))
  return out


def _cgroup_left(folder: str, limit_file: str, usage_file: str, cache_field: str
                 ) -> int | None:
  """A cgroup folder's limit less its use without its page cache; None without a limit."""
  try:
    limit, used = (open(os.path.join(folder, name)).read().strip()
                   for name in (limit_file, usage_file))
    with open(os.path.join(folder, "memory.stat")) as f:
      stat = dict(line.split()[:2] for line in f if len(line.split()) >= 2)
  except (OSError, ValueError):
    return None
  cache = stat.get(cache_field, "")
  if not (limit.isdigit() and used.isdigit() and cache.isdigit()) or int(limit) >= 2 ** 62:
    return None
  return int(limit) - max(int(used) - int(cache), 0)


def host_headroom(proc: str = "/proc", cgroup_root: str = "/sys/fs/cgroup") -> Headroom | None:
  """The least of what the machine has available (MemAvailable + SwapFree), what this process's
  cgroups allow, and what its address-space and data limits (`ulimit -v`, `ulimit -d`) leave;
  None where none can be read (not Linux)."""
  found = []
  mem = _kib_fields(os.path.join(proc, "meminfo"), ("MemAvailable", "SwapFree"))
  if mem:
    found.append(Headroom(mem["MemAvailable"] + mem["SwapFree"],
                          "the memory the machine has available, MemAvailable + SwapFree"))
  found += _cgroup_limits(proc, cgroup_root)
  status = _kib_fields(os.path.join(proc, "self", "status"), ("VmSize", "VmData"))
  for limit, used, words in ((resource.RLIMIT_AS, "VmSize", "address-space limit, ulimit -v"),
                             (resource.RLIMIT_DATA, "VmData", "data-size limit, ulimit -d")):
    soft = resource.getrlimit(limit)[0]
    if status and soft != resource.RLIM_INFINITY:
      found.append(Headroom(soft - status[used], f"its {words}"))
  return min(found, key=lambda h: h.free_bytes) if found else None


def device_headroom(device: Any) -> Headroom | None:
  """What an accelerator's memory has free for this process (XLA's own figures: the limit it
  allocates within, less what is in use); None where the device keeps no figures (the CPU)."""
  stats = device.memory_stats() if hasattr(device, "memory_stats") else None
  if not stats or "bytes_limit" not in stats:
    return None
  return Headroom(int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)),
                  f"the free memory of {device.device_kind} {device.id}")


def call_bytes(compiled: Any) -> int | None:
  """The memory one call of a compiled program takes beyond its arguments, from XLA's buffer
  assignment (`memory_analysis()`): its temporaries (activations, gradients, scratch) and the
  outputs not written over donated arguments; None where the backend does not say."""
  try:
    stats = compiled.memory_analysis()
  except (NotImplementedError, RuntimeError, AttributeError):
    return None
  if stats is None:
    return None
  return max(int(stats.temp_size_in_bytes) + int(stats.output_size_in_bytes)
             - int(stats.alias_size_in_bytes), 0)


def headroom() -> Headroom | None:
  """What this process may still take where its arrays live: host memory on a CPU
  (`host_headroom`), the first local device's elsewhere (`device_headroom`)."""
  if jax.default_backend() == "cpu":
    return host_headroom()
  return device_headroom(jax.local_devices()[0])
