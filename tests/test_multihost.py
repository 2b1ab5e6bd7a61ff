"""Multi-host: a search run as 2 processes on this machine (`jax.distributed` on a localhost
coordinator, CPU collectives through Gloo, one CPU device per process) sharing one workdir: a
SIGTERM that reaches one process stops both at the same step, after both are killed the same
commands resume, and the finished run has one set of outputs, bit-identical to one process driving
2 devices. (One test: each pair of processes costs about 20 s here.)"""
import os
import pathlib
import signal
import socket
import subprocess
import sys
import textwrap
import time
import zlib

import pytest

from tests import runs

ROOT = pathlib.Path(__file__).resolve().parent.parent
# 3 epochs of 12 shared + 6 controller steps, saving every 4 steps (as tests/test_resume.py).
ARGS = ["--config=configs/quickstart.py:tiny", "--config.search.epochs=3",
        "--config.search.shared_steps=12", "--config.search.controller_steps=6",
        "--config.search.log_every=3", "--config.checkpoint.every_steps=4",
        "--config.checkpoint.keep=2", "--config.parallel.data_parallel=True"]
TIMEOUT = 300


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
  return dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", **extra)


def _command(workdir: pathlib.Path, address: str, pid: int, *extra: str,
             config: str = ARGS[0]) -> list[str]:
  return [sys.executable, "-m", "enas_jax.search", f"--workdir={workdir}", config, *ARGS[1:],
          "--config.parallel.distributed=True", f"--config.parallel.coordinator_address={address}",
          "--config.parallel.num_processes=2", f"--config.parallel.process_id={pid}", *extra]


def _start_both(workdir: pathlib.Path, extra_1: tuple[str, ...] = (),
                cwds: tuple[pathlib.Path, ...] = (ROOT, ROOT), extra: tuple[str, ...] = (),
                config: str = ARGS[0]) -> list[subprocess.Popen]:
  """The same command on "both hosts" (with `extra`; process 1 with `extra_1` too; process i
  started in `cwds[i]`): process 0 coordinates on a fresh localhost port."""
  address = f"localhost:{_free_port()}"
  return [subprocess.Popen(_command(workdir, address, pid, *extra, *(extra_1 if pid else ()),
                                    config=config),
                           cwd=cwds[pid], env=_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
          for pid in range(2)]


def _head_and_tail(err: str, size: int = 1500) -> str:
  """A failed process's stderr for the assertion: its start (where XLA's fatal "Check failed"
  line or Python's first error sits) and its end (the traceback)."""
  return err if len(err) <= 2 * size else f"{err[:size]}\n[...]\n{err[-size:]}"


def _finish(procs: list[subprocess.Popen], timeout: float = TIMEOUT
            ) -> list[tuple[int, str, str]]:
  """(exit status, stdout, stderr) of each process; kills both if either hangs."""
  try:
    outs = [p.communicate(timeout=timeout) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  return [(p.returncode, out, err) for p, (out, err) in zip(procs, outs)]


def _wait_for_checkpoint(workdir: pathlib.Path, procs: list[subprocess.Popen],
                         newer_than: int = -1) -> int:
  checkpoints = workdir / "checkpoints"
  deadline = time.time() + TIMEOUT
  while time.time() < deadline and all(p.poll() is None for p in procs):
    steps = [int(p.name) for p in checkpoints.glob("*") if p.name.isdigit()]
    if steps and max(steps) > newer_than:
      return max(steps)
    time.sleep(0.005)
  for p in procs:
    p.kill()
  raise AssertionError(f"no checkpoint after {newer_than} appeared: {_finish(procs)}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """One process driving 2 CPU devices: the same mesh size, so the same arithmetic."""
  workdir = tmp_path_factory.mktemp("multihost") / "one_process"
  result = subprocess.run([sys.executable, "-m", "enas_jax.search", f"--workdir={workdir}",
                           *ARGS], cwd=ROOT, env=_env(JAX_NUM_CPU_DEVICES="2"),
                          capture_output=True, text=True, timeout=TIMEOUT)
  assert result.returncode == 0, _head_and_tail(result.stderr)
  return workdir


def _assert_one_set_of_outputs(workdir, reference, launches):
  """Process 0 alone wrote the files: the same files as one process, and one TensorBoard file
  per launch (each launch of a run, resumed or not, starts its own)."""
  assert len(list((workdir / "tb").iterdir())) == launches
  names = [sorted(p.relative_to(d).as_posix() for p in d.rglob("*")
                  if "checkpoints" not in p.parts and "tb" not in p.parts)
           for d in (workdir, reference)]
  assert names[0] == names[1]


def test_two_processes_one_workdir_stop_kill_resume_equal_one_process(reference, tmp_path):
  """Both processes start; a SIGTERM to one stops both at the same step; both restart and are
  killed without warning; both restart and finish: the result is the one-process run's."""
  workdir = tmp_path / "two_processes"
  procs = _start_both(workdir)
  first = _wait_for_checkpoint(workdir, procs)
  procs[1].send_signal(signal.SIGTERM)  # only process 1 gets it; process 0 writes the files
  results = _finish(procs)
  stops = set()
  for code, _, err in results:
    assert code == 143, _head_and_tail(err)
    err = " ".join(err.split())  # the message is wrapped at 100 columns
    assert "Traceback" not in err and "run the same command to resume" in err
    stops.add(err[err.index("stopped by SIGTERM"):].split(";")[0])
  assert len(stops) == 1, stops  # both stopped at the same step
  saved = max(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
  assert saved >= first and not (workdir / "summary.json").exists()

  procs = _start_both(workdir)  # resume, then kill both without warning after a new save
  _wait_for_checkpoint(workdir, procs, newer_than=saved)
  for p in procs:
    p.send_signal(signal.SIGKILL)
  for p in procs:
    p.wait(timeout=TIMEOUT)
  assert not (workdir / "summary.json").exists()  # really killed mid-run

  results = _finish(_start_both(workdir))
  for code, out, err in results:
    assert code == 0, _head_and_tail(err)
    assert "resuming from checkpoint" in out
    assert "changed fields" not in out  # the coordinator's port and the process id may differ
    assert "found architecture" in out and "Traceback" not in err
  runs.assert_same_run(reference, workdir)  # every figure, checkpoint array and the summary
  _assert_one_set_of_outputs(workdir, reference, launches=3)


def test_processes_started_with_different_configs_stop_with_one_paragraph(tmp_path):
  results = _finish(_start_both(tmp_path / "w", extra_1=("--config.seed=1",)))
  for code, _, err in results:
    assert code == 2 and "Traceback" not in err, _head_and_tail(err)
    assert "different configs: process(es) 1 differ from process 0" in " ".join(err.split())
  assert not (tmp_path / "w").exists()  # stopped before anything was written


@pytest.mark.parametrize("failing", [0, 1])
def test_a_failure_on_one_process_stops_the_other_with_one_paragraph(failing, tmp_path):
  """One host's own mistake (here its copy of the corpus missing: the processes start in
  different folders and `data.dir` is relative) left the other processes waiting for it in a
  collective for ever, and the failed one in JAX's shutdown barrier (both hung past 200 s).
  Now the failed process says why and the other says which process failed and why, both exit
  with its status, in seconds, whichever of them failed (process 0 hosts the coordination
  service)."""
  corpus = tmp_path / "has_data" / "corp"
  corpus.mkdir(parents=True)
  text = " ".join(f"w{i % 37}" for i in range(3000)) + "\n"
  for split in ("train", "valid", "test"):
    (corpus / f"{split}.txt").write_text(text * (8 if split == "train" else 2))
  (tmp_path / "no_data").mkdir()
  folders = [tmp_path / "has_data", tmp_path / "has_data"]
  folders[failing] = tmp_path / "no_data"
  results = _finish(_start_both(tmp_path / "w", cwds=tuple(folders), extra=(
      "--config.data.source=directory", "--config.data.dir=corp"),
      config="--config=quickstart:tiny"), timeout=60)  # (a shipped config, from any folder)
  for pid, (code, _, err) in enumerate(results):
    assert code == 2, _head_and_tail(err)
    assert "Traceback" not in err and "Check failure" not in err, _head_and_tail(err)
    err = " ".join(err.split())
    missing = "error: The corpus directory 'corp' does not exist (config field `data.dir`)"
    if pid == failing:
      assert missing in err and "multi-host run failed" not in err
    else:
      assert (f"error: process {failing} of this multi-host run failed: "
              f"{missing[len('error: '):]}") in err
      assert f"This process (process {pid}) stops too" in err


class _Service:
  """The coordination service's key-value store, as one process of a run sees it."""

  def __init__(self, posted: dict[str, str]):
    self.posted = posted

  def key_value_try_get(self, key: str) -> str:
    if key not in self.posted:
      raise RuntimeError(f"NOT_FOUND: {key}")
    return self.posted[key]

  def key_value_set(self, key: str, value: str, allow_overwrite: bool = False) -> None:
    if key in self.posted and not allow_overwrite:
      raise RuntimeError(f"ALREADY_EXISTS: {key}")
    self.posted[key] = value

  def key_value_dir_get(self, prefix: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in self.posted.items() if k.startswith(prefix)]


@pytest.mark.parametrize("case", ["lost_peer", "after_a_peer_failed", "unforeseen",
                                  "user_error_after_the_others_finished",
                                  "user_error_after_one_of_two_others_finished"])
def test_an_error_in_one_process_ends_it_with_the_others_told(case, monkeypatch, capsys):
  """What a process of a two-process run prints and posts when its main code raises: a
  collective that lost its peer (killed: a Gloo error traceback before) is one paragraph; an
  error after another process posted its failure is that failure's paragraph; anything else keeps
  its traceback. In every case the others are told (a failure posted for them, unless one already
  was) and the process leaves at once with the status said, unless another has finished its
  run (of three: one finished, one still finishing): every process is then past the collectives
  and the finished ones wait in JAX's shutdown barrier, so it exits as usual to meet them. JAX's
  joined-run record and the exit are simulated: a SIGKILL'd peer gives a Gloo error or JAX's own
  abort, by timing."""
  import threading
  from types import SimpleNamespace
  import jax
  from enas_jax.io import errors, processes
  posted = {"after_a_peer_failed": {
      "enas_jax/failed": "1\n2\nThe corpus directory 'corp' does not exist."},
      "user_error_after_the_others_finished": {"enas_jax/done/1": "1"},
      "user_error_after_one_of_two_others_finished": {"enas_jax/done/2": "1"}}.get(case, {})
  monkeypatch.setattr(processes, "_joined", lambda: SimpleNamespace(
      client=_Service(posted), process_id=0,
      num_processes=3 if case == "user_error_after_one_of_two_others_finished" else 2))
  monkeypatch.setattr(processes, "_leaving", threading.Event())
  left = []

  def leave(joined, code):
    left.append(code)
    raise SystemExit(code)

  monkeypatch.setattr(processes, "_leave", leave)
  late = errors.UserError("Cannot write summary.json.")
  failure = {"unforeseen": KeyError("width"), "user_error_after_the_others_finished": late,
             "user_error_after_one_of_two_others_finished": late
             }.get(case, jax.errors.JaxRuntimeError(
                 "UNKNOWN: Gloo AllGather failed: [external/gloo/gloo/transport/tcp/pair.cc:547] "
                 "Connection closed by peer [127.0.0.1]:40080"))

  def main(argv):
    raise failure

  with pytest.raises(SystemExit) as ended:
    errors.run_main(main)(["search"])
  err = " ".join(capsys.readouterr().err.split())
  if case.startswith("user_error_after"):  # the others are past the collectives: it exits
    assert left == [] and ended.value.code == 2 and err == "error: Cannot write summary.json."
    assert posted["enas_jax/failed"] == "0\n2\nCannot write summary.json."
    return
  if case == "lost_peer":
    assert left == [2] and "Traceback" not in err, err
    assert err.startswith("error: process 0 lost its connection to another process of this "
                          "multi-host run (UNKNOWN: Gloo AllGather failed:"), err
    assert posted["enas_jax/failed"].startswith("0\n2\nprocess 0 lost its connection")
  elif case == "after_a_peer_failed":
    assert left == [2] and "Traceback" not in err, err
    assert err.startswith("error: process 1 of this multi-host run failed: The corpus directory "
                          "'corp' does not exist. This process (process 0) stops too"), err
    assert "See process 1's own output, then start the same commands again" in err
    assert posted["enas_jax/failed"].startswith("1\n")  # the first failure's post stands
  else:
    assert left == [1] and "Traceback" in err and "KeyError: 'width'" in err, err
    assert posted["enas_jax/failed"] == ("0\n1\nKeyError: 'width' (its traceback is in its "
                                         "error output).")


class _Watched:
  """The coordination service as the peer watcher's blocking read sees it: gone (every read
  fails at once), or a failure posted on the read numbered `posted_at` (each read before it
  waits its whole timeout, as the real one does)."""

  def __init__(self, posted_at: int | None, finished: tuple[str, ...] = ()):
    self.posted_at, self.reads, self.finished = posted_at, 0, finished

  def key_value_dir_get(self, prefix: str) -> list[tuple[str, str]]:
    return [(f"{prefix}{pid}", "1") for pid in self.finished if prefix == "enas_jax/done/"]

  def blocking_key_value_get(self, key: str, timeout_ms: int) -> str:
    self.reads += 1
    if self.posted_at is None:
      raise RuntimeError("UNAVAILABLE: the coordination service is gone")
    if self.reads < self.posted_at:
      time.sleep(timeout_ms / 1000)
      raise RuntimeError(f"DEADLINE_EXCEEDED: {key}")
    return "1\n3\nThe corpus directory 'corp' does not exist."


@pytest.mark.parametrize("posted_at, finished", [(None, ()), (3, ()), (3, ("2",))])
def test_the_peer_watcher_never_spins_and_ends_its_process_on_a_posted_failure(
    posted_at, finished, monkeypatch, tmp_path):
  """The watcher thread of every process of a multi-host run: when the coordination service is
  gone its reads fail at once, and it used to retry at once, a busy loop; now it waits out the
  poll interval. When another process posts its failure, it writes that paragraph to the
  command's own standard error and ends the process with the failed one's exit status, unless
  a third has finished its run: then all are past the collectives, and this one finishes too
  to meet it in JAX's shutdown barrier (leaving at once left that one to abort there)."""
  import threading
  from types import SimpleNamespace
  from enas_jax.io import processes
  service = _Watched(posted_at, finished)
  joined = SimpleNamespace(client=service, process_id=0, num_processes=2 + len(finished))
  leaving, left = threading.Event(), []
  monkeypatch.setattr(processes, "_leaving", leaving)
  monkeypatch.setattr(processes, "_GRACE_S", 0.05)
  monkeypatch.setattr(processes, "_leave", lambda joined, code: left.append(code))
  err_path = tmp_path / "stderr"
  monkeypatch.setattr(processes, "_stderr_fd", os.open(err_path, os.O_WRONLY | os.O_CREAT))
  watcher = threading.Thread(target=processes._watch, args=(joined,), daemon=True)
  watcher.start()
  watcher.join(timeout=1.0)
  leaving.set()
  watcher.join(timeout=5.0)
  os.close(processes._stderr_fd)
  assert not watcher.is_alive()
  err = " ".join(err_path.read_text().split())
  if posted_at is None:  # about 1 s / 250 ms reads; the busy loop made thousands
    assert 3 <= service.reads <= 6 and left == [] and err == "", service.reads
  elif finished:
    assert service.reads == 3 and left == [] and err == "", (service.reads, left)
  else:
    assert service.reads == 3 and left == [3], (service.reads, left)
    assert err.startswith("error: process 1 of this multi-host run failed: The corpus directory "
                          "'corp' does not exist. This process (process 0) stops too"), err


def test_hosts_reading_different_data_stop_with_one_paragraph(monkeypatch):
  """A host whose copy of the corpus (or image folder) differs, under the same config, trained
  on other data unnoticed. The data fingerprints are compared like the configs (here the
  processes' gather simulated: two real processes cannot read two copies under one path)."""
  import jax
  from enas_jax.io.errors import UserError
  from enas_jax.run import parallel
  fingerprints = {0: "a" * 64, 1: "a" * 64, 2: "b" * 64}
  monkeypatch.setattr(jax, "process_count", lambda: 3)
  monkeypatch.setattr(parallel.processes, "gather", lambda value: [
      zlib.crc32(f.encode()) for f in fingerprints.values()])
  with pytest.raises(UserError, match=r"read different data under the same config: "
                                      r"process\(es\) 2 differ from process 0"):
    parallel.check_same_data(lambda: fingerprints[0])
  fingerprints[2] = "a" * 64
  parallel.check_same_data(lambda: fingerprints[0])
  monkeypatch.setattr(jax, "process_count", lambda: 1)
  parallel.check_same_data(lambda: 1 / 0)  # one process: never computed


def test_joining_leaves_the_run_its_own_stop_signal_handler():
  """`jax.distributed.initialize` installed JAX's preemption notifier, whose SIGTERM handler only
  notes the signal: a SIGTERM between joining and the run's loop (the setup, compiling) was
  swallowed and the run went on to its end. A one-process join here: the caller's handler must
  still be the one a SIGTERM reaches."""
  script = textwrap.dedent(f"""
      import os, signal, time
      got = []
      signal.signal(signal.SIGTERM, lambda n, frame: got.append(n))
      from enas_jax.run import parallel
      parallel.start_processes(parallel.ParallelConfig(
          data_parallel=True, distributed=True, coordinator_address="localhost:{_free_port()}",
          num_processes=1, process_id=0))
      os.kill(os.getpid(), signal.SIGTERM)
      time.sleep(0.2)
      print("handled" if got else "swallowed")""")
  result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=TIMEOUT)
  assert result.returncode == 0 and result.stdout.strip() == "handled", _head_and_tail(
      result.stdout + result.stderr)


def test_no_coordinator_is_one_paragraph(tmp_path):
  result = subprocess.run(_command(tmp_path / "w", f"localhost:{_free_port()}", 1,
                                   "--config.parallel.timeout_s=1"),
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=TIMEOUT)
  assert result.returncode == 2 and "Traceback" not in result.stderr, _head_and_tail(
      result.stderr)
  assert "No coordinator answered at localhost:" in result.stderr
  assert "parallel.timeout_s" in result.stderr
