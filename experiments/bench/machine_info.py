"""The machine a benchmark ran on, as one line for its `# machine:` header: the architecture, the
CPU's model name, the cores, the memory, and JAX's version and device. Recorded figures depend on
the CPU model as much as on the code (performance.md: the same step measured 0.87-0.98x the real
ENAS-pytorch on Intel Xeon VMs and 1.01-1.16x on an AMD EPYC one), so every header names it.
"""
from __future__ import annotations

import os
import platform

import jax


def cpu_model(cpuinfo: str | None = None) -> str:
  """The CPU's model name: the first `model name` of /proc/cpuinfo (`cpuinfo`: its text, read
  when None) on Linux, else `platform.processor()`; "unknown CPU" when neither says."""
  if cpuinfo is None:
    try:
      with open("/proc/cpuinfo") as f:
        cpuinfo = f.read()
    except OSError:
      cpuinfo = ""
  for line in cpuinfo.splitlines():
    key, sep, value = line.partition(":")
    if sep and key.strip() == "model name" and value.strip():
      return " ".join(value.split())
  return platform.processor() or "unknown CPU"


def memory_gib() -> float | None:
  """The machine's physical memory in GiB, or None where the OS does not say."""
  try:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
  except (ValueError, OSError, AttributeError):
    return None


def describe(cpuinfo: str | None = None) -> str:
  """E.g. "x86_64, AMD EPYC, 2 cores, 23.5 GiB; jax 0.10.2 on cpu" (on a GPU or TPU its kind too:
  "on gpu (NVIDIA H200)")."""
  memory = memory_gib()
  device = jax.devices()[0]
  kind = getattr(device, "device_kind", "") if device.platform != "cpu" else ""
  return (f"{platform.machine()}, {cpu_model(cpuinfo)}, {os.cpu_count()} cores"
          f"{f', {memory:.1f} GiB' if memory else ''}; jax {jax.__version__} on "
          f"{device.platform}{f' ({kind})' if kind else ''}")
