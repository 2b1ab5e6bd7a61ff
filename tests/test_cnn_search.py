"""The CNN searches end to end on tiny synthetic images: outputs, compile-once, resume."""
import io
import json
import os
import pathlib
import re
import subprocess
import shutil
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from enas_jax.configs import cifar10_macro
from enas_jax.data.cursor import Cursor
from enas_jax.io import metrics
from enas_jax.ops.initialize import FAST_COMPILE
from enas_jax.ops.params import set_learning_rate
from enas_jax.run import config as run_config
from enas_jax.run import search as search_run
from enas_jax.spaces.macro import arch as arch_lib
from tests import runs

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _cfg(**search):
  return runs.search_config(cifar10_macro, **search)


_run = runs.search


def test_tiny_macro_search_compiles_each_phase_once_and_resumes_bit_for_bit(tmp_path):
  compiles = []
  with runs.counting_compiles(compiles):
    run, summary = _run(_cfg(), tmp_path / "straight")
  # the controller's programs and the whole-split accuracy compiled ahead, during the first
  # shared phase (`run/ahead.py`), once each, and not again at their first calls
  ahead = sorted(p for p, thread in compiles if thread == "compile-ahead")
  assert ahead == ["jit(accuracy)", "jit(draw)", "jit(guarded)", "jit(score_S)"], compiles
  assert [p for p, _ in compiles].count("jit(accuracy)") == 1, compiles
  arch = arch_lib.from_json(summary["architecture"])
  arch_lib.validate(arch, num_layers=3)
  assert 0.0 <= summary["valid_acc_shared"] <= 1.0
  assert [h["epoch"] for h in summary["history"]] == [0, 1]
  for name in ("best_arch.json", "best_arch.txt", "archs/epoch_0001.txt", "metrics.jsonl"):
    assert (tmp_path / "straight" / name).is_file(), name
  assert (tmp_path / "straight" / "best_arch.txt").read_text().strip() == summary["authors"]
  # every architecture the loop sampled ran through the same compiled step functions
  assert run.program.shared_step._cache_size() == 1
  assert run.program.controller_step._cache_size() == 1
  assert run.program.derive_step._cache_size() == 1
  assert run.task.jit_accuracy._cache_size() == 1  # the whole-split accuracy of every cell
  records = [json.loads(line) for line in open(tmp_path / "straight" / "metrics.jsonl")]
  controller = [r for r in records if r["phase"] == "controller"]
  assert controller and all(0 <= r["skip_rate"] <= 1 and "skip_kl" in r for r in controller)
  runs.check_report(run, summary, tmp_path / "straight")  # the search report of this space

  # few-shot scoring (`search.finetune_steps`) here too: the finished search rescored, the
  # answer's figure that of 2 steps on it alone from the final weights, by hand
  shutil.copytree(tmp_path / "straight", tmp_path / "tuned")
  tuned = _run(_cfg(finetune_steps=2), tmp_path / "tuned")[1]
  answer = jax.tree_util.tree_map(jnp.asarray, arch_lib.from_json(tuned["architecture"]))
  # the step compiled as `finetuned` compiles it (donating the state), so this is that program,
  # not a second compilation; the run's final state is copied, not donated
  step = jax.jit(run.task.train_step, donate_argnums=0)
  model = jax.tree_util.tree_map(jnp.copy, run.final_state.model)
  key = jax.random.fold_in(jax.random.key(run.cfg.seed), 5)
  walk = types.SimpleNamespace(model=model, train_cursor=Cursor())
  for i, batch in enumerate(run.task.shared_batches(walk, 2)):
    model, _ = step(model, batch, answer, jax.random.fold_in(key, i))
  assert tuned["finetune_steps"] == 2
  assert tuned["valid_acc_shared"] == run.task.evaluate(model, answer)

  # the answer's screen (`search.screen_steps`, run/screen.py) on images: the best-scored cell
  # trained alone 4 steps from fresh weights; its figure exp(mean cross-entropy) of the last 2,
  # by hand here, against a uniform guess over the 10 classes
  shutil.copytree(tmp_path / "straight", tmp_path / "screened")
  screen = _run(_cfg(screen_steps=4), tmp_path / "screened")[1]["screen"]
  assert screen["steps"] == 4 and screen["limit_ppl"] == pytest.approx(10.0)
  first = screen["candidates"][0]
  assert first["authors"] == max(summary["rescored"], key=lambda r: r["valid_acc_shared"])[
      "authors"]
  key = jax.random.fold_in(jax.random.key(run.cfg.seed), 6)
  fresh = jax.jit(run.task.init_model).lower(jax.random.fold_in(key, 0)).compile(
      FAST_COMPILE)(jax.random.fold_in(key, 0))
  walk = types.SimpleNamespace(model=fresh.replace(opt_state=set_learning_rate(
      fresh.opt_state, run.cfg.shared.lr_at_epoch(0))), train_cursor=Cursor())
  cell = jax.tree_util.tree_map(jnp.asarray, arch_lib.from_authors_string(first["authors"]))
  losses = []
  for i, batch in enumerate(run.task.shared_batches(walk, 4)):
    step_key = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(key, 1), i), 1)
    walk.model, m = step(walk.model, batch, cell, step_key)
    losses.append(float(m["loss"]))
  np.testing.assert_allclose(first["train_ppl"], np.exp(np.mean(losses[2:])), rtol=1e-5)
  assert first["passed"] == (first["train_ppl"] <= 10.0)

  # one epoch from the command line (the search CLI picks the loop by the config's `space`),
  # then the same search with two epochs, resumed in-process: identical to the straight run
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  cli = subprocess.run(
      [sys.executable, "-m", "enas_jax.search", "--config=configs/cifar10_macro.py:tiny",
       f"--workdir={tmp_path / 'resumed'}", "--config.search.epochs=1"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert cli.returncode == 0, cli.stderr
  assert "found architecture (macro space):" in cli.stdout and "  layer 2: " in cli.stdout
  resumed_run, resumed = _run(_cfg(), tmp_path / "resumed")
  assert resumed["history"] == summary["history"]
  for fn in (resumed_run.program.shared_step, resumed_run.program.controller_step,
             resumed_run.program.derive_step, resumed_run.task.jit_accuracy):
    assert fn._cache_size() == 1  # restored arrays reuse the compiled steps
  jax.tree_util.tree_map(np.testing.assert_array_equal, resumed_run.final_state.model.params,
                         run.final_state.model.params)
  jax.tree_util.tree_map(np.testing.assert_array_equal, resumed_run.final_state.ctrl.params,
                         run.final_state.ctrl.params)


def test_search_cli_refuses_an_unknown_space_in_one_paragraph(tmp_path):
  """(The CLI's search of the macro space: the resume test above.)"""
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  bad = subprocess.run(
      [sys.executable, "-m", "enas_jax.search", "--config=configs/cifar10_macro.py:tiny",
       f"--workdir={tmp_path / 'w2'}", "--config.space=mikro"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert bad.returncode == 2 and "`space` is 'mikro'" in bad.stderr.replace("\n", " ")
  assert "Traceback" not in bad.stderr


MICRO_ARGS = ["--config=cifar10_micro:tiny", "--config.checkpoint.every_steps=2"]


@pytest.fixture(scope="module")
def micro_search(tmp_path_factory):
  """A tiny micro search saving every 2 steps (so that checkpoints land inside epochs):
  (run, summary, workdir)."""
  from enas_jax.configs import cifar10_micro
  config = cifar10_micro.get_config("tiny")
  config.checkpoint.every_steps = 2
  cfg = run_config.search_config(config)
  assert cfg.space == "micro" and cfg.model.drop_path_keep_prob < 1
  workdir = tmp_path_factory.mktemp("micro") / "micro"
  return (*_run(cfg, workdir), workdir)


def test_tiny_micro_search_end_to_end_compiles_each_phase_once(micro_search):
  """The micro space through the same loop: valid cells out, one compilation per phase."""
  from enas_jax.spaces.micro import arch as micro_arch

  run, summary, workdir = micro_search
  arch = micro_arch.from_json(summary["architecture"])
  micro_arch.validate(arch, num_nodes=2)
  assert summary["space"] == "micro" and [h["epoch"] for h in summary["history"]] == [0, 1]
  assert (workdir / "best_arch.txt").read_text().strip() == summary["authors"]
  assert micro_arch.from_authors_string(summary["authors"]).normal_Bx4.shape == (2, 4)
  dot = (workdir / "best_arch.dot").read_text()  # the answer's picture: both cells
  assert "cluster_normal" in dot and "cluster_reduce" in dot
  assert (workdir / "archs" / "epoch_0001.dot").is_file()
  assert run.program.shared_step._cache_size() == 1
  assert run.program.controller_step._cache_size() == 1
  assert run.program.derive_step._cache_size() == 1
  assert run.task.jit_accuracy._cache_size() == 1
  records = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
  shared = [r for r in records if r["phase"] == "shared"]
  controller = [r for r in records if r["phase"] == "controller"]
  assert shared and all(np.isfinite(r["loss"]) for r in shared)
  assert controller and all("skip_rate" not in r and 0 <= r["valid_acc"] <= 1
                            for r in controller)
  runs.check_report(run, summary, workdir)  # the search report of this space


def test_micro_search_killed_mid_epoch_resumes_bit_for_bit(micro_search, tmp_path):
  """SIGKILL a micro search in a subprocess once its first checkpoint (inside epoch 1) exists;
  the same search resumes inside that epoch (here in-process, to count its compilations), each
  phase compiled once after the restore, and ends identical to the uninterrupted run."""
  workdir = tmp_path / "killed"
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  cmd = [sys.executable, "-m", "enas_jax.search", *MICRO_ARGS, f"--workdir={workdir}",
         "--progress=off"]
  runs.kill_after_first_checkpoint(cmd, workdir, ROOT, env)
  out = io.StringIO()
  resumed = search_run.SearchRun(micro_search[0].cfg, str(workdir), out,
                                 metrics.Progress(enabled=False))
  resumed.execute()
  where = re.search(r"resuming from checkpoint (\d+) .*: epoch (\d+), (\w+) phase, step (\d+) "
                    r"of it", out.getvalue())
  assert where and int(where.group(4)) > 0, out.getvalue()  # inside a phase of an epoch
  for fn in (resumed.program.shared_step, resumed.program.controller_step,
             resumed.program.derive_step, resumed.task.jit_accuracy):
    assert fn._cache_size() == 1  # restored arrays reuse the compiled steps
  runs.assert_same_run(micro_search[2], workdir)
