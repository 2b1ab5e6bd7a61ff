"""`python -m enas_jax.search` end to end in a subprocess, and its clear errors."""
import contextlib
import io
import json
import os
import pathlib
import shutil
import signal
import stat
import subprocess
import sys

import pytest

from enas_jax.cli import common
from enas_jax.io import errors
from enas_jax.io import metrics as metrics_lib
from enas_jax.io import workdir as workdir_lib
from tests import runs, tensorboard_view

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _search(*args, cwd=ROOT, file_size_limit=None):
  """The search command; `file_size_limit`: the largest file (bytes) it may write (`ulimit -f`),
  so that a longer write fails as on a full disk."""
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  limited = [] if file_size_limit is None else [  # set in the child, then the command
      "-c", f"import os, resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, "
            f"({file_size_limit}, {file_size_limit})); "
            f"os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"]
  command = [sys.executable, *limited, "-m", "enas_jax.search", *args]
  return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _files(workdir):
  """{path: bytes} of the workdir's files but its lock (which names the last run that held it)."""
  return {p: p.read_bytes() for p in workdir.iterdir() if p.is_file() and p.name != ".lock"}


def test_cli_runs_a_tiny_search_and_writes_its_files(tmp_path):
  workdir = tmp_path / "run"
  result = _search("--config=configs/quickstart.py:tiny", f"--workdir={workdir}",
                   "--config.search.epochs=1", "--config.shared.lr=5")
  assert result.returncode == 0, result.stderr
  for name in ("config.json", "metrics.jsonl", "summary.json", "best_arch.json", "best_arch.txt",
               "archs/epoch_0000.json", "archs/epoch_0000.txt"):
    assert (workdir / name).is_file(), name
  events = list((workdir / "tb").glob("events.out.tfevents.*"))
  assert events
  # pictures of every epoch's cell and of the answer; as TensorBoard images when Graphviz is here
  drawn = shutil.which("dot") is not None
  for stem in ("archs/epoch_0000", "best_arch"):
    assert (workdir / f"{stem}.dot").is_file()
    assert (workdir / f"{stem}.png").is_file() == drawn
    assert (workdir / f"{stem}.svg").is_file() == drawn
  images = tensorboard_view.images(workdir / "tb")
  assert (set(images) == {"arch/best", "arch/sampled"}) == drawn
  assert "reward" in json.loads((workdir / "archs/epoch_0000.json").read_text())
  config = json.loads((workdir / "config.json").read_text())
  assert config["shared"]["lr"] == 5.0 and config["search"]["epochs"] == 1  # overrides applied
  summary = json.loads((workdir / "summary.json").read_text())
  assert f"found architecture (rnn space): {summary['authors']}" in result.stdout
  assert "teacher's optimal validation perplexity" in result.stdout
  assert "\r" not in result.stderr  # no progress bar when not on a terminal
  # the same command again, where no file over 1 KiB can be written (as on a full disk): the
  # first rewrite (config.json, 2.6 KiB) fails; one paragraph, and every file is as it was
  # (config.json was cut to 1 KiB before it was written through a temporary file)
  saved = _files(workdir)
  result = _search("--config=configs/quickstart.py:tiny", f"--workdir={workdir}",
                   "--config.search.epochs=1", "--config.shared.lr=5", file_size_limit=1024)
  assert result.returncode == errors.USER_ERROR_EXIT, result.stderr[-3000:]
  assert " ".join(result.stderr.split()).startswith(
      f"error: Cannot write {workdir / 'config.json'}: File too large. Nothing saved before it "
      f"is lost"), result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  assert _files(workdir) == saved
  # while another run holds the workdir (its lock), the command is refused before it writes
  lock = workdir_lib.Lock(str(workdir))
  assert lock.acquire() is None
  try:
    result = _search("--config=configs/quickstart.py:tiny", f"--workdir={workdir}",
                     "--config.search.epochs=1", "--config.shared.lr=5")
  finally:
    lock.release()
  err = " ".join(result.stderr.split())
  assert result.returncode == errors.USER_ERROR_EXIT and "Traceback" not in err, err[-3000:]
  assert err.startswith(f"error: The workdir {workdir} is in use by another run (process "
                        f"{os.getpid()} on host "), err[-3000:]
  assert _files(workdir) == saved
  # a model whose state cannot fit in memory (a size mistyped): refused before the state is made
  # or a checkpoint read, in one paragraph, every file as it was (it was an out-of-memory kill,
  # a swapping machine, or under `ulimit -v` a C++ abort or a hang)
  before = runs.snapshot(workdir)
  result = _search("--config=configs/quickstart.py:tiny", f"--workdir={workdir}",
                   "--config.search.epochs=1", "--config.shared.lr=5",
                   "--config.model.hidden_dim=200000")
  err = " ".join(result.stderr.split())
  assert result.returncode == errors.USER_ERROR_EXIT and "Traceback" not in err, err[-3000:]
  assert err.startswith("error: The search's state alone (weights and optimizer states) takes "
                        ), err[-3000:]
  assert "TiB, more than this process may still use (" in err and "cannot run here" in err, err
  _assert_one_paragraph(result.stderr)
  assert {k: v for k, v in runs.snapshot(workdir).items() if k != ".lock"} == {
      k: v for k, v in before.items() if k != ".lock"}
  # the newest checkpoint's array files cut short: tensorstore's failed read left its callbacks
  # printing a few hundred lines of "Event loop is closed" tracebacks beside the warning; now
  # the warning alone, and the run goes on from the checkpoint before (none here: the start)
  newest = max((p for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()),
               key=lambda p: int(p.name))
  for path in newest.rglob("d/*"):
    path.write_bytes(path.read_bytes()[:100])
  result = _search("--config=configs/quickstart.py:tiny", f"--workdir={workdir}",
                   "--config.search.epochs=2", "--config.shared.lr=5")
  assert result.returncode == 0, result.stderr
  assert f"checkpoint {newest.name} could not be read" in result.stdout
  assert "Traceback" not in result.stderr, result.stderr[-3000:]


def test_an_atomic_rewrite_keeps_a_symlink_and_the_files_permissions(tmp_path):
  """`io.workdir.write_atomically` (config.json, summary.json, best_arch.*, pictures, the
  report): a file the user made a symbolic link has its target rewritten, the link kept; a file
  whose permissions the user changed keeps them; no temporary file is left."""
  target = tmp_path / "kept" / "best_arch.json"
  target.parent.mkdir()
  target.write_text("old")
  link = tmp_path / "best_arch.json"
  link.symlink_to(target)
  workdir_lib.write_atomically(str(link), "new")
  assert link.is_symlink() and target.read_text() == "new"
  target.chmod(0o600)
  workdir_lib.write_atomically(str(target), b"newer")
  assert target.read_bytes() == b"newer" and stat.S_IMODE(target.stat().st_mode) == 0o600
  assert sorted(os.listdir(target.parent)) == ["best_arch.json"]


def test_an_atomic_rewrite_interrupted_leaves_the_old_file_and_no_temporary(tmp_path,
                                                                            monkeypatch):
  """A Ctrl-C or SIGTERM (raised as an exception outside a run's loop) between the temporary
  file's write and its rename: the old file stays and the temporary file is removed (it was
  left beside it)."""
  target = tmp_path / "summary.json"
  target.write_text("old")

  def interrupted(src, dst):
    raise KeyboardInterrupt

  monkeypatch.setattr(os, "replace", interrupted)
  with pytest.raises(KeyboardInterrupt):
    workdir_lib.write_atomically(str(target), "new")
  assert sorted(os.listdir(tmp_path)) == ["summary.json"] and target.read_text() == "old"


def test_a_file_where_a_run_keeps_a_folder_is_one_paragraph(tmp_path):
  """A file named checkpoints, archs, tb (or report, for the report) in a workdir: the first
  write there ended in a FileExistsError or NotADirectoryError traceback; now one paragraph
  before the run starts, naming the file."""
  from enas_jax.report import reading
  for name in ("checkpoints", "archs", "tb", "report"):
    workdir = tmp_path / name
    workdir.mkdir()
    (workdir / "config.json").write_text(json.dumps({"search": {}, "controller": {}}))
    (workdir / name).write_text("not the run's")
    check = reading.read_search if name == "report" else workdir_lib.prepare
    with pytest.raises(errors.UserError, match=f"{workdir / name} is a file, but the commands "
                                               f"keep the .* in a folder of that name there. "
                                               f"Move or delete"):
      check(str(workdir))
    (workdir / name).unlink()
    (workdir / name).mkdir()
    check(str(workdir))  # a folder: fine


def test_a_folder_where_a_run_writes_a_file_is_one_paragraph(tmp_path):
  """A folder named summary.json, best_arch.png, metrics.jsonl ... in a workdir: the write there
  ended in an IsADirectoryError traceback (summary.json's at the end of the search, after all
  its hours). Now a search refuses it before it writes anything, and a late write (a folder
  made while the run goes on, or where a command writes elsewhere) is one paragraph too."""
  from enas_jax.configs import quickstart
  from tests import runs
  cfg = runs.search_config(quickstart)
  for name in ("summary.json", "best_arch.png", "metrics.jsonl", "config.json", ".lock"):
    workdir = tmp_path / name.replace(".", "_")
    (workdir / name).mkdir(parents=True)
    with pytest.raises(errors.UserError, match=f"{workdir / name} is a folder, but the run "
                                               f"writes a file of that name there. Move or"):
      runs.search(cfg, workdir)
    assert os.listdir(workdir) == [name]  # nothing written, not even the lock
  late = tmp_path / "report" / "index.html"
  late.mkdir(parents=True)
  with pytest.raises(errors.UserError, match=f"{late} is a folder, but this command writes"):
    workdir_lib.write_atomically(str(late), "<html>")
  assert os.listdir(late.parent) == ["index.html"] and late.is_dir()


@pytest.mark.parametrize("platform", ["cuda", "nonsense"])
def test_a_backend_jax_cannot_start_is_one_paragraph(tmp_path, platform):
  """JAX_PLATFORMS=cuda where JAX's CUDA build is not installed ended in a bare AssertionError
  traceback from inside JAX (a platform JAX does not know: a RuntimeError traceback)."""
  import importlib.util
  if platform == "cuda" and importlib.util.find_spec("jax_cuda12_plugin"):
    pytest.skip("JAX's CUDA build is installed here")
  env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS=platform)
  result = subprocess.run([sys.executable, "-m", "enas_jax.search", "--config=quickstart:tiny",
                           f"--workdir={tmp_path / 'w'}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
  message = " ".join(result.stderr.split())
  assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
  assert message.startswith(f"error: JAX cannot start its backend (JAX_PLATFORMS='{platform}')")
  assert "set JAX_PLATFORMS=cpu or unset it" in message
  assert not (tmp_path / "w").exists()


def test_temporary_files_a_killed_run_left_are_removed_when_the_next_holds_the_workdir(
    tmp_path):
  """A SIGKILL or a crash during an atomic rewrite left `summary.json.tmp<PID>` (and the like)
  in the workdir for good. The next run of the workdir, holding its lock (so no other process
  writes those files), removes them and says so; files of other names stay."""
  import io
  from enas_jax.configs import quickstart
  from enas_jax.io import metrics
  from enas_jax.run import search as search_run
  from tests import runs
  workdir = tmp_path / "w [1]"  # glob's special characters in the path
  (workdir / "archs").mkdir(parents=True)
  left = ["summary.json.tmp4242", "best_arch.png.tmp7", "archs/epoch_0002.dot.tmp99"]
  kept = ["notes.tmp1", "summary.json.tmpx", "archs/epoch_0002.dot", "config.json"]
  for name in left + kept:
    (workdir / name).write_text("x")
  out = io.StringIO()
  run = search_run.SearchRun(runs.search_config(quickstart), str(workdir), out,
                             metrics.Progress(enabled=False))
  with run.workdir_held():
    assert not any((workdir / name).exists() for name in left)
    assert all((workdir / name).exists() for name in kept)
  assert out.getvalue().startswith("note: removed 3 temporary file(s) that a killed run left (")


def test_a_workdir_removed_under_a_run_is_one_paragraph(tmp_path, monkeypatch):
  """`rm -rf WORKDIR` (a scratch clean-up, the wrong folder) while a search runs: orbax made the
  checkpoints folder again and the run went on, ending "complete" in a workdir without its
  config.json, metrics.jsonl and TensorBoard files, or died in a traceback wherever a write
  failed. Now the next checkpoint (or the failure) says the workdir was removed, exit 2."""
  from enas_jax.configs import quickstart
  from enas_jax.run import runner
  from tests import runs
  workdir, real_save, saves = tmp_path / "w", runner.Runner.save, []

  def removed_before_the_second_save(run, *args, **kwargs):
    saves.append(1)
    if len(saves) == 2:
      shutil.rmtree(workdir)
    return real_save(run, *args, **kwargs)

  monkeypatch.setattr(runner.Runner, "save", removed_before_the_second_save)
  with pytest.raises(errors.UserError, match=f"The workdir {workdir} \\(or its metrics.jsonl\\) "
                                             f"was removed while the search was using it"):
    runs.search(runs.search_config(quickstart), workdir)
  assert len(saves) == 2 and not workdir.exists()  # stopped there: nothing made again


@pytest.mark.parametrize("raised, words", [
    ("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 85899345920 bytes.\n"
     "BufferAssignment OOM Debugging",
     "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 85899345920 bytes."),
    # a CPU's allocation failing as a program is dispatched (measured: the quickstart at hidden
    # 3000 under `ulimit -v 13000000`), one prefix per program in flight
    ("INTERNAL: Error dispatching computation: Error dispatching computation: Out of memory "
     "allocating 6270616696 bytes.", "INTERNAL: Out of memory allocating 6270616696 bytes.")])
def test_device_memory_running_out_is_one_paragraph(tmp_path, monkeypatch, raised, words):
  """XLA's RESOURCE_EXHAUSTED (a batch or a model too large for the GPU), or a CPU's INTERNAL
  "Out of memory allocating", was a traceback; now a paragraph naming the fields to lower and
  where the checkpoints are (simulated here). Another INTERNAL error stays a traceback."""
  import jax
  from enas_jax.configs import quickstart
  from enas_jax.run import search as search_run
  from tests import runs

  def out_of_memory(run):
    raise jax.errors.JaxRuntimeError(raised)

  monkeypatch.setattr(search_run.SearchRun, "restore_or_fresh", out_of_memory)
  with pytest.raises(errors.UserError) as err:
    runs.search(runs.search_config(quickstart), tmp_path / "w")
  assert str(err.value) == (
      f"The search ran out of CPU memory ({words}). Lower `data.batch_size` or the model's size "
      "(`model.*`) in the config, or use a device with more memory (on a GPU, JAX takes 75% of "
      "it unless XLA_PYTHON_CLIENT_MEM_FRACTION says otherwise, e.g. .95). The checkpoints saved "
      f"so far are kept in {tmp_path / 'w' / 'checkpoints'}.")
  assert not errors.out_of_device_memory(jax.errors.JaxRuntimeError("INTERNAL: a failed check"))


def test_this_process_running_out_of_memory_is_one_paragraph(tmp_path, monkeypatch):
  """NumPy's MemoryError was a traceback. Measured: a synthetic image set of 10^14 images asked
  for 728 TiB, more than a process's address space (so it fails on any machine, however it
  overcommits); such a count is now refused by its range, and one below 2**31 by the synthetic
  set's own memory check, so a command's MemoryError is made here by the same allocation. One
  paragraph naming the sizes to lower, exit 2, no workdir made; inside a run's loop the
  paragraph also says where the checkpoints are (simulated there)."""
  result = _search("--config=configs/cifar10_micro.py:tiny", f"--workdir={tmp_path / 'w'}",
                   "--config.data.synthetic.train_images=2147483647")
  assert result.returncode == errors.USER_ERROR_EXIT, result.stderr
  _assert_one_paragraph(result.stderr)
  assert " ".join(result.stderr.split()).startswith(
      "error: The synthetic images (data.synthetic) need about 6.43 TiB to make, more than this "
      "process may still use (")
  assert not (tmp_path / "w").exists()
  command = ("import numpy as np; from enas_jax.cli import common; "
             "common.run(lambda argv: np.ones(10 ** 14 + 32, np.int64))")
  result = subprocess.run([sys.executable, "-c", command], cwd=ROOT, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
  assert result.returncode == errors.USER_ERROR_EXIT, result.stderr
  _assert_one_paragraph(result.stderr)
  assert " ".join(result.stderr.split()) == (
      "error: This process ran out of memory (Unable to allocate 728. TiB for an array with shape "
      "(100000000000032,) and data type int64). " + errors.PROCESS_MEMORY_ADVICE)

  from enas_jax.configs import quickstart
  from enas_jax.run import search as search_run

  def out_of_memory(run):
    raise MemoryError("Unable to allocate 8.00 GiB for an array")

  monkeypatch.setattr(search_run.SearchRun, "restore_or_fresh", out_of_memory)
  with pytest.raises(errors.UserError) as err:
    runs.search(runs.search_config(quickstart), tmp_path / "w2")
  assert str(err.value) == (
      "The search ran out of this process's memory (Unable to allocate 8.00 GiB for an array). "
      + errors.PROCESS_MEMORY_ADVICE + " The checkpoints saved so far are kept in "
      f"{tmp_path / 'w2' / 'checkpoints'}.")


def test_a_state_the_memory_left_cannot_hold_is_refused_and_a_tight_one_noted(tmp_path,
                                                                              monkeypatch):
  """The check before a run makes or restores its state: the state's bytes (every array of a
  fresh state), against what `io.memory.host_headroom` says this process may still use."""
  import jax
  from enas_jax.configs import quickstart
  from enas_jax.io import memory
  from enas_jax.run import runner
  from enas_jax.run import search as search_run

  out = io.StringIO()
  run = search_run.SearchRun(runs.search_config(quickstart), str(tmp_path / "w"), out,
                             metrics_lib.Progress(enabled=False))
  need = sum(x.nbytes for x in jax.tree_util.tree_leaves(run.fresh_state().arrays()))
  rooms = {}
  monkeypatch.setattr(memory, "host_headroom", lambda: rooms["now"])
  rooms["now"] = memory.Headroom(need - 1, "a bound")
  with pytest.raises(errors.UserError) as err:
    run.check_memory(run.state_shapes())
  assert str(err.value) == (
      f"The search's state alone (weights and optimizer states) takes "
      f"{runner.size_in_words(need)}, more than this process may still use "
      f"({runner.size_in_words(need - 1)}: a bound), so it cannot run here. Lower the model's "
      f"sizes in the config (the `model.*` widths and node or layer counts), or run it where "
      f"more memory is free. No checkpoint or log in {tmp_path / 'w'} was changed.")
  rooms["now"] = memory.Headroom(2 * need - 1, "a bound")  # no room for the gradients
  run.check_memory(run.state_shapes())
  assert out.getvalue() == (
      f"note: the search's state takes {runner.size_in_words(need)} and this process may still "
      f"use {runner.size_in_words(2 * need - 1)} (a bound); a step needs room for the gradients "
      f"too (up to the weights again), so it may run out of memory\n")
  rooms["now"] = memory.Headroom(2 * need, "a bound")
  run.check_memory(run.state_shapes())
  rooms["now"] = None  # nothing known: no check
  run.check_memory(run.state_shapes())
  assert out.getvalue().count("note:") == 1
  # a multi-host run: every process stops when one is short (the processes' gather simulated)
  rooms["now"] = memory.Headroom(10 * need, "a bound")
  monkeypatch.setattr(runner.processes, "agree_max", lambda value: max(value, 1))
  with pytest.raises(errors.UserError) as err:
    run.check_memory(run.state_shapes())
  assert (f"takes {runner.size_in_words(need)}, more than another process of this multi-host "
          f"run may use (its message says), so it cannot run here.") in str(err.value)


def test_a_program_the_memory_left_cannot_run_is_refused_before_it_runs(tmp_path, monkeypatch):
  """Past the state's check, the fresh weights' initialiser and the first shared step are each
  checked before they run, by XLA's own figure for one call (`memory.call_bytes`): refused when
  it is more than this process may still use (nothing saved), a note when less than a quarter
  would be left; the step then runs the program the check compiled (compiled once)."""
  import jax
  from enas_jax.configs import quickstart
  from enas_jax.io import memory
  from enas_jax.run import runner
  from enas_jax.run import search as search_run

  needs, room = [], {}
  real_call_bytes = memory.call_bytes

  def spy(program):  # XLA's figure, as the run sees it
    needs.append(real_call_bytes(program))
    return needs[-1]
  monkeypatch.setattr(memory, "call_bytes", spy)
  monkeypatch.setattr(memory, "host_headroom", lambda: memory.Headroom(room["at"](), "a bound"))
  cfg, workdir, big = runs.search_config(quickstart, epochs=1), tmp_path / "w", 2 ** 40

  def execute(at):
    needs.clear()
    room["at"], out = at, io.StringIO()
    run = search_run.SearchRun(cfg, str(workdir), out, metrics_lib.Progress(enabled=False))
    return run, out, run.execute

  def refusal(sentence, need, advice=errors.OUT_OF_MEMORY_ADVICE):
    return (f"{sentence}, more than this process may still use ({runner.size_in_words(need - 1)}:"
            f" a bound), so it cannot run here. {advice} No checkpoint in {workdir} was changed.")

  # the initialiser's call: its outputs (the weights) and its scratch
  run, _, go = execute(lambda: needs[-1] - 1 if needs else big)
  params = sum(x.size * x.dtype.itemsize
               for x in jax.tree_util.tree_leaves(run.state_shapes()["model"].params))
  with pytest.raises(errors.UserError) as err:
    go()
  assert len(needs) == 1 and needs[0] >= params
  assert str(err.value) == refusal(
      f"Making the search's fresh weights needs {runner.size_in_words(needs[0])} (the weights "
      f"and the initialiser's scratch, by XLA's count)", needs[0],
      "Lower the model's sizes in the config (the `model.*` widths and node or layer counts), or "
      "run it where more memory is free.")  # its batch not in question
  assert not (workdir / "checkpoints").exists() or not any((workdir / "checkpoints").iterdir())
  # the first shared step's call: at least the shared weights' gradients
  _, _, go = execute(lambda: needs[-1] - 1 if len(needs) == 2 else big)
  with pytest.raises(errors.UserError) as err:
    go()
  assert len(needs) == 2 and needs[1] >= params
  assert str(err.value) == refusal(
      f"One shared step of the search needs {runner.size_in_words(needs[1])} of working memory "
      f"besides the state it updates (activations, gradients and temporaries, by XLA's count)",
      needs[1])
  assert not (workdir / "checkpoints").exists() or not any((workdir / "checkpoints").iterdir())
  # room for it, with less than a quarter to spare: a note, and the search runs
  run, out, go = execute(lambda: needs[-1] * 5 // 4 if len(needs) == 2 else big)
  summary = go()
  assert (f"note: one shared step of the search needs {runner.size_in_words(needs[1])} of "
          f"working memory besides the state it updates (activations, gradients and "
          f"temporaries, by XLA's count) and this process may still use "
          f"{runner.size_in_words(needs[1] * 5 // 4)} (a bound): less than a quarter to spare, "
          f"so it may run out of memory\n") in out.getvalue()
  assert out.getvalue().count("note:") == 1 and summary["shared_steps"] > 0
  assert run.program.shared_step._cache_size() == 1


def test_a_controller_program_the_memory_left_cannot_run_is_refused_at_the_next_shared_step(
    tmp_path, monkeypatch):
  """The controller phase's draw, score and update are checked as they are compiled: in the
  background from the first shared step on, the refusal then raised at the shared step that
  sees the compile finished (here it is awaited at once: step 1 of 40), not after the phase;
  without compiling ahead, before the controller phase's first call."""
  from enas_jax.configs import quickstart
  from enas_jax.io import memory
  from enas_jax.run import ahead as ahead_lib
  from enas_jax.run import runner
  from enas_jax.run import search as search_run

  needs, big = [], 2 ** 40
  real_call_bytes, real_start = memory.call_bytes, ahead_lib.SearchAhead.start

  def spy(program):
    needs.append(real_call_bytes(program))
    return needs[-1]

  def start_and_finish(self, state):
    real_start(self, state)
    if self.running is not None:
      self.running.join()
  monkeypatch.setattr(memory, "call_bytes", spy)
  monkeypatch.setattr(ahead_lib.SearchAhead, "start", start_and_finish)
  # the initialiser, the shared step, then the controller's draw: too big
  monkeypatch.setattr(memory, "host_headroom", lambda: memory.Headroom(
      needs[-1] - 1 if len(needs) == 3 else big, "a bound"))

  class Steps(metrics_lib.Progress):
    def show(self, label, done, total, figures=None, force=False):
      seen.append((label, done))

  for compile_ahead in (True, False):
    needs.clear()
    seen, workdir = [], tmp_path / f"w{compile_ahead}"
    run = search_run.SearchRun(runs.search_config(quickstart, epochs=1, shared_steps=40),
                               str(workdir), io.StringIO(), Steps(enabled=False), compile_ahead)
    with pytest.raises(errors.UserError) as err:
      run.execute()
    assert str(err.value) == (
        f"One controller draw of the search needs {runner.size_in_words(needs[2])} of working "
        f"memory (its temporaries and outputs, by XLA's count), more than this process may "
        f"still use ({runner.size_in_words(needs[2] - 1)}: a bound), so it cannot run here. "
        f"{ahead_lib.CONTROLLER_ADVICE} No checkpoint in {workdir} was changed.")
    assert "controller.num_samples" in ahead_lib.CONTROLLER_ADVICE and needs[2] > 0
    assert seen[-1:] == ([] if compile_ahead else [("epoch 1 shared", 40)])
    assert not any(label.endswith("controller") for label, _ in seen)


def test_a_derive_the_memory_left_cannot_hold_is_refused_before_the_search_starts(
    tmp_path, monkeypatch):
  """A derive keeps a row per sample on the host (`search.derive_samples` of them, and two
  blocks in transit): the quickstart's row is its 7 decision values, its reward and its
  perplexity as 4-byte numbers (36 bytes) and 32 bytes of ranking scratch; checked with the
  state's memory, so nothing is made or written."""
  from enas_jax.configs import quickstart
  from enas_jax.io import memory
  from enas_jax.run import program
  from enas_jax.run import search as search_run

  samples = 10 ** 6
  need = (samples + 2 * program.HOST_ROWS) * (7 * 4 + 4 + 4 + 32)
  room = {"now": 2 ** 40}  # the corpus's check, as the run is made
  monkeypatch.setattr(memory, "host_headroom", lambda: memory.Headroom(room["now"], "a bound"))
  cfg = runs.search_config(quickstart, epochs=1, derive_samples=samples)
  run = search_run.SearchRun(cfg, str(tmp_path / "w"), io.StringIO(),
                             metrics_lib.Progress(enabled=False))
  room["now"] = need - 1
  with pytest.raises(errors.UserError) as err:
    run.execute()
  assert str(err.value) == (
      f"Deriving 1,000,000 architectures (search.derive_samples) needs about "
      f"{memory.size_in_words(need)} to hold their rows of results (68 bytes each), more than "
      f"this process may still use ({memory.size_in_words(need - 1)}: a bound). Lower "
      f"search.derive_samples in the config, or run it where more memory is free.")
  assert [p.name for p in (tmp_path / "w").iterdir()] == [".lock"]  # the workdir's lock only
  room["now"] = need
  run.check_memory(run.state_shapes())  # fits
  # through the command line: every sample of 2^31 - 1 refused on this machine, nothing written
  result = _search("--config=configs/quickstart.py:tiny", f"--workdir={tmp_path / 'cli'}",
                   f"--config.search.derive_samples={2 ** 31 - 1}")
  assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
  assert "search.derive_samples" in result.stderr and "(68 bytes each)" in result.stderr
  assert [p.name for p in (tmp_path / "cli").iterdir()] == [".lock"]


def test_missing_ptb_directory_names_dir_files_and_field(tmp_path):
  missing = tmp_path / "no-ptb-in-this-rather-long-hyphenated-directory-name-that-must-stay-whole"
  result = _search("--config=configs/ptb_rnn.py", f"--workdir={tmp_path / 'w'}",
                   f"--config.data.dir={missing}")
  assert result.returncode == 2
  message = " ".join(result.stderr.split())
  assert "train.txt" in message and "`data.dir`" in message
  # the path is on one line, unbroken (the paragraph never wraps inside a word), to be copied
  assert any(f"'{missing}'" in line for line in result.stderr.splitlines()), result.stderr
  assert "Traceback" not in result.stderr


def test_default_data_dir_missing_is_explained(tmp_path):
  result = _search(f"--config={ROOT / 'configs' / 'ptb_rnn.py'}", f"--workdir={tmp_path / 'w'}",
                   cwd=tmp_path)
  assert result.returncode == 2 and "'data/ptb'" in result.stderr
  assert "Traceback" not in result.stderr


def _assert_one_paragraph(stderr):
  """What a user mistake prints: only `error: ...`, one paragraph (no blank line, wrapped at 100
  columns), at least two sentences (what is wrong, then what to do), nothing else."""
  text = stderr.strip()
  assert text.startswith("error: ") and "\n\n" not in text, text
  assert all(len(line) <= 100 for line in text.splitlines()), text
  words = " ".join(text.split())
  assert words.endswith((".", ")")) and ". " in words, text


def test_user_mistakes_on_the_command_line_are_one_paragraph(tmp_path):
  cases = {
      "--config.model.hiden_dim=3": 'no field "hiden_dim" (did you mean "hidden_dim"?)',
      "--config=configs/nope.py": "there is no file 'configs/nope.py'",
      "--config=configs/quickstart.py:huge": "unknown preset 'huge'",
      "--config.data.bptt=ten": "--config.data.bptt=ten",
      "--config.data.source=web": "`data.source` is 'web'",
      "--config.typo=1": 'no field "typo"',  # a top-level field the config does not have
      "--config.controller.reward=accuracy": "a language model's reward",
  }
  for flag, expected in cases.items():
    result = _search(flag, f"--workdir={tmp_path / 'w'}")
    message = " ".join(result.stderr.split())
    assert result.returncode == 2, (flag, result.stderr)
    assert expected in message and "Traceback" not in message, (flag, message)
    _assert_one_paragraph(result.stderr)
  # config files that do not load: the file, the line and Python's words, not a traceback
  files = {"syntax.py": ("def get_config(:\n", "line 1: SyntaxError: invalid syntax"),
           "raises.py": ("def get_config():\n  raise ValueError('no such width')\n",
                         "line 2: ValueError: no such width"),
           "none.py": ("x = 1\n", "it defines no get_config()"),
           "returns_none.py": ("def get_config():\n  pass\n",  # was a traceback
                               "its get_config() returned None, not an ml_collections.ConfigDict")}
  for name, (text, expected) in files.items():
    (tmp_path / name).write_text(text)
  for flag, expected in [(f"--config={tmp_path / n}", e) for n, (_, e) in files.items()] + [
      (f"--config={tmp_path / 'raises.py'}:big",
       "TypeError: get_config() takes 0 positional arguments")]:
    result = _search(flag, f"--workdir={tmp_path / 'w'}")
    message = " ".join(result.stderr.split())
    assert result.returncode == 2, (flag, result.stderr)
    assert f"The config file given by {flag} could not be loaded: {expected}" in message, message
    _assert_one_paragraph(result.stderr)
  # the same with an override after the file: a missing file was a traceback, a file whose
  # get_config() returns None an override's error about a field of None
  for args, expected in [
      (("--config=configs/nope.py", "--config.seed=1"),
       "--config=configs/nope.py could not be loaded: there is no file 'configs/nope.py'"),
      (("--config=nope:tiny",), "--config=nope:tiny could not be loaded: no config named 'nope' "
                                "comes with enas_jax"),
      (("--config=nope:tiny", "--config.seed=1"), "no config named 'nope' comes with enas_jax"),
      ((f"--config={tmp_path / 'returns_none.py'}", "--config.seed=1"),
       "could not be loaded: its get_config() returned None")]:
    result = _search(*args, f"--workdir={tmp_path / 'w'}")
    message = " ".join(result.stderr.split())
    assert result.returncode == 2 and expected in message, (args, message)
    _assert_one_paragraph(result.stderr)
  # the micro config has the macro space's skip-rate fields (at their defaults): set, they stop
  result = _search("--config=configs/cifar10_micro.py:tiny", "--config.controller.skip_weight=0.5",
                   f"--workdir={tmp_path / 'w'}")
  message = " ".join(result.stderr.split())
  assert result.returncode == 2 and "Traceback" not in message, message
  assert "`controller.skip_weight` is set to 0.5, but only the macro space(s) use it" in message
  _assert_one_paragraph(result.stderr)
  # a reward's window (data.bptt x data.reward_windows) longer than the valid split's rows (498
  # tokens each here) was all padding past them; now refused, naming the three fields
  result = _search("--config=configs/quickstart.py:tiny", "--config.data.reward_windows=100",
                   f"--workdir={tmp_path / 'w'}")
  assert result.returncode == 2, result.stderr
  assert " ".join(result.stderr.split()) == (
      "error: The valid split has 1992 tokens, too few for batch size 4 with windows of 1000 "
      "steps (each of the 4 rows needs at least 1001 tokens, 4004 in all). Use a longer split, or "
      "a smaller `data.batch_size`, `data.bptt` or `data.reward_windows` (a reward's window is "
      "their product).")
  _assert_one_paragraph(result.stderr)


@pytest.mark.parametrize("command", ["search", "train", "report"])
def test_jit_disabled_in_the_environment_is_one_paragraph_for_each_compiling_command(command,
                                                                                    tmp_path):
  """JAX_DISABLE_JIT (a debugging switch) ended each command in a ValueError traceback from
  JAX's ahead-of-time path; it is refused before anything is written."""
  workdir = tmp_path / "w"
  result = subprocess.run([sys.executable, "-m", f"enas_jax.{command}", f"--workdir={workdir}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), JAX_DISABLE_JIT="1"))
  message = " ".join(result.stderr.split())
  assert result.returncode == 2, result.stderr
  assert message.startswith("error: JAX_DISABLE_JIT is set in the environment"), message
  assert "Unset it (JAX_DISABLE_JIT=0)" in message and not workdir.exists()
  _assert_one_paragraph(result.stderr)


def test_a_root_message_keeps_its_quotes():
  """Only a KeyError's bare field name loses its quotes; a message ending in a quoted value
  keeps its closing quote (`--config.data.bptt=1.5` lost it: "base 10: '1.5. Run with")."""
  err = ValueError("invalid literal for int() with base 10: '1.5'")
  assert common._root_message(err) == "invalid literal for int() with base 10: '1.5'"
  assert common._root_message(KeyError("'typo'")) == 'no field "typo"'


@pytest.mark.parametrize("root", ["/", "//", "/tmp/..", "a link to /"])
def test_the_filesystems_root_as_the_workdir_is_refused(root, tmp_path):
  """`--workdir=$DIR/` with DIR unset names the root; run as root (as in many containers), a
  whole search wrote its files and folders there."""
  if root == "a link to /":
    (tmp_path / "link").symlink_to("/")
    root = str(tmp_path / "link")
  with pytest.raises(errors.UserError) as err:
    workdir_lib.prepare(root, ("config.json",))
  assert str(err.value) == (
      f"The workdir {root!r} is the filesystem's root: a run writes config.json, metrics.jsonl, "
      f"checkpoints/ and more at the top of its workdir. Pass a folder of the run's own with "
      f"--workdir=DIR (a variable left unset in --workdir=$DIR/ names the root).")


def test_folders_deeper_than_the_recursion_limit_are_made_and_overlong_paths_refused(tmp_path):
  """`os.makedirs` recursed once per missing folder: `--workdir` (or `--output`,
  `--compilation_cache`) 1,500 folders deep was a RecursionError traceback. Now they are made;
  a path longer than the filesystem allows is refused before any folder is made (makedirs made
  the first 4,096 bytes' worth, then failed)."""
  deep = os.path.join(tmp_path, *["d"] * 1500)
  assert len(deep) < os.pathconf(tmp_path, "PC_PATH_MAX") and sys.getrecursionlimit() < 1500
  try:
    workdir_lib.prepare(deep, ("config.json",))
    assert os.path.isdir(deep)
    workdir_lib.make_folders(deep)  # made already: nothing to do
  finally:  # removed deepest first: shutil.rmtree (pytest's clean-up) recurses as makedirs did
    for _ in range(1500):
      with contextlib.suppress(FileNotFoundError):
        os.rmdir(deep)
      deep = os.path.dirname(deep)
  (tmp_path / "file").write_text("")
  with pytest.raises(NotADirectoryError):  # a file in the way, as makedirs
    workdir_lib.make_folders(str(tmp_path / "file" / "sub"))
  with pytest.raises(FileExistsError):
    workdir_lib.make_folders(str(tmp_path / "file"))
  name_max, path_max = (os.pathconf(tmp_path, f"PC_{n}_MAX") for n in ("NAME", "PATH"))
  long_name = os.path.join(tmp_path, "new", "n" * (name_max + 1))
  too_deep = os.path.join(tmp_path, "new", *["e"] * (path_max // 2))
  full = len(os.fsencode(too_deep))
  with pytest.raises(errors.UserError) as err:
    workdir_lib.prepare(too_deep)
  assert str(err.value) == (
      f"The workdir {too_deep[:100] + '...' + too_deep[-40:]!r} cannot be made: it is {full} "
      f"bytes long, and the system allows fewer than {path_max}. Pass a shorter path with "
      f"--workdir=DIR.")
  with pytest.raises(errors.UserError) as err:
    common.output_file(os.path.join(long_name, "x.png"), "output", (".png",))
  assert str(err.value) == (
      f"--output={long_name[:100] + '...' + long_name[-34:] + '/x.png'}: a name in it is "
      f"{name_max + 1} bytes long, and the filesystem allows {name_max}, so nothing can be "
      f"written there. Give a shorter path.")
  assert not (tmp_path / "new").exists()


def test_unwritable_workdir_and_empty_split_are_clear(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  result = _search("--config=configs/quickstart.py:tiny", f"--workdir={blocker / 'run'}")
  assert result.returncode == 2 and "cannot be written" in " ".join(result.stderr.split())
  assert "Traceback" not in result.stderr
  corpus = tmp_path / "corpus"
  corpus.mkdir()
  (corpus / "train.txt").write_text("a b c\n" * 50)
  (corpus / "valid.txt").write_text("")
  (corpus / "test.txt").write_text("a b\n")
  result = _search("--config=configs/ptb_rnn.py:cpu", f"--workdir={tmp_path / 'w'}",
                   f"--config.data.dir={corpus}")
  message = " ".join(result.stderr.split())
  assert result.returncode == 2 and "valid.txt" in message and "empty" in message, message
  assert "Traceback" not in message


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1])
def test_a_signal_outside_a_run_loop_is_one_line_and_runs_the_cleanup(sig):
  """SIGTERM or SIGHUP while a command is not in a run's loop (its setup, a report scoring cells,
  a picture) ended the process silently (the default action), skipping its cleanup. Now it ends
  as Ctrl-C does there: one line, exit 128 + the signal's number, `finally` blocks run."""
  code = ("import os, signal, sys, time\n"
          "from enas_jax.io.errors import run_main\n"
          "def main(argv):\n"
          "  try:\n"
          "    print('ready', flush=True)\n"
          "    time.sleep(60)\n"
          "  finally:\n"
          "    print('cleaned up', flush=True)\n"
          "run_main(main)([])\n")
  proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
  assert proc.stdout.readline() == "ready\n"
  proc.send_signal(sig)
  out, err = proc.communicate(timeout=60)
  assert proc.returncode == 128 + sig, err
  assert out == "cleaned up\n"
  assert err == f"interrupted ({sig.name}); what was saved before it is kept.\n"


def test_a_second_signal_while_a_stopped_command_exits_is_no_traceback():
  """After a stop on SIGINT the command exits; a second Ctrl-C during Python's exit handlers
  raised KeyboardInterrupt inside one of them (a traceback under the stop's message). Now it
  ends the process at once."""
  code = ("import atexit, os, signal, time\n"
          "from enas_jax.io.errors import Stopped, run_main\n"
          "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(5)))\n"
          "def main(argv):\n"
          "  raise Stopped('stopped by SIGINT at epoch 1; checkpoint 3 saved', 130)\n"
          "run_main(main)([])\n")
  result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
  assert result.returncode == 130, result.stderr
  assert result.stderr.strip() == "stopped by SIGINT at epoch 1; checkpoint 3 saved"


def test_an_override_the_run_would_not_read_is_refused(tmp_path):
  """The quickstart's corpus is generated (`data.source=planted`): a corpus directory given to it
  was ignored silently, and the search ran on the planted text. Such an override is refused in
  one paragraph naming the fix, before anything is written; so is a planted corpus setting
  given to a run that reads a directory (the final training's command here), and a synthetic
  images' setting given to a run that reads CIFAR-10."""
  workdir = tmp_path / "w"
  result = _search("--config=quickstart:tiny", f"--workdir={workdir}", "--config.data.dir=/my/ptb")
  message = " ".join(result.stderr.split())
  assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
  assert ("error: --config.data.dir=/my/ptb is given but this run does not read it: data.source "
          "is 'planted', a corpus generated in memory. To read the corpus in that directory add "
          "--config.data.source=directory") in message
  assert not workdir.exists()
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  result = subprocess.run(
      [sys.executable, "-m", "enas_jax.train", "--config=configs/ptb_final.py",
       f"--workdir={workdir}", "--config.data.planted.train_tokens=5000"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  message = " ".join(result.stderr.split())
  assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
  assert ("--config.data.planted.train_tokens=5000 is given but this run does not read it: "
          "data.source is 'directory'") in message
  assert not workdir.exists()
  result = _search("--config=configs/cifar10_macro.py", f"--workdir={workdir}",
                   "--config.data.synthetic.train_images=100")  # the real CIFAR-10 is read
  message = " ".join(result.stderr.split())
  assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
  assert ("--config.data.synthetic.train_images=100 is given but this run does not read it: "
          "data.source is 'cifar10_batches', which reads real images") in message
  assert not workdir.exists()
