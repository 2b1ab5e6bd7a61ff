"""Checkpoint and resume: a SIGKILLed search resumed ends bit-identical to an uninterrupted one;
unreadable checkpoints, leftovers of a killed save, changed configs and divergence."""
import dataclasses
import errno
import io
import json
import logging
import os
import pathlib
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import types

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from enas_jax.configs import quickstart
from enas_jax.io import checkpoints as ckpt_lib
from enas_jax.io import metrics
from enas_jax.io import orbax_output
from enas_jax.io import errors
from enas_jax.io.errors import UserError
from enas_jax.io import signals as signals_lib
from enas_jax.io.signals import StopSignals
from enas_jax.run import config as run_config
from enas_jax.run import screen as screen_lib
from enas_jax.run import search as search_run
from enas_jax.run.state import TrainState
from tests import runs

ROOT = pathlib.Path(__file__).resolve().parent.parent
# 3 epochs of 12 shared + 6 controller steps; saves every 4 steps, records every 3 (so a
# checkpoint falls inside a record interval and its metric sums must be saved too).
OVERRIDES = {"search.epochs": 3, "search.shared_steps": 12, "search.controller_steps": 6,
             "search.log_every": 3, "checkpoint.every_steps": 4, "checkpoint.keep": 2}


def _cli_args(workdir):
  return ([sys.executable, "-m", "enas_jax.search", "--config=configs/quickstart.py:tiny",
           f"--workdir={workdir}"] + [f"--config.{k}={v}" for k, v in OVERRIDES.items()])


def _cfg(**changes):
  config = quickstart.get_config("tiny")
  for dotted, value in {**OVERRIDES, **changes}.items():
    section, field = dotted.split(".")
    config[section][field] = value
  return run_config.search_config(config)


def _run(workdir, cfg=None):
  out = io.StringIO()
  run = search_run.SearchRun(cfg or _cfg(), str(workdir), out, metrics.Progress(enabled=False))
  summary = run.execute()
  return run, summary, out.getvalue()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """An uninterrupted run, in a subprocess like the killed one."""
  workdir = tmp_path_factory.mktemp("resume") / "reference"
  result = subprocess.run(_cli_args(workdir), cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=600)
  assert result.returncode == 0, result.stderr
  return workdir


def test_sigkill_mid_epoch_then_resume_is_bit_identical(reference, tmp_path):
  workdir = tmp_path / "killed"
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  runs.kill_after_first_checkpoint(_cli_args(workdir), workdir, ROOT, env)
  resumed = subprocess.run(_cli_args(workdir), cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=600)
  assert resumed.returncode == 0, resumed.stderr
  where = re.search(r"resuming from checkpoint (\d+) .*: epoch (\d+), (\w+) phase, step (\d+) of "
                    r"it", resumed.stdout)
  # it resumed inside an epoch (a mid-phase step), from a checkpoint before the run's end
  assert where and int(where.group(4)) > 0 and int(where.group(1)) < 3 * 18, resumed.stdout
  runs.assert_same_run(reference, workdir)


def _start_and_wait_for_a_checkpoint(workdir, env):
  proc = subprocess.Popen(_cli_args(workdir), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  if not _wait_for_a_checkpoint(proc, workdir):
    raise AssertionError(f"no checkpoint appeared: {proc.communicate()}")
  return proc


def _closing(fd):
  """The start of a command line whose Python runs with descriptor `fd` closed (`>&-`)."""
  return [sys.executable, "-c", f"import os, sys; os.close({fd}); "
          f"os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"]


def test_64_bit_mode_and_a_closed_standard_output_run_the_same_search(reference, tmp_path):
  """Two ways a command's environment can differ from a terminal user's. JAX_ENABLE_X64, set
  globally in many scientific set-ups, made every search end in a dtype traceback (a scan's
  float32 carry came back float64): the mode is now turned off with a note. A standard output
  closed by the caller (`>&-`, a job launcher) leaves Python's `sys.stdout` None, and the
  search's first line ended in an AttributeError, exit 1: it now goes to the null device. The
  run is the one without either, bit for bit."""
  workdir = tmp_path / "x64"
  result = subprocess.run(_closing(1) + _cli_args(workdir)[1:], cwd=ROOT, capture_output=True,
                          text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), JAX_ENABLE_X64="1"))
  assert result.returncode == 0, result.stderr
  assert "note: JAX_ENABLE_X64 is set in the environment" in result.stderr
  assert "Traceback" not in result.stderr
  runs.assert_same_run(reference, workdir)


def _wait_for(proc, condition):
  """Whether `condition()` became true within 300 s while `proc` runs."""
  deadline = time.time() + 300
  while time.time() < deadline and proc.poll() is None:
    if condition():
      return True
    time.sleep(0.005)
  return False


def _wait_for_a_checkpoint(proc, workdir):
  """Whether `proc`'s run wrote a checkpoint in `workdir` (within 300 s, while it runs)."""
  checkpoints = workdir / "checkpoints"
  return _wait_for(proc, lambda: checkpoints.is_dir() and any(
      p.name.isdigit() for p in checkpoints.iterdir()))


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_saves_where_it_stopped_and_resume_is_bit_identical(reference, tmp_path, sig,
                                                                   code):
  workdir = tmp_path / "stopped"
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  proc = _start_and_wait_for_a_checkpoint(workdir, env)
  first = max(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
  proc.send_signal(sig)
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == code, err
  assert "Traceback" not in err and not (workdir / "summary.json").exists()
  said = " ".join(err.split())  # one paragraph, wrapped wherever its paths fall
  stop = re.search(r"stopped by (\w+) at epoch (\d+), step (\d+); checkpoint (\d+) saved", said)
  assert stop and stop.group(1) == sig.name, err
  assert "run the same command to resume" in said
  saved = int(stop.group(4))
  assert saved >= first and (workdir / "checkpoints" / str(saved)).is_dir()
  _, _, meta = runs.latest_checkpoint(workdir)
  assert meta["position"]["shared_steps"] + meta["position"]["controller_steps"] == int(
      stop.group(3))  # the checkpoint is where it says it stopped
  resumed = subprocess.run(_cli_args(workdir), cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=600)
  assert resumed.returncode == 0, resumed.stderr
  assert f"resuming from checkpoint {saved}" in resumed.stdout
  runs.assert_same_run(reference, workdir)


def test_a_second_signal_exits_at_once(monkeypatch):
  exits = []
  monkeypatch.setattr(os, "_exit", exits.append)
  with StopSignals() as stop:
    assert signal.getsignal(signal.SIGTERM) == stop._handle  # installed while entered
    stop._handle(signal.SIGINT, None)
    assert stop.received == signal.SIGINT and not exits  # the loop stops at its next step
    stop._handle(signal.SIGTERM, None)
    assert exits == [143]  # the second: at once
  assert signal.getsignal(signal.SIGTERM) != stop._handle  # restored


def test_signals_during_a_save_are_said_at_once(monkeypatch, capfd):
  """A checkpoint's save holds standard error (what orbax prints is passed on after it): the
  lines a stop signal prints waited for the save's end, and a second signal during the save
  exited at once with neither line ever shown."""
  def exit_at_once(code):
    raise SystemExit(code)

  monkeypatch.setattr(os, "_exit", exit_at_once)
  with StopSignals() as stop, orbax_output.stderr_held(lambda err: False):
    stop._handle(signal.SIGINT, None)
    with pytest.raises(SystemExit) as exited:
      stop._handle(signal.SIGINT, None)
    said = capfd.readouterr().err  # while the save still holds fd 2
  assert exited.value.code == 130
  assert said == ("\nSIGINT: saving a checkpoint after the current step, then stopping (send it "
                  "again to stop at once).\n\nSIGINT again: stopping at once, without saving.\n")


def _drain(fd, stop):
  """Reads a pseudo-terminal's output until `stop` is set (a terminal that is read, as a shell's
  is, so the run never blocks on a full buffer)."""
  while not stop.is_set():
    if select.select([fd], [], [], 0.05)[0]:
      try:
        os.read(fd, 65536)
      except OSError:
        return


# The search, run by a child that first makes its checkpoint saves pause, the second one for 2 s
# after creating the file named by its first argument (a terminal hung up during a save).
_PAUSING_SAVES = """
import pathlib, runpy, sys, time
import orbax.checkpoint as ocp
marker, saves, original = pathlib.Path(sys.argv.pop(1)), [], ocp.CheckpointManager.save
def save(self, *args, **kwargs):
  saves.append(1)
  if len(saves) == 2:
    marker.touch()
    time.sleep(2)
  return original(self, *args, **kwargs)
ocp.CheckpointManager.save = save
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def test_a_closed_terminal_saves_where_it_stopped_and_resume_is_bit_identical(reference,
                                                                              tmp_path):
  """An ssh connection or terminal window closed under a run (no tmux, no nohup): the terminal
  hangs up, so the kernel sends SIGHUP, and the shell sends another. It used to kill the run at
  once (the steps since the last checkpoint lost); now it saves and stops, exit 129, though
  every write to the hung-up terminal fails (the run's output then goes to the null device).
  Here the terminal hangs up during a checkpoint's save (the run's second, paused for it): the
  save holds standard error and puts it back afterwards, and the terminal used to come back
  with it, ending the run on the next write's I/O error (this test was flaky when it hung up
  whenever the first checkpoint appeared, which was sometimes during the next save)."""
  workdir = tmp_path / "hung_up"
  marker = tmp_path / "saving"
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  main, terminal = pty.openpty()
  # the run leads its own session, and the terminal is its controlling one (set in the child,
  # then the command: a `preexec_fn` would fork this multithreaded JAX process)
  own_the_terminal = [sys.executable, "-c", "import fcntl, os, sys, termios; "
                      "fcntl.ioctl(1, termios.TIOCSCTTY, 0); os.execv(sys.executable, "
                      "[sys.executable, *sys.argv[1:]])"]
  command = ["-c", _PAUSING_SAVES, str(marker)] + _cli_args(workdir)[2:]  # "enas_jax.search", ...
  proc = subprocess.Popen(own_the_terminal + command, cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal,
                          start_new_session=True)
  os.close(terminal)
  stop = threading.Event()
  reader = threading.Thread(target=_drain, args=(main, stop))
  reader.start()
  saving = _wait_for(proc, marker.exists)
  stop.set()
  reader.join()
  assert saving, "the run never reached its second save"
  os.close(main)  # the terminal goes away: the kernel hangs it up and sends SIGHUP
  time.sleep(0.05)
  proc.send_signal(signal.SIGHUP)  # then the shell passes one on too
  assert proc.wait(timeout=300) == 128 + signal.SIGHUP
  assert not (workdir / "summary.json").exists()
  resumed = subprocess.run(_cli_args(workdir), cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=600)
  assert resumed.returncode == 0, resumed.stderr
  assert "resuming from checkpoint" in resumed.stdout
  runs.assert_same_run(reference, workdir)


def test_a_hang_up_is_ignored_under_nohup_and_never_stops_at_once(monkeypatch):
  """`nohup` starts a run with SIGHUP ignored: it stays ignored. A second SIGHUP (the kernel's
  after the shell's) is not a request to stop at once, as a second SIGTERM or SIGINT is."""
  exits = []
  monkeypatch.setattr(os, "_exit", exits.append)
  previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
  try:
    with StopSignals():
      assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    with StopSignals() as stop:
      assert signal.getsignal(signal.SIGHUP) == stop._handle
      stop._handle(signal.SIGHUP, None)
      stop._handle(signal.SIGHUP, None)
      assert stop.received == signal.SIGHUP and not exits
      stop._handle(signal.SIGTERM, None)
      assert exits == [143]
  finally:
    signal.signal(signal.SIGHUP, previous)


def test_outside_a_run_loop_a_signal_raises_once_per_hang_up():
  """Outside a run's loop a stop signal raises `Interrupted` (the command ends through its
  cleanup); the second hang-up, arriving during that cleanup, does not raise again."""
  handlers = {s: signal.getsignal(s) for s in signals_lib.STOP_SIGNALS}
  try:
    signals_lib.interrupt_on_signals()
    assert signal.getsignal(signal.SIGINT) == handlers[signal.SIGINT]  # Python's own
    interrupt = signal.getsignal(signal.SIGHUP)
    with pytest.raises(signals_lib.Interrupted) as raised:
      interrupt(signal.SIGHUP, None)
    assert raised.value.signum == signal.SIGHUP
    interrupt(signal.SIGHUP, None)  # ignored
    with pytest.raises(signals_lib.Interrupted):
      signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)
  finally:
    for signum, handler in handlers.items():
      signal.signal(signum, handler)


SWALLOWING_SCRIPT = """
import gc, os, signal, sys, time
from enas_jax.io import errors

# Python's own handlers, whatever this process inherited (a shell's background job ignores
# SIGINT, `nohup` SIGHUP)
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGHUP, signal.SIG_DFL)

def main(_):
  fired = []
  def callback(phase, info):  # as jax's gc callback: a signal handled in it cannot raise
    if phase == "start" and not fired:
      fired.append(True)
      os.kill(os.getpid(), int(sys.argv[1]))
      for _ in range(100000):  # the handler runs here, inside the callback
        pass
  gc.callbacks.append(callback)
  gc.collect()
  gc.callbacks.remove(callback)
  assert fired
  time.sleep(5)
  print("ran on to its end")

errors.run_main(main)([])
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_handled_inside_a_garbage_collector_callback_still_stops(sig):
  """A stop signal handled while the garbage collector ran a callback (jax's, in a study's
  compile) raised where Python cannot pass an exception on: it was printed as "Exception
  ignored" with a traceback, and the command ran to its end with exit status 0. It is now
  delivered again outside the callback: one line, and 128 + the signal's number."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  result = subprocess.run([sys.executable, "-c", SWALLOWING_SCRIPT, str(int(sig))], cwd=root,
                          env=dict(os.environ, PYTHONPATH=root), capture_output=True, text=True,
                          timeout=120)
  assert result.returncode == 128 + sig, (result.returncode, result.stderr)
  assert "Traceback" not in result.stderr and "ignored" not in result.stderr, result.stderr
  assert result.stderr.strip() == (f"interrupted ({sig.name}); what was saved before it is "
                                   f"kept."), result.stderr
  assert "ran on" not in result.stdout


def test_a_scheduler_signal_ahead_of_the_time_limit_stops_at_a_checkpoint():
  """Slurm's `--signal=B:USR1@120` (or USR2) warns a job before its time limit; their default
  action killed the run at once. Now they stop it like SIGTERM (exit 138, 140)."""
  for signum in (signal.SIGUSR1, signal.SIGUSR2):
    with StopSignals() as stop:
      assert signal.getsignal(signum) == stop._handle
      stop._handle(signum, None)
      assert stop.received == signum and stop.name == signum.name
    assert signal.getsignal(signum) == signal.SIG_DFL


def test_disk_full_during_a_save_is_one_paragraph_and_the_rerun_resumes(reference, tmp_path,
                                                                        monkeypatch):
  """orbax reports a full disk from tensorstore's writer as a ValueError carrying the OS text;
  the patched save fails the third checkpoint that way after leaving a partial directory."""
  workdir = tmp_path / "full"
  real_save, calls = ocp.CheckpointManager.save, []

  def save_until_the_disk_fills(manager, step, *args, **kwargs):
    calls.append(step)
    if len(calls) == 3:
      (pathlib.Path(manager.directory) / f"{step}.orbax-checkpoint-tmp").mkdir()
      raise ValueError(f"RESOURCE_EXHAUSTED: Failed writing: \"{manager.directory}/{step}.orbax-"
                       f"checkpoint-tmp/d/1\": No space left on device [os_error_code='28']")
    return real_save(manager, step, *args, **kwargs)

  monkeypatch.setattr(ocp.CheckpointManager, "save", save_until_the_disk_fills)
  with pytest.raises(UserError) as err:
    _run(workdir)
  message = str(err.value)
  assert f"Cannot write checkpoint {calls[2]} in" in message
  assert "No space left on device" in message and "run the same command" in message
  assert f"checkpoints ({calls[0]}, {calls[1]}) are untouched" in message
  assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == sorted(
      str(c) for c in calls[:2])  # the partial write is gone, the earlier ones are there
  monkeypatch.setattr(ocp.CheckpointManager, "save", real_save)  # space freed
  _, _, out = _run(workdir)
  assert f"resuming from checkpoint {calls[1]}" in out
  runs.assert_same_run(reference, workdir)


def test_any_write_error_at_the_command_is_one_paragraph(capsys):
  def main(argv):
    raise OSError(errno.ENOSPC, "No space left on device", "/w/metrics.jsonl")

  before = {s: signal.getsignal(s) for s in signals_lib.STOP_SIGNALS}
  with pytest.raises(SystemExit) as exit_info:
    errors.run_main(main)([])
  # the handlers run_main put in are gone again (they leaked into later tests of the process)
  assert {s: signal.getsignal(s) for s in signals_lib.STOP_SIGNALS} == before
  assert exit_info.value.code == errors.USER_ERROR_EXIT
  err = capsys.readouterr().err
  assert err.startswith("error: Cannot write /w/metrics.jsonl: No space left on device.")
  assert "run the same command" in err and "\n\n" not in err and "Traceback" not in err
  assert "pass another --workdir" in err and "resumes from the newest checkpoint" in err
  # a command that writes a file, not a run that checkpoints: no workdir nor checkpoint to name
  with pytest.raises(SystemExit):
    errors.run_main(main, resumes=False)([])
  err = " ".join(capsys.readouterr().err.split())
  assert err == ("error: Cannot write /w/metrics.jsonl: No space left on device. Nothing saved "
                 "before it is lost: free space on that disk (or fix its permissions) and run the "
                 "same command.")

  def bug(argv):
    raise OSError(errno.ENOENT, "No such file", "/x")  # not a write failure: not hidden

  with pytest.raises(OSError):
    errors.run_main(bug)([])


def test_only_a_run_that_checkpoints_says_a_failed_write_resumes(tmp_path):
  """A write refused by the file-size limit (`ulimit -f`: EFBIG) in `search` and in `show`:
  the search's paragraph (at its first file over 1 KiB) names the workdir and the resume;
  `show`, which writes pictures, not a workdir, says neither (its paragraph had told it to pass
  another --workdir)."""
  commands = {"search": (["enas_jax.search", "--config=configs/quickstart.py:tiny",  # past the
                          f"--workdir={tmp_path / 'search'}"], 1),  # workdir's empty probe
              "show": (["enas_jax.show", "0 0 0 0 2 1 1", f"--output={tmp_path / 'cell'}"], 0)}
  root = pathlib.Path(__file__).resolve().parent.parent
  env = dict(os.environ, PYTHONPATH=str(root), JAX_ENABLE_COMPILATION_CACHE="false")
  # the limit set by a shell (in 1 KiB blocks), not a preexec_fn: this process is multithreaded
  procs = {name: subprocess.Popen(
      ["bash", "-c", f'ulimit -f {blocks}; trap "" XFSZ; exec "$0" "$@"', sys.executable, "-m",
       *args], cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for name, (args, blocks) in commands.items()}
  errs = {}
  for name, proc in procs.items():
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == errors.USER_ERROR_EXIT, err
    errs[name] = " ".join(err.split())
  assert errs["search"].startswith(f"error: Cannot write {tmp_path / 'search'}")
  assert errs["search"].endswith("(or fix its permissions, or pass another --workdir) and run "
                                 "the same command; it resumes from the newest checkpoint.")
  assert errs["show"].startswith(f"error: Cannot write {tmp_path / 'cell'}.dot: File too large.")
  assert errs["show"].endswith("(or fix its permissions) and run the same command."), errs["show"]


@pytest.fixture(scope="module")
def four_epochs(reference, tmp_path_factory):
  """The reference run continued for a fourth epoch."""
  workdir = tmp_path_factory.mktemp("resume") / "four_epochs"
  shutil.copytree(reference, workdir)
  _run(workdir, _cfg(**{"search.epochs": 4}))
  return workdir


def test_device_memory_running_out_outside_a_run_is_one_paragraph(capsys):
  """A report (or any command) whose device runs out of memory outside a run's loop: XLA's
  RESOURCE_EXHAUSTED was a traceback; now one paragraph, exit 2 (simulated: a CPU has no device
  memory to run out of). Other JAX errors keep their traceback: they are bugs."""
  def main(argv):
    raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to "
                                     "allocate 1024 bytes.\nmore lines")

  with pytest.raises(SystemExit) as exit_info:
    errors.run_main(main)([])
  assert exit_info.value.code == errors.USER_ERROR_EXIT
  assert " ".join(capsys.readouterr().err.split()) == (
      "error: The device ran out of memory (RESOURCE_EXHAUSTED: Out of memory while trying to "
      "allocate 1024 bytes.). " + errors.OUT_OF_MEMORY_ADVICE)

  def bug(argv):
    raise jax.errors.JaxRuntimeError("INVALID_ARGUMENT: a shape")

  with pytest.raises(jax.errors.JaxRuntimeError):
    errors.run_main(bug)([])


def test_output_piped_to_a_reader_that_goes_away_ends_quietly():
  """`python -m enas_jax.show ... | head -2`: the reader closes the pipe and the next print
  raised BrokenPipeError, a traceback (and another at Python's exit flush). Now exit 141, as a
  shell reports SIGPIPE, and nothing on stderr."""
  script = ("from enas_jax.io.errors import run_main\n"
            "run_main(lambda argv: [print('x' * 1000) for _ in range(10000)])([])\n")
  proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(ROOT)))
  proc.stdout.close()  # the reader goes away before the first line
  err = proc.stderr.read().decode()
  assert proc.wait(timeout=60) == 128 + signal.SIGPIPE and err == ""


def test_a_closed_standard_error_is_the_null_device(tmp_path):
  """`2>&-` (or a job launcher that closes it): Python leaves `sys.stderr` None, and a command's
  first line there ended in an AttributeError, exit 1 (unseen). Now it ends as it would: here a
  config mistake, exit 2, nothing written. (A closed standard output: the 64-bit mode's test.)"""
  result = subprocess.run(_closing(2) + ["-m", "enas_jax.search", "--config=configs/nope.py",
                                         f"--workdir={tmp_path / 'w'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
  assert result.returncode == 2 and result.stdout == "", result.stdout
  assert not (tmp_path / "w").exists()


def test_ctrl_c_outside_a_run_loop_is_one_line(capsys):
  """SIGINT during a command's setup, a report or a picture (outside the loops' own handling):
  one line, exit 130, no traceback."""
  def main(argv):
    raise KeyboardInterrupt

  handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
  try:
    with pytest.raises(SystemExit) as exit_info:
      errors.run_main(main)([])
  finally:  # run_main makes later signals end the process at once: not this test process
    for signum, handler in handlers.items():
      signal.signal(signum, handler)
  assert exit_info.value.code == 130
  assert capsys.readouterr().err == "interrupted (SIGINT); what was saved before it is kept.\n"


def test_speed_only_fields_may_change_on_resume(four_epochs, reference, tmp_path):
  """A run may be resumed computing the same values another way (e.g. a CPU run resumed on a GPU,
  where the default "auto" dispatch means "select"): it goes on and says so. Another activation
  dispatch changes no bit (on the CPU); another scan unrolling is accepted too, but rounds
  differently (XLA fuses across the unrolled steps: about 3e-8 in the weights after an epoch)."""
  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  _, _, out = _run(workdir, _cfg(**{"search.epochs": 4, "model.activation_dispatch": "select"}))
  assert "model.activation_dispatch ('auto' -> 'select')" in out
  runs.assert_same_run(four_epochs, workdir)
  _, _, out = _run(workdir, _cfg(**{"search.epochs": 4, "model.scan_unroll": 3}))
  assert "is complete" in out and "model.scan_unroll (1 -> 3)" in out


def test_a_resume_on_other_data_is_refused_and_other_software_is_said(reference, tmp_path,
                                                                       monkeypatch):
  """Each checkpoint keeps a hash of the data (`data.fingerprint`) and the JAX version and
  device. A corpus regenerated (or a folder of images changed) under the same config resumed
  silently, mixing two datasets in one run; now it is refused. The same data moved elsewhere
  resumes (a changed `data.dir` was refused). Other software resumes, with a note that the
  continuation need not be bit-exact."""
  from enas_jax.data import text
  from enas_jax.run import runner
  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  _, _, meta = runs.latest_checkpoint(workdir)
  assert meta["data"] == text.Corpus.fingerprint(_quickstart_corpus()) and meta["software"] == {
      "jax": jax.__version__, "device": jax.devices()[0].device_kind}
  real = text.Corpus.fingerprint
  monkeypatch.setattr(text.Corpus, "fingerprint", lambda corpus: "0" * 64)
  with pytest.raises(UserError, match=f"The data this search reads differs from the data its "
                                      f"checkpoints in {workdir / 'checkpoints'} were trained on "
                                      f"\\(fingerprint {meta['data'][:12]}, now 000000000000\\)"):
    _run(workdir)
  from enas_jax.report import scoring
  config = json.loads((workdir / "config.json").read_text())
  with pytest.raises(UserError, match="differs from the data its checkpoints .* The report "
                                      "would score the search's cells on data it never saw"):
    scoring.newest_state(scoring.search_run(config, str(workdir)))
  monkeypatch.setattr(text.Corpus, "fingerprint", real)
  # the same data elsewhere (a corpus moved): `data.dir` may change, its content checked
  _, _, out = _run(workdir, _cfg(**{"data.dir": "/moved/corpus"}))
  assert "note: resuming with changed fields: data.dir ('data/ptb' -> '/moved/corpus')" in out
  monkeypatch.setattr(runner, "software", lambda: {"jax": "9.9", "device": "TPU v9"})
  _, _, out = _run(workdir)
  assert (f"note: the checkpoint was saved under jax {jax.__version__} on "
          f"{jax.devices()[0].device_kind}; this run uses jax 9.9 on TPU v9: it goes on") in out


def _quickstart_corpus():
  from enas_jax.tasks.language.data import load_corpus
  return load_corpus(_cfg().data)


def test_unreadable_latest_checkpoint_and_killed_save_leftovers(four_epochs, reference, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  checkpoints = workdir / "checkpoints"
  steps = sorted(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit())
  assert len(steps) == 2  # checkpoint.keep
  for path in (checkpoints / str(steps[-1])).rglob("*"):
    if path.is_file():
      path.write_bytes(b"garbage")
  (checkpoints / f"{steps[-1] + 5}.orbax-checkpoint-tmp-1234").mkdir()  # a save that was killed
  # One more epoch: resumes from the previous checkpoint, redoes the lost steps, goes on.
  _, _, out = _run(workdir, _cfg(**{"search.epochs": 4}))
  assert f"checkpoint {steps[-1]} could not be read" in out
  assert (checkpoints / f"{steps[-1]}.unreadable").is_dir()  # kept aside, not deleted
  runs.assert_same_run(four_epochs, workdir)


def test_the_checkpointer_clears_a_killed_saves_folder_before_it_returns(tmp_path):
  """orbax removes a killed save's temporary folder in a thread of its own; the Checkpointer
  waits for it as it is made, so that a run that ends at once (a config too large for memory)
  leaves no thread to fail as Python exits (a traceback after the run's paragraph)."""
  from enas_jax.io import checkpoints
  leftovers = [tmp_path / "checkpoints" / f"{s}.orbax-checkpoint-tmp-{s}" for s in range(20)]
  for path in leftovers:
    (path / "arrays").mkdir(parents=True)
  checkpoints.Checkpointer(str(tmp_path / "checkpoints"), keep=2)
  assert not any(path.exists() for path in leftovers)


def _remove(key):
  def change(meta):
    del meta["position"][key]
  return change


METADATA_DAMAGE = [  # (damage: changes a checkpoint's metadata in place or returns another, words)
    (lambda m: {}, "has no leaves list"), (lambda m: [], "is list, not an object"),
    (lambda m: {**m, "leaves": 5}, "has no leaves list"),
    (lambda m: {**m, "leaves": [5]}, "has a leaf table whose rows are not lists"),
    (lambda m: {**m, "log": 5},
     "has a log position that is not {metrics_bytes: int, event_bytes: {...}}"),
    (lambda m: {**m, "data": 5}, "has a data fingerprint that is not text"),
    (_remove("epoch"), "has no epoch in its loop position"),
    (lambda m: m["position"].update(epoch="2"),
     "has epoch = '2' in its loop position, not of type int"),
    (lambda m: m["position"].update(epoch=True),
     "has epoch = True in its loop position, not of type int"),
    (lambda m: m["position"].update(phase="bogus"),
     "has phase = 'bogus', not one of shared, controller, derive"),
    (lambda m: m["position"].update(train_cursor={"x": 1}),
     "has train_cursor = {'x': 1} in its loop position, not a data cursor"),
    (lambda m: m["position"].update(history=None),
     "has history = None in its loop position, not of type list[dict[str, Any]]")]


def _damaged(meta, damage):
  meta = json.loads(json.dumps(meta))
  changed = damage(meta)
  return meta if changed is None else changed


def _metadata_problem(meta):
  return ckpt_lib.meta_problem(meta) or search_run.SearchState.position_problem(meta["position"])


def test_what_is_wrong_with_metadata_a_run_did_not_write_is_named(reference):
  """Each kind of metadata that is JSON but not what a run saves, named; the run's own passes
  (and a training's position is checked against its own fields)."""
  path = max((p for p in (reference / "checkpoints").iterdir() if p.name.isdigit()),
             key=lambda p: int(p.name)) / "meta" / "metadata"
  meta = json.loads(path.read_text())
  assert _metadata_problem(meta) is None
  for damage, problem in METADATA_DAMAGE:
    assert _metadata_problem(_damaged(meta, damage)) == problem
  assert ckpt_lib.meta_problem({**meta, "log": None, "data": None}) is None  # older checkpoints
  position = {"epoch": 1, "epoch_step": 0, "train_steps": 3, "cursor": {"window": 2}}
  assert TrainState.position_problem(position) is None
  assert TrainState.position_problem({**position, "train_steps": 3.0}) == (
      "has train_steps = 3.0 in its loop position, not of type int")


@pytest.mark.parametrize("case", [0, 4, 9])
def test_a_checkpoint_whose_metadata_a_run_did_not_write_is_moved_aside(reference, tmp_path,
                                                                         case):
  """Metadata that is JSON but not what a run saves (`{}`, a list, no leaf table, a field of
  another type) was a KeyError, AttributeError or TypeError traceback on resume or later in
  the loop; now the checkpoint is unreadable like a damaged one: moved aside on resume, the one
  before it restored; skipped by the report's reader."""
  damage, problem = METADATA_DAMAGE[case]
  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  checkpoints = workdir / "checkpoints"
  steps = sorted(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit())
  path = checkpoints / str(steps[-1]) / "meta" / "metadata"
  path.write_text(json.dumps(_damaged(json.loads(path.read_text()), damage)))
  out = io.StringIO()
  run = search_run.SearchRun(_cfg(), str(workdir), out, metrics.Progress(enabled=False))
  assert ckpt_lib.read_latest(str(checkpoints), run.state_shapes(),
                              search_run.SearchState.position_problem)[2] == steps[-2]
  assert run.restore(search_run.SearchState)[1] == steps[-2]
  assert out.getvalue().startswith(
      f"warning: checkpoint {steps[-1]} could not be read (ValueError: its metadata {problem}); "
      f"moved it to {checkpoints / f'{steps[-1]}.unreadable'}")


def _wrapped(err):
  """`err` as orbax passes it on: raised while handling it, in another type."""
  try:
    raise err
  except Exception:
    try:
      raise ValueError("restore failed")
    except ValueError as outer:
      return outer


@pytest.mark.parametrize("raised, words", [
    (MemoryError("Unable to allocate 4.00 GiB for an array with shape (1073741824,) and data "
                 "type float32"),
     "Unable to allocate 4.00 GiB for an array with shape (1073741824,) and data type float32"),
    (_wrapped(MemoryError()), "MemoryError"),
    (_wrapped(jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to "
                                         "allocate 85899345920 bytes.\nmore")),
     "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 85899345920 bytes.")])
def test_memory_running_out_while_reading_a_checkpoint_keeps_it(reference, tmp_path,
                                                                monkeypatch, raised, words):
  """A read of a good checkpoint that ran out of memory was taken for damage: the checkpoint
  moved aside as unreadable and the one before it read (each in turn, under the same lack of
  memory, down to a fresh start). Now one paragraph, every checkpoint where it was; with the
  memory back, the run resumes from the newest. The report's reader says the same."""
  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  checkpoints = workdir / "checkpoints"
  before = sorted(p.name for p in checkpoints.iterdir())
  newest = max(int(name) for name in before if name.isdigit())
  real_restore = ocp.CheckpointManager.restore

  def out_of_memory(manager, step, *args, **kwargs):
    raise raised

  monkeypatch.setattr(ocp.CheckpointManager, "restore", out_of_memory)
  run = search_run.SearchRun(_cfg(), str(workdir), io.StringIO(), metrics.Progress(enabled=False))
  expected = (f"Reading checkpoint {newest} in {checkpoints} ran out of memory ({words}); the "
              f"checkpoint is kept as it is. Free memory (or raise this process's limit, "
              f"`ulimit -v`, or use a device with more) and run the same command. If it fails "
              f"so with memory to spare, the checkpoint is damaged: `mv {checkpoints / str(newest)} "
              f"{checkpoints / str(newest)}.unreadable` and the run resumes from the one before it.")
  with pytest.raises(UserError) as err:
    run.restore(search_run.SearchState)
  assert str(err.value) == expected
  with pytest.raises(UserError) as err:
    ckpt_lib.read_latest(str(checkpoints), run.state_shapes(),
                         search_run.SearchState.position_problem)
  assert str(err.value) == expected
  assert sorted(p.name for p in checkpoints.iterdir()) == before  # nothing moved aside
  monkeypatch.setattr(ocp.CheckpointManager, "restore", real_restore)  # memory freed
  assert run.restore(search_run.SearchState)[1] == newest
  assert errors.ran_out_of_memory(_wrapped(OSError(errno.ENOMEM, "Cannot allocate memory")))
  assert errors.ran_out_of_memory(_wrapped(ValueError("a damaged header"))) is None


STRAGGLERS = """
import gc, io, sys, time
from enas_jax.io import metrics, orbax_output
from enas_jax.run import search as search_run
from tests.test_resume import _cfg
orbax_output.STRAGGLERS_WAIT_S = 0.0  # no wait: every straggler comes after the failed restore
run = search_run.SearchRun(_cfg(), sys.argv[1], io.StringIO(), metrics.Progress(enabled=False))
print(run.checkpointer.restore_latest(run.state_shapes(), lambda meta: None)[2], flush=True)
time.sleep(2)
gc.collect()  # orbax's abandoned tasks, each logged by asyncio when it is collected
"""


def test_an_unreadable_checkpoints_stragglers_print_nothing_however_late(reference, tmp_path):
  """A checkpoint whose array files are cut short: tensorstore's callbacks for the failed read
  still reach orbax's closed event loop after the restore has failed, each a "RuntimeError:
  Event loop is closed" traceback, and asyncio logs each abandoned task of orbax's when it is
  collected ("Task exception was never retrieved" and a traceback). They were held back only
  during a 0.5 s wait; some came after it (the CLI's test caught one: tests/test_search_cli.py).
  Here with no wait at all, and the collector run: none printed, the previous checkpoint
  restored."""
  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  steps = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
  for path in (workdir / "checkpoints" / str(steps[-1])).rglob("d/*"):
    path.write_bytes(path.read_bytes()[:100])
  result = subprocess.run([sys.executable, "-c", STRAGGLERS, str(workdir)], cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.split() == [str(steps[-2])]
  assert "Event loop is closed" not in result.stderr, result.stderr[-3000:]
  assert "Traceback" not in result.stderr, result.stderr[-3000:]


def test_after_a_failed_read_only_its_stragglers_reports_are_dropped(monkeypatch, caplog):
  """What `orbax_output.stragglers_dropped` drops (the test above cannot make asyncio collect
  orbax's abandoned tasks on demand: a CI run caught their report, "ERROR:asyncio:Task exception
  was never retrieved" and a ValueError traceback, after the test had passed here many times)."""
  seen = []
  monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(str(u.exc_value)))
  orbax_output.stragglers_dropped()
  orbax_output.stragglers_dropped()  # a second failure: installed once
  for text in ("Event loop is closed", "another"):
    sys.unraisablehook(types.SimpleNamespace(exc_value=RuntimeError(text)))
  assert seen == ["another"]
  with caplog.at_level(logging.ERROR, logger="asyncio"):
    logging.getLogger("asyncio").error("Task exception was never retrieved\nfuture: <Task>")
    logging.getLogger("asyncio").error("Unclosed client session")
  assert [r.getMessage() for r in caplog.records] == ["Unclosed client session"]


def test_a_log_that_a_crash_left_short_or_zeroed_is_cut_at_its_last_whole_line(
    four_epochs, reference, tmp_path):
  """A host that crashes can lose the end of metrics.jsonl that the system had not written out,
  or leave those blocks as zeros. Cutting the log back to the checkpoint's recorded size then
  extended it with zeros (or kept them), which joined the next record and damaged the log for
  the report and the plot. Now the log is cut at its last whole line before the gap, the run
  says so, and appends the same records as a run that never crashed."""
  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  log = workdir / "metrics.jsonl"
  data = log.read_bytes()
  whole = data.index(b"\n", len(data) // 3) + 1
  log.write_bytes(data[:whole + 10] + b"\0" * 100)  # half a line, then unwritten blocks
  _, _, out = _run(workdir, _cfg(**{"search.epochs": 4}))
  assert f"metrics.jsonl holds {whole:,} whole bytes of the " in out
  rows, expected = runs.metric_rows(workdir), runs.metric_rows(four_epochs)
  kept = data[:whole].count(b"\n")
  assert rows[:kept] == expected[:kept]
  assert rows[kept:] == expected[len(expected) - (len(rows) - kept):]  # the resumed records
  assert rows[kept]["phase"] == "shared" and b"\0" not in log.read_bytes()
  log.unlink()  # a log deleted by hand: the resumed run's records alone, said
  _, _, out = _run(workdir, _cfg(**{"search.epochs": 4}))
  assert "metrics.jsonl holds 0 whole bytes of the " in out


def test_resume_with_another_model_names_the_fields(reference, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  config_before = (workdir / "config.json").read_text()
  with pytest.raises(UserError, match=r"model.num_nodes \(4 -> 5\).*new --workdir"):
    _run(workdir, _cfg(**{"model.num_nodes": 5}))
  assert (workdir / "config.json").read_text() == config_before  # nothing overwritten
  # many fields: the first eight named, the rest counted
  changed = {"model.num_nodes": 5, "model.hidden_dim": 12, "model.embed_dim": 12,
             "model.dropconnect": 0.2, "model.input_dropout": 0.2, "model.output_dropout": 0.2,
             "model.init_range": 0.2, "model.hidden_norm_clip": 5.0, "data.bptt": 9,
             "data.batch_size": 5}
  with pytest.raises(UserError) as err:
    _run(workdir, _cfg(**changed))
  assert str(err.value).count(" -> ") == 8 and " and 2 more differ from the saved run" in str(
      err.value)
  # a final training's workdir: said in one sentence, not field by field
  saved = {**dataclasses.asdict(_cfg()), "train": {"epochs": 3}}
  del saved["search"]
  with pytest.raises(UserError) as err:
    ckpt_lib.check_resumable(saved, _cfg(), ("search.epochs",), "/w", "search")
  assert str(err.value) == ("The workdir /w holds a final training's checkpoints, and this is a "
                            "search: the two cannot share a workdir. Pass another --workdir.")


def test_finished_run_rerun_only_rewrites_the_summary(reference, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  rows = runs.metric_rows(workdir)
  _, summary, out = _run(workdir)
  assert "is complete" in out and runs.metric_rows(workdir) == rows
  assert summary["epochs"] == 3
  assert "changed fields" not in out
  # a resumable field changed (a schedule): said once, in one line, with old and new values
  _, _, out = _run(workdir, _cfg(**{"search.log_every": 5}))
  assert "note: resuming with changed fields: search.log_every (3 -> 5)\n" in out


@pytest.mark.parametrize("during", ["rescoring", "screen"])
def test_a_signal_while_choosing_the_answer_stops_there(reference, tmp_path, monkeypatch, capfd,
                                                         during):
  """A SIGTERM after the last epoch, while the finish rescores or screens the candidates (minutes
  at paper size; it was honoured only after the whole finish, which exited 0): the run stops
  after that candidate with the stop paragraph and no summary, and the same command then writes
  the uninterrupted run's summary."""
  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  (workdir / "summary.json").unlink()
  rows = runs.metric_rows(workdir)
  target, name = ((search_run.SearchRun, "answer_score") if during == "rescoring"
                  else (screen_lib, "screen"))
  real = getattr(target, name)

  def signalled(run, *args):  # the signal arrives while this candidate is worked on
    run.stop_signals._handle(signal.SIGTERM, None)
    return real(run, *args)

  monkeypatch.setattr(target, name, signalled)
  with pytest.raises(errors.Stopped) as stop:
    _run(workdir)
  assert stop.value.exit_code == 143
  assert " ".join(str(stop.value).split()).startswith(
      "stopped by SIGTERM while choosing the answer after the last epoch (the search itself is "
      "complete); checkpoint")
  assert not (workdir / "summary.json").exists() and runs.metric_rows(workdir) == rows
  assert ("SIGTERM: stopping after the candidate in progress (the search is saved) (send it "
          "again to stop at once).") in capfd.readouterr().err
  monkeypatch.setattr(target, name, real)
  _, _, out = _run(workdir)
  assert "is complete" in out
  runs.assert_same_run(reference, workdir)


@pytest.mark.parametrize("policy", ["skip", "stop", "rollback"])
def test_divergence_policies(tmp_path, policy):
  cfg = _cfg(**{"shared.lr": 1e30, "search.on_divergence": policy, "search.epochs": 1,
                "search.max_rollbacks": 2, "checkpoint.every_steps": 3})
  if policy == "skip":
    _, _, out = _run(tmp_path / policy, cfg)
    assert "were skipped" in out
    skipped = sum(r.get("skipped_steps", 0) for r in runs.metric_rows(tmp_path / policy))
    assert skipped > 0
    _, arrays, _ = runs.latest_checkpoint(tmp_path / policy)
    assert all(np.all(np.isfinite(a)) for a in arrays.values()
               if np.issubdtype(a.dtype, np.inexact))  # a checkpoint never holds NaN
  elif policy == "stop":
    with pytest.raises(search_run.Diverged, match="on_divergence=stop"):
      _run(tmp_path / policy, cfg)
  else:
    out = io.StringIO()
    run = search_run.SearchRun(cfg, str(tmp_path / policy), out, metrics.Progress(enabled=False))
    with pytest.raises(search_run.Diverged, match="after 2 rollbacks"):
      run.execute()
    assert out.getvalue().count("rolled back") == 2
    assert "scaled by 0.25" in out.getvalue()


def test_same_structure_restores_without_recompiling(reference, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  run, _, _ = _run(workdir, _cfg(**{"search.epochs": 4}))
  for jitted in (run.program.shared_step, run.program.controller_step, run.program.derive_step,
                 run.task.jit_eval_step):
    assert jitted._cache_size() == 1
  jax.tree_util.tree_map(lambda x: np.testing.assert_(np.all(np.isfinite(x))),
                         run.final_state.model.params)


def test_config_differences_by_hand():
  from enas_jax.io.checkpoints import config_differences
  saved = {"model": {"hidden_dim": 8, "dropout": 0.1}, "seed": 0}
  current = {"model": {"hidden_dim": 16, "dropout": 0.1, "new_field": 0.0}, "seed": 0}
  defaults = {"model": {"hidden_dim": 1000, "dropout": 0.0, "new_field": 0.0}, "seed": 0}
  # a field added after the checkpoint was saved, at its default, is no difference
  assert config_differences(saved, current, defaults) == ["model.hidden_dim (8 -> 16)"]
  current["model"]["new_field"] = 0.5
  assert config_differences(saved, current, defaults) == [
      "model.hidden_dim (8 -> 16)", "model.new_field ('<absent>' -> 0.5)"]
