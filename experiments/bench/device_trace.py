"""Where a jitted step's device time goes: a `jax.profiler` trace of a few calls, summarised.

For a GPU: the kernels on the device's streams, per call: how many, their summed time, the time
the device was busy with at least one of them against the calls' span (the rest is the device
waiting: kernel launches, host round trips of loop conditions and conditionals), and the kernels
that took the most time. On a CPU (no device streams in the trace) the same figures for XLA's
worker threads' operations (CPU time, not wall time; `profile_step.py` has more).

  from experiments.bench import device_trace
  print("\n".join(device_trace.traced(step, 3, "/tmp/trace")))   # step: () -> arrays

or, for a trace already written:  python experiments/bench/device_trace.py DIR --calls=3
"""
from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
from typing import Any, Callable

import jax


def _events(trace_dir: str) -> tuple[list[dict[str, Any]], dict[Any, str], dict[Any, str]]:
  """The newest perfetto trace under `trace_dir`: its events, process names and thread names."""
  paths = sorted(glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"),
                           recursive=True))
  if not paths:
    raise FileNotFoundError(f"no perfetto_trace.json.gz under {trace_dir}")
  with gzip.open(paths[-1]) as f:
    data = json.load(f)
  events = data["traceEvents"] if isinstance(data, dict) else data
  meta = [e for e in events if e.get("ph") == "M"]
  processes = {e["pid"]: e["args"]["name"] for e in meta if e.get("name") == "process_name"}
  threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in meta
             if e.get("name") == "thread_name"}
  return [e for e in events if e.get("ph") == "X"], processes, threads


def device_work(trace_dir: str) -> tuple[str, list[dict[str, Any]]]:
  """("gpu kernels" or "cpu operations", the events that are the device's work)."""
  events, processes, threads = _events(trace_dir)
  devices = {pid for pid, name in processes.items() if name.startswith("/device:")}
  streams = {key for key, name in threads.items() if key[0] in devices and "Stream" in name}
  if streams:
    return "gpu kernels", [e for e in events if (e["pid"], e["tid"]) in streams]
  workers = {key for key, name in threads.items() if name.startswith("tf_XLAEigen")}
  return "cpu operations", [e for e in events if (e["pid"], e["tid"]) in workers
                            and not e["name"].startswith("ThunkExecutor")]


def _busy(intervals: list[tuple[float, float]]) -> float:
  """The length of the union of the intervals."""
  total, end = 0.0, float("-inf")
  for start, stop in sorted(intervals):
    if stop > end:
      total += stop - max(start, end)
      end = stop
  return total


def summarize(trace_dir: str, calls: int, top: int = 12) -> list[str]:
  """Lines of figures per call (microseconds) for the trace under `trace_dir` of `calls` calls."""
  kind, work = device_work(trace_dir)
  if not work:
    return [f"# no {kind} in the trace under {trace_dir}"]
  spans = [(e["ts"], e["ts"] + e.get("dur", 0.0)) for e in work]
  span = max(s for _, s in spans) - min(s for s, _ in spans)
  busy = _busy(spans)
  micros, counts = collections.Counter(), collections.Counter()
  for e in work:
    micros[e["name"]] += e.get("dur", 0.0)
    counts[e["name"]] += 1
  lines = [f"# {kind} per call: {len(work) / calls:.0f} of them, "
           f"{sum(micros.values()) / calls:.0f} us summed; busy {busy / calls:.0f} us of a "
           f"{span / calls:.0f} us span "
           f"({100 * busy / max(span, 1e-9):.0f}%)",
           f"# {'us/call':>9} {'n/call':>7}  name (the {top} longest)"]
  for name, us in micros.most_common(top):
    lines.append(f"# {us / calls:9.1f} {counts[name] / calls:7.1f}  {name[:90]}")
  return lines


def traced(step: Callable[[], Any], calls: int, trace_dir: str, top: int = 12) -> list[str]:
  """Runs `step()` once untraced, then `calls` times in a trace written to `trace_dir`, each
  waited for; returns `summarize`'s lines."""
  jax.block_until_ready(step())
  with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
    for _ in range(calls):
      jax.block_until_ready(step())
  return summarize(trace_dir, calls, top)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("trace_dir")
  parser.add_argument("--calls", type=int, default=1, help="calls the trace holds")
  parser.add_argument("--top", type=int, default=12)
  args = parser.parse_args()
  print("\n".join(summarize(args.trace_dir, args.calls, args.top)))


if __name__ == "__main__":
  main()
