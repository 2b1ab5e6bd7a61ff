"""Running a config's preset in-process, quietly, for the tests of the search and training loops;
comparing two runs' outputs bit for bit; checking a search's report; counting a search's
traces."""
import contextlib
import hashlib
import io
import logging
import os
import pathlib
import signal
import subprocess
import time
from typing import Any

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from enas_jax.controller import steps as controller_steps
from enas_jax.io import metrics
from enas_jax.run import config as run_config
from enas_jax.run import final as final_run
from enas_jax.run import program
from enas_jax.run import search as search_run
from enas_jax.tasks.language import steps as lm_steps
from tests import tensorboard_view


def preset(config_module: Any, name: str, section: str, **fields: Any
           ) -> ml_collections.ConfigDict:
  """`config_module.get_config(name)` with `fields` of `section` changed."""
  config = config_module.get_config(name)
  for field, value in fields.items():
    config[section][field] = value
  return config


def search_config(config_module: Any, name: str = "tiny", **search: Any) -> Any:
  """The checked search config of a preset, with `search` section fields changed."""
  return run_config.search_config(preset(config_module, name, "search", **search))


def final_config(config_module: Any, name: str = "tiny", **train: Any) -> Any:
  """The checked final-training config of a preset, with `train` section fields changed."""
  return run_config.final_config(preset(config_module, name, "train", **train))


@contextlib.contextmanager
def counting_traces(counts: dict[str, int]):
  """Recurrent searches built inside count in `counts` how often their training step ("train"),
  controller draw, score and update are traced (each Python call of them is one trace)."""
  def counted(name, fn):
    def wrapped(*args):
      counts[name] = counts.get(name, 0) + 1
      return fn(*args)
    return wrapped

  saved = (lm_steps.make_lm_steps, lm_steps.make_score, controller_steps.make_controller_update,
           program.stepped_draw)
  make_lm_steps, make_score, make_update, stepped_draw = saved
  lm_steps.make_lm_steps = lambda *a, **k: (
      lambda train, evaluate: (counted("train", train), evaluate))(*make_lm_steps(*a, **k))
  lm_steps.make_score = lambda *a, **k: counted("score", make_score(*a, **k))
  controller_steps.make_controller_update = lambda *a, **k: counted("update",
                                                                    make_update(*a, **k))
  program.stepped_draw = lambda *a, **k: counted("draw", stepped_draw(*a, **k))
  try:
    yield
  finally:
    (lm_steps.make_lm_steps, lm_steps.make_score, controller_steps.make_controller_update,
     program.stepped_draw) = saved


@contextlib.contextmanager
def counting_compiles(compiles: list[tuple[str, str]]):
  """Appends to `compiles` (program, thread name) for every XLA compilation inside, in every
  thread: JAX's own log of its compilations (`jax_log_compiles`), read as it is written."""
  class Seen(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
      message = record.getMessage()
      if message.startswith("Finished XLA compilation of "):
        compiles.append((message.split(" of ")[1].split(" in ")[0], record.threadName))

  handler, logger = Seen(level=logging.WARNING), logging.getLogger("jax")
  was = jax.config.jax_log_compiles
  logger.addHandler(handler)
  jax.config.update("jax_log_compiles", True)
  try:
    yield
  finally:
    jax.config.update("jax_log_compiles", was)
    logger.removeHandler(handler)


def search(cfg: Any, workdir: Any, compile_ahead: bool = True
           ) -> tuple[search_run.SearchRun, dict]:
  """(the run, its summary) of a whole search, its output swallowed."""
  run = search_run.SearchRun(cfg, str(workdir), io.StringIO(), metrics.Progress(enabled=False),
                             compile_ahead)
  return run, run.execute()


def final(cfg: Any, workdir: Any) -> tuple[final_run.FinalRun, dict]:
  """(the run, its summary) of a whole final training, its output swallowed."""
  run = final_run.FinalRun(cfg, str(workdir), io.StringIO(), metrics.Progress(enabled=False))
  return run, run.execute()


def snapshot(workdir: Any) -> dict[str, tuple[int, int, str]]:
  """Every file of a workdir outside report/: its size, modification time and content hash."""
  out = {}
  for path in sorted(pathlib.Path(workdir).rglob("*")):
    rel = path.relative_to(workdir)
    if rel.parts[0] == "report" or not path.is_file():
      continue
    st = path.stat()
    out[str(rel)] = (st.st_size, st.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
  return out


def check_report(run: search_run.SearchRun, summary: dict, workdir: Any,
                 train_alone: int = 0) -> Any:
  """The search report of a finished search (`run`, `summary` in `workdir`): its files, its
  checks, the answer's figure equal to the search's own re-scored one, and nothing written
  outside report/. Returns the report."""
  from enas_jax.io import render
  from enas_jax.report.build import build_report
  before = snapshot(workdir)
  report = build_report(str(workdir), {"train_alone": train_alone}, lambda _: None)
  assert snapshot(workdir) == before  # nothing written outside report/
  folder = pathlib.Path(workdir) / "report"
  names = {"index.html", "report.md", "checks.png", "curves.png"}
  if render.dot_program():
    names |= {"answer.png", "search.gif"}
  assert names <= set(os.listdir(folder))
  md = (folder / "report.md").read_text()
  assert f"**Verdict: {report.verdict_word}.**" in md and summary["authors"] in md
  assert [c.title for c in report.checks][:3] == [
      "Controller collapse", "The answer against random cells",
      "Stability of the shared-weight score"]
  has_weights = run.task.figure_source == "shared"
  assert len(report.checks) == 3 + (1 if train_alone and has_weights else 0)
  # The answer's figure is the search's own: re-scored under the same final weights (or table).
  figure = summary[f"valid_{run.task.metric}_{run.task.figure_source}"]
  assert f"{figure:.4g}" in report.checks[1].figure
  assert f"of {run.cfg.report.random_cells} random cells" in report.checks[1].figure
  return report


def kill_after_first_checkpoint(cmd: list[str], workdir: Any, cwd: Any, env: dict) -> None:
  """Starts the search `cmd` (writing to `workdir`) and SIGKILLs it as soon as its first
  checkpoint is committed: it dies mid-run, with no chance to clean up."""
  proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
  checkpoints = pathlib.Path(workdir) / "checkpoints"
  deadline = time.time() + 300
  while time.time() < deadline and proc.poll() is None:
    if checkpoints.is_dir() and any(p.name.isdigit() for p in checkpoints.iterdir()):
      break
    time.sleep(0.005)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
  assert not (pathlib.Path(workdir) / "summary.json").exists()  # really killed mid-run


def metric_rows(workdir: Any) -> list[dict]:
  """metrics.jsonl's records without their wall-clock times."""
  return [{k: v for k, v in r.items() if k != "seconds"}
          for r in metrics.read_metrics(str(pathlib.Path(workdir) / "metrics.jsonl"))]


def latest_checkpoint(workdir: Any) -> tuple[int, dict[str, np.ndarray], dict]:
  """(step, arrays, meta) of the newest checkpoint, read with orbax directly."""
  manager = ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, "checkpoints")))
  step = manager.latest_step()
  restored = manager.restore(step, args=ocp.args.Composite(arrays=ocp.args.StandardRestore(),
                                                           meta=ocp.args.JsonRestore()))
  return step, {k: np.asarray(v) for k, v in restored["arrays"].items()}, restored["meta"]


def assert_same_run(a: Any, b: Any) -> None:
  """Every logged figure, the newest checkpoint's position and arrays, and summary.json of the
  runs in workdirs `a` and `b` are identical, bit for bit."""
  assert metric_rows(a) == metric_rows(b)
  step_a, arrays_a, meta_a = latest_checkpoint(a)
  step_b, arrays_b, meta_b = latest_checkpoint(b)
  assert step_a == step_b and meta_a["position"] == meta_b["position"]
  assert arrays_a.keys() == arrays_b.keys()
  for key in arrays_a:  # shared weights, optimizer states, controller, baseline: bit-identical
    np.testing.assert_array_equal(arrays_a[key], arrays_b[key])
  assert (pathlib.Path(a) / "summary.json").read_text() == (
      pathlib.Path(b) / "summary.json").read_text()
  # TensorBoard shows each curve once, as the uninterrupted run's: no stale points from before a
  # resume (its loader's own purging off), the same images at the same steps.
  curves_a, curves_b = (
      {tag: points for tag, points in tensorboard_view.curves(pathlib.Path(d) / "tb").items()
       if not tag.endswith("/seconds")} for d in (a, b))  # wall-clock times differ
  assert curves_a == curves_b
  assert {tag: [i[0] for i in v] for tag, v in tensorboard_view.images(
      pathlib.Path(a) / "tb").items()} == {tag: [i[0] for i in v] for tag, v in
                                           tensorboard_view.images(pathlib.Path(b) / "tb").items()}
