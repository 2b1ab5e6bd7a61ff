"""Metric outputs: TensorBoard's own reader gets back what was written, and a checkpoint's cut
leaves each curve once; JSON lines; the progress lines and bar."""
import errno
import io
import json
import os
import pathlib
import subprocess
import sys

import pytest

from enas_jax.io import events as events_lib
from enas_jax.io import metrics
from enas_jax.io.errors import UserError
from tests import tensorboard_view

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_events_read_back_by_tensorboard(tmp_path):
  writer = events_lib.EventWriter(str(tmp_path))
  writer.scalars(7, {"shared/loss": 2.5, "controller/reward": -1.25})
  png = b"\x89PNG\r\n\x1a\nnot really an image"
  writer.image(9, "arch/best", png, height=3, width=4)
  writer.close()
  assert tensorboard_view.curves(tmp_path) == {"shared/loss": [(7, 2.5)],
                                               "controller/reward": [(7, -1.25)]}
  assert tensorboard_view.images(tmp_path) == {"arch/best": [(9, 4, 3, png)]}
  first = tensorboard_view.events(tmp_path)[0]
  assert first.file_version == "brain.Event:2"


def test_a_checkpoints_cut_leaves_each_curve_once(tmp_path):
  """Launch 1 logs steps 1-6 and is checkpointed after step 4; launch 2 (resuming from step 4
  after the kill) logs 5-8 again in its own file, checkpointed after 6; launch 3 resumes from
  that checkpoint: cut back, TensorBoard sees 1..6 once, with launch 2's values for 5 and 6."""
  log = metrics.MetricsLog(str(tmp_path))
  for step in range(1, 7):
    log.write("shared", step, {"loss": float(step)})
    if step == 4:
      at_4 = log.position()
  log.close()
  assert at_4["metrics_bytes"] == len("".join(
      json.dumps({"phase": "shared", "step": s, "loss": float(s)}) + "\n" for s in range(1, 5)))
  events_lib.cut_back(str(tmp_path / "tb"), at_4["event_bytes"])
  os.truncate(tmp_path / "metrics.jsonl", at_4["metrics_bytes"])
  log = metrics.MetricsLog(str(tmp_path))  # launch 2: its own file, even within one second
  for step in range(5, 9):
    log.write("shared", step, {"loss": 10.0 * step})
    if step == 6:
      at_6 = log.position()
  log.close()
  assert len(at_6["event_bytes"]) == 2
  events_lib.cut_back(str(tmp_path / "tb"), at_6["event_bytes"])
  assert tensorboard_view.curves(tmp_path / "tb") == {
      "shared/loss": [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (5, 50.0), (6, 60.0)]}
  events_lib.cut_back(str(tmp_path / "tb"), at_4["event_bytes"])  # back to the older one
  assert tensorboard_view.curves(tmp_path / "tb") == {
      "shared/loss": [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]}
  assert len(list((tmp_path / "tb").iterdir())) == 1


def test_metrics_log_writes_json_lines_and_events(tmp_path):
  log = metrics.MetricsLog(str(tmp_path))
  log.write("shared", 3, {"loss": 1.5, "arch": "0 1 2"})
  log.write("shared", 4, {"loss": float("nan")})
  log.close()
  rows = metrics.read_metrics(str(tmp_path / "metrics.jsonl"))
  assert rows == [{"phase": "shared", "step": 3, "loss": 1.5, "arch": "0 1 2"},
                  {"phase": "shared", "step": 4, "loss": "nan"}]
  json.dumps(rows)
  assert len(list((tmp_path / "tb").iterdir())) == 1
  curves = tensorboard_view.curves(tmp_path / "tb")
  assert curves["shared/loss"][0] == (3, 1.5) and curves["shared/loss"][1][0] == 4


def test_the_log_reader_skips_a_line_being_written_and_names_a_damaged_one(tmp_path):
  path = tmp_path / "metrics.jsonl"
  assert metrics.read_metrics(str(path)) == []  # nothing written yet
  whole = ['{"phase": "shared", "step": 1, "loss": 2.5}', '{"phase": "epoch", "step": 1}']
  path.write_text("\n".join(whole) + '\n{"phase": "sha')  # a running search mid-line
  assert metrics.read_metrics(str(path)) == [{"phase": "shared", "step": 1, "loss": 2.5},
                                             {"phase": "epoch", "step": 1}]
  path.write_text(whole[0][:20] + "\n" + whole[1] + "\n")  # damaged before the last line
  with pytest.raises(UserError, match=f"{path} line 1 is not JSON: the metrics log is "
                                      f"damaged. Resume the run from its checkpoint"):
    metrics.read_metrics(str(path))
  path.write_bytes(b"\xff\xfe" + whole[0].encode() + b"\n" + whole[1].encode() + b"\n")
  with pytest.raises(UserError, match=f"line 1 is not JSON: the metrics log is damaged.*"
                                      f"delete it \\(sed -i '1d' {path}\\)"):
    metrics.read_metrics(str(path))  # bytes that are not UTF-8: a UnicodeDecodeError traceback
  # JSON that is not a record: the readers' r.get / r["step"] were AttributeError, KeyError and
  # TypeError tracebacks (`plot`, `report`); damage before the last line, skipped as the last
  for line in ("5", '["shared", 1]', '{"phase": "shared", "loss": 2.5}',
               '{"phase": "shared", "step": "1"}', '{"phase": "shared", "step": true}',
               '{"phase": 3, "step": 1}'):
    path.write_text(line + "\n" + whole[1] + "\n")
    with pytest.raises(UserError) as err:
      metrics.read_metrics(str(path))
    assert str(err.value).startswith(
        f"{path} line 1 is not a record of the log (a JSON object with a text `phase` and an "
        f"integer `step`): the metrics log is damaged. Resume the run from its checkpoint")
    path.write_text(whole[0] + "\n" + line)
    assert metrics.read_metrics(str(path)) == [json.loads(whole[0])]


def test_the_log_knows_when_its_file_was_deleted(tmp_path):
  log = metrics.MetricsLog(str(tmp_path))
  log.write("shared", 1, {"loss": 1.0})
  assert not log.removed()
  os.remove(tmp_path / "metrics.jsonl")
  assert log.removed()  # the run stops at its next checkpoint (`Runner.check_workdir`)
  log.close()
  assert not log.removed() and not metrics.SilentLog().removed()


def test_a_failed_write_to_the_log_or_the_events_names_the_file(tmp_path):
  """A write() or flush() that fails (a full disk, a file-size limit) raises an OSError without a
  file name; the log's and the events writer's name their file, so the paragraph says which."""
  log = metrics.MetricsLog(str(tmp_path))

  class Full(io.StringIO):
    def write(self, text):
      raise OSError(errno.ENOSPC, "No space left on device")

    flush = close = lambda self: self.write("")

  log._jsonl = Full()
  for call in (lambda: log.write("shared", 1, {"loss": 1.0}), log.flush, log.close):
    with pytest.raises(OSError) as err:
      call()
    assert (err.value.errno, err.value.filename) == (errno.ENOSPC, log.path)
  events = events_lib.EventWriter(str(tmp_path / "tb"))
  events._writer._py_recordio_writer = Full()
  for call in (lambda: events.scalars(1, {"a": 1.0}), events.flush, events.close):
    with pytest.raises(OSError) as err:
      call()
    assert err.value.filename == events.path
  assert os.path.dirname(events.path) == str(tmp_path / "tb")
  assert os.path.basename(events.path).startswith("events.out.tfevents.")


def test_the_event_writer_does_not_load_torch_when_it_is_installed(tmp_path):
  """tensorboardX's package would import torch (over a second, 200 MB); a stand-in torch on the
  path shows it is not loaded, and can still be imported afterwards."""
  (tmp_path / "torch").mkdir()
  (tmp_path / "torch" / "__init__.py").write_text("LOADED = True\nclass Tensor: pass\n")
  code = ("import sys; import enas_jax.io.events; print('torch' in sys.modules); "
          "import torch; print(torch.LOADED)")
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)]))
  result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  assert result.stdout.split() == ["False", "True"]


class _Clock:
  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


def test_progress_off_a_terminal_is_a_line_every_interval_with_rate_and_time_left():
  stream, clock = io.StringIO(), _Clock()  # a StringIO is not a terminal: lines
  lines = metrics.Progress(stream, every_s=30.0, clock=clock)
  lines.show("epoch 1 shared", 0, 100, force=True)  # starts the phase's clock: a line, no rate
  for done in range(1, 101):  # 2 steps per second
    clock.now += 0.5
    lines.show("epoch 1 shared", done, 100, {"ppl": 50.0}, force=done % 10 == 0)
  lines.clear()  # nothing to clear in line mode
  out = stream.getvalue().splitlines()
  # at t = 0, 30, 60 s (steps 0, 60, 120 would be; the phase ends at step 100 at t = 50 s)
  assert out == ["epoch 1 shared 0/100",
                 "epoch 1 shared 60/100  (2 steps/s, 0:00:20 left)  ppl=50"]
  # a new phase restarts the rate
  clock.now += 30
  lines.show("epoch 1 controller", 5, 50)
  assert stream.getvalue().splitlines()[-1] == "epoch 1 controller 5/50"


def test_progress_bar_on_a_terminal_and_off():
  stream, clock = io.StringIO(), _Clock()
  bar = metrics.Progress(stream, enabled=True, clock=clock)  # forced bar (a terminal's)
  bar.show("epoch 1", 0, 10)
  clock.now += 4.0
  bar.show("epoch 1", 5, 10, {"loss": 2.0}, force=True)
  assert stream.getvalue().endswith(
      "\repoch 1 [##########----------] 5/10  (1.25 steps/s, 0:00:04 left)  loss=2")
  silent, off = io.StringIO(), None
  off = metrics.Progress(silent, enabled=False)
  off.show("epoch 1", 3, 10, {"loss": 2.0}, force=True)
  off.clear()
  assert silent.getvalue() == ""
