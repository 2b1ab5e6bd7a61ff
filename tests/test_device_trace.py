"""The GPU check's trace summary (experiments/bench/device_trace.py) on a hand-made trace."""
import gzip
import json

from experiments.bench import device_trace


def _write(tmp_path, events):
  directory = tmp_path / "plugins" / "profile" / "run"
  directory.mkdir(parents=True)
  with gzip.open(directory / "perfetto_trace.json.gz", "wt") as f:
    json.dump({"traceEvents": events}, f)


def test_gpu_kernels_per_call_busy_time_and_longest_from_a_hand_made_trace(tmp_path):
  meta = [
      {"ph": "M", "pid": 1, "name": "process_name", "args": {"name": "/host:CPU"}},
      {"ph": "M", "pid": 2, "name": "process_name", "args": {"name": "/device:GPU:0"}},
      {"ph": "M", "pid": 2, "tid": 7, "name": "thread_name", "args": {"name": "Stream #7"}},
      {"ph": "M", "pid": 2, "tid": 8, "name": "thread_name", "args": {"name": "Stream #8"}},
      {"ph": "M", "pid": 2, "tid": 9, "name": "thread_name", "args": {"name": "XLA Ops"}},
      {"ph": "M", "pid": 1, "tid": 3, "name": "thread_name", "args": {"name": "python"}},
  ]
  kernel = lambda tid, ts, dur, name: {"ph": "X", "pid": 2, "tid": tid, "ts": ts, "dur": dur,
                                       "name": name}
  events = meta + [
      kernel(7, 0.0, 10.0, "gemm"), kernel(8, 5.0, 10.0, "fusion"),  # overlap: busy 0-15
      kernel(7, 30.0, 10.0, "gemm"), kernel(7, 90.0, 10.0, "fusion"),  # span 0-100
      kernel(9, 0.0, 100.0, "an XLA op line"),  # not a stream: not counted
      {"ph": "X", "pid": 1, "tid": 3, "ts": 0.0, "dur": 500.0, "name": "host"},
  ]
  _write(tmp_path, events)
  lines = device_trace.summarize(str(tmp_path), calls=2, top=5)
  # 4 kernels over 2 calls; 40 us summed; busy 15 + 10 + 10 = 35 us of a 100 us span
  assert lines[0] == ("# gpu kernels per call: 2 of them, 20 us summed; busy 18 us of a 50 us "
                      "span (35%)")
  assert lines[2].split() == ["#", "10.0", "1.0", "gemm"]
  assert lines[3].split() == ["#", "10.0", "1.0", "fusion"]
  assert len(lines) == 4


def test_busy_time_is_the_union_of_the_intervals():
  assert device_trace._busy([(0, 10), (5, 15), (20, 30), (22, 25)]) == 25
  assert device_trace._busy([]) == 0
